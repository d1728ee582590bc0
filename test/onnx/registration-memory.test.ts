/**
 * Registration memory is bounded by the model's graph, not its weights: the register handler as deployed
 * (`createRuntime` + `createRegisterHandler` from the environment, onnxruntime in its isolated child) handles the
 * upload's S3 event in a fresh process, whose peak resident memory growth must stay within the stated bound,
 * 2.5 x the graph (the `.onnx` without its weights' values) plus 64 MiB (README, "Registration memory"). The
 * uploads are those that used to be read whole: a model that needs a rewrite, a `.zip` whose `.onnx` embeds its
 * weights, and a legacy attribute of a million ints. A memory bound, not a timing: measured by the kernel
 * (`VmHWM`), with the bound's own margin.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  embeddedWeightsZip,
  graphBytesOf,
  largeAttributeModel,
  legacyRewriteModel,
  measureRegistration,
  registerMemoryBound,
} from '../../bench/register-memory.js';
import { GRAPH_BYTES_DEFAULTS, readConfig } from '../../functions/wiring/config.js';

const MB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'registration-memory-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function measure(file: string, upload: Uint8Array, model: Uint8Array) {
  const graphBytes = await graphBytesOf(dir, model);
  const result = await measureRegistration(dir, file, upload, { bytes: model.byteLength, graphBytes });
  return { ...result, bound: registerMemoryBound(graphBytes) };
}

it('rewrites an opset-6 model of 96 MB within the bound: its weights never enter memory', async () => {
  const model = legacyRewriteModel(96 * MB);

  const result = await measure('legacy.onnx', model, model);

  expect(result.outcome).toBe('registered');
  expect(result.graph_bytes).toBeLessThan(4096);
  expect(result.peak_rss_growth_bytes).toBeLessThan(result.bound);
  expect(result.bound).toBeLessThan(model.byteLength);
});

it('registers a .zip whose .onnx embeds 128 MiB of weights within the bound', async () => {
  const { zip, model } = embeddedWeightsZip(128 * MB);

  const result = await measure('embedded.zip', zip, model);

  expect(result.outcome).toBe('registered');
  expect(zip.byteLength).toBeLessThan(MB);
  expect(result.peak_rss_growth_bytes).toBeLessThan(result.bound);
  expect(result.bound).toBeLessThan(model.byteLength);
});

it('handles a Reshape whose shape attribute holds 1M ints within the bound, and refuses its rank', async () => {
  const model = largeAttributeModel(1_000_000);

  const result = await measure('attribute.onnx', model, model);

  // Raised to opset 7 (the shape becomes a Constant input), then refused: its output has 1M dimensions.
  expect(result.outcome).toBe('rejected');
  expect(result.reason).toMatch(/tensor "y" has 1000000 dimensions; at most 64 are served/);
  expect(result.peak_rss_growth_bytes).toBeLessThan(result.bound);
});

it('caps the register process by the graph it may hold: with the isolated process, within the function memory', () => {
  for (const memoryMb of [2048, 3008, 10240]) {
    const config = readConfig({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb) });

    // The handler process's bound at the largest graph it accepts, its Node and modules, and the isolated child.
    const handler = registerMemoryBound(config.maxGraphBytes) + (GRAPH_BYTES_DEFAULTS.baseMb - 64) * MB;
    const total = handler + config.registrationMemoryMb * MB;

    expect(total).toBeLessThanOrEqual(memoryMb * MB);
    expect(config.maxGraphBytes).toBeGreaterThanOrEqual(GRAPH_BYTES_DEFAULTS.minMb * MB);
  }
  expect(readConfig({ MAX_GRAPH_BYTES: '1000' }).maxGraphBytes).toBe(1000);
});
