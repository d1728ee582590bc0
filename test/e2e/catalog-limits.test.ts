import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';

/** A catalog entry's `limits` apply to that model locally too, as they do to its deployed function. */
let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-limits-'));
  const catalog = path.join(dir, 'catalog');
  await mkdir(catalog);
  for (const name of ['linear', 'iris'])
    await copyFile(path.join('models', `${name}.onnx`), path.join(catalog, `${name}.onnx`));
  await writeFile(
    path.join(catalog, 'linear.json'),
    JSON.stringify({ seed: 'linear.onnx', limits: { maxElements: 4 } }),
  );
  await writeFile(path.join(catalog, 'iris.json'), JSON.stringify({ seed: 'iris.onnx' }));
  // A seed with a sample next to it (not a catalog entry): registration checks the expected outputs it gives.
  await copyFile(path.join('models', 'linear.onnx'), path.join(catalog, 'checked.onnx'));
  await writeFile(path.join(catalog, 'checked.json'), JSON.stringify({ seed: 'checked.onnx' }));
  await writeFile(
    path.join(catalog, 'checked.onnx.json'),
    JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }],
      expected_outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [12345] }],
    }),
  );
  stack = await startLocal({ port: 0, s3Port: 0, dataDir: path.join(dir, 'data'), catalogDir: catalog, silent: true });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

async function infer(model: string, rows: number): Promise<{ status: number; body: { error?: string } }> {
  const body = JSON.stringify({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: new Array(rows * 4).fill(1) }],
  });
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  });
  return { status: response.status, body: (await response.json()) as { error?: string } };
}

it("enforces a model's own catalog limits and leaves other models on the defaults", async () => {
  const withinLimit = await infer('linear', 1);
  const overLimit = await infer('linear', 2);
  const otherModel = await infer('iris', 2);

  expect(withinLimit.status).toBe(200);
  expect(overLimit.status).toBe(413);
  expect(overLimit.body.error).toMatch(/shape \[2,4\] has 8 elements; .* at most 4 .*limits\.maxElements/);
  expect(otherModel.status).toBe(200);
});

it("uploads a seed's sample before it, so registration validates the seed against it", async () => {
  const refused = stack.registrations.flatMap((r) => r.outcomes).find((o) => o.key === 'uploads/checked/checked.onnx');
  const served = await fetch(`${stack.gatewayUrl}/v2/models/checked`);

  expect(refused).toMatchObject({ kind: 'rejected', reason: expect.stringMatching(/expected 12345/) });
  expect(served.status).toBe(404);
  expect(stack.seeded).toEqual(['checked', 'iris', 'linear']);
});
