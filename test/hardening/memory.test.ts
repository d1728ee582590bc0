/**
 * A request that needs more memory than the instance has is a 413 the client can act on (it asked for too much),
 * not a 400 "the model refused the inputs", and the next request is served by the same cached session.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ortSessionOptions } from '../../functions/adapters/onnxruntime-session.js';
import { amplifierModel, startHardened, type HardenedStack } from './fixture.js';

let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened();
  expect((await stack.register('amplifier', 'amplifier.onnx', amplifierModel(0.5))).kind).toBe('registered');
});
afterAll(() => stack?.close());

const amplify = (rows: number, columns: number) =>
  stack.send({
    method: 'POST',
    path: '/v2/models/amplifier/infer',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [rows, columns] }] }),
  });

it('answers 413 when onnxruntime cannot allocate the output, then serves the next request', async () => {
  // 10^11 FP32 elements: 400 GB, no overflow of onnxruntime's size arithmetic, more than any machine allocates.
  const huge = await amplify(1_000_000, 100_000);
  const next = await amplify(2, 3);

  expect(huge.status, huge.text).toBe(413);
  expect((JSON.parse(huge.text) as { error: string }).error).toMatch(
    /^the inference needs more memory than this instance has \(.*(?:Failed to allocate|bad_alloc).*\): send fewer rows or smaller inputs$/,
  );
  expect(next.status).toBe(200);
  expect(JSON.parse(next.text)).toMatchObject({ outputs: [{ shape: [2, 3], data: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5] }] });
  expect(stack.loads).toHaveLength(1);
});

it("creates sessions without onnxruntime's CPU arena, which would keep a huge request's memory for good", () => {
  expect(ortSessionOptions({ intraOpNumThreads: 1, graphOptimizationLevel: 'all' }).enableCpuMemArena).toBe(false);
});
