/**
 * Registration refuses what the configured limits make unreachable: a model with more inputs than one request may
 * carry (`limits.maxInputs`) would become `latest` and displace a working version, while every request to it is
 * refused.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { startHardened, type HardenedStack } from './fixture.js';

let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened();
});
afterAll(() => stack?.close());

/** `y = x0 + x1 + ...` over `count` FP32 inputs of shape [1]. */
function sumModel(count: number): Uint8Array {
  const names = Array.from({ length: count }, (_, i) => `x${i}`);
  const builder = new ModelBuilder({ graphName: `sum${count}` });
  for (const name of names) builder.input(name, 'FP32', [1]);
  return builder.node('Sum', names, ['y']).output('y', 'FP32', [1]).toBytes();
}

function sumRequest(count: number): string {
  return JSON.stringify({
    inputs: Array.from({ length: count }, (_, i) => ({ name: `x${i}`, datatype: 'FP32', shape: [1], data: [i] })),
  });
}

it('refuses a model with more inputs than a request may carry, and the working version keeps serving', async () => {
  const first = await stack.register('wide', 'v1.onnx', sumModel(DEFAULT_LIMITS.maxInputs));
  const second = await stack.register('wide', 'v2.onnx', sumModel(DEFAULT_LIMITS.maxInputs + 1));
  const answer = await stack.send({
    method: 'POST',
    path: '/v2/models/wide/infer',
    headers: { 'content-type': 'application/json' },
    body: sumRequest(DEFAULT_LIMITS.maxInputs),
  });

  expect(first).toMatchObject({ kind: 'registered', version: '1' });
  expect(second).toMatchObject({ kind: 'rejected' });
  expect(second.kind === 'rejected' && second.reason).toBe(
    'the model has 65 inputs, over the 64-input limit of one request (limits.maxInputs), so no request could feed it; ' +
      'raise limits.maxInputs in the catalog entry or merge inputs',
  );
  expect(answer.status, answer.text).toBe(200);
  expect(JSON.parse(answer.text)).toMatchObject({
    model_version: '1',
    outputs: [{ name: 'y', data: [(63 * 64) / 2] }],
  });
});
