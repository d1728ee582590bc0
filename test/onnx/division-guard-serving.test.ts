/**
 * The integer division guard through the real wiring (`startLocal()`: the embedded S3 server's event drives the
 * register handler, inference goes over HTTP to the gateway): `y = Div(a, b - 1)` in INT32 registers (its smoke
 * input computes 0 / -1), and the request `a = INT32_MIN, b = 0`, which stopped the whole local stack with SIGFPE,
 * is answered with the wrapped value; the stack keeps answering after it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDivisionByBMinusOneModel } from '../../tools/onnx/index.js';
import { startFlowStack, type FlowStack } from '../flow/fixture.js';

const INT32_MIN = -(2 ** 31);

function request(a: number[], b: number[]) {
  return {
    inputs: [
      { name: 'a', datatype: 'INT32', shape: [a.length], data: a },
      { name: 'b', datatype: 'INT32', shape: [b.length], data: b },
    ],
  };
}

let flow: FlowStack;
beforeAll(async () => {
  flow = await startFlowStack();
});
afterAll(() => flow?.close());

it('answers INT32_MIN / -1 with the wrapped value, and the stack keeps serving', async () => {
  // Prepare
  const outcome = await flow.uploadAndWait('divider', 'div.onnx', buildDivisionByBMinusOneModel());
  expect(outcome, JSON.stringify(outcome)).toMatchObject({ kind: 'registered', version: '1' });
  const metadata = await flow.stack.runtime.repository.readMetadata('divider', '1');

  // Act
  const overflow = await flow.request('POST', '/v2/models/divider/infer', request([INT32_MIN, 7, -9], [0, 0, 3]));
  const next = await flow.request('POST', '/v2/models/divider/infer', request([10], [6]));
  const live = await flow.request('GET', '/v2/health/live');

  // Assess: -INT32_MIN wraps to INT32_MIN; 7 / -1 = -7; -9 / 2 truncates to -4.
  expect(metadata.rewrites.map((r) => r.kind)).toEqual(['guard-integer-division']);
  expect(overflow.status, JSON.stringify(overflow.body)).toBe(200);
  expect((overflow.body as { outputs: { data: number[] }[] }).outputs[0]?.data).toEqual([INT32_MIN, -7, -4]);
  expect(next.status).toBe(200);
  expect((next.body as { outputs: { data: number[] }[] }).outputs[0]?.data).toEqual([2]);
  expect(live.status).toBe(200);
});
