/**
 * A response's size is bounded before it is built: a 90-byte request to a model whose output size follows its input
 * (`ConstantOfShape`) must get a 413 naming the limit, not a 500 from V8's string limit, nor a crash of the process.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeInferenceResponse, minimumResponseBytes } from '../../functions/core/codec/index.js';
import type { Datatype, Tensor } from '../../functions/core/types.js';
import { amplifierModel, linearBody, linearModel, startHardened, type HardenedStack } from './fixture.js';

const JSON_TYPE = { 'content-type': 'application/json' };

let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened();
  for (const [name, bytes] of [
    ['amplifier', amplifierModel(0.1)],
    ['linear', linearModel(2, 1)],
  ] as const) {
    const outcome = await stack.register(name, `${name}.onnx`, bytes);
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
});
afterAll(() => stack?.close());

const amplify = (rows: number, columns: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...extra, inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [rows, columns] }] });

describe('a response too large to send', () => {
  it.each([
    ['JSON', {}, /^the response would be at least 71999999 bytes as JSON, over the 6225920-byte limit/],
    [
      'binary',
      { parameters: { binary_data_output: true } },
      /^the response would be at least 192000000 bytes base64-encoded, over the 6225920-byte limit/,
    ],
  ])('is a 413 counted from its element count (%s), and the next request is served', async (_form, extra, error) => {
    // 36 million FP32 elements: JSON.stringify of their text is past V8's longest string (a 500 before).
    const answer = await stack.send({
      method: 'POST',
      path: '/v2/models/amplifier/infer',
      headers: JSON_TYPE,
      body: amplify(6000, 6000, extra),
    });
    const next = await stack.send({
      method: 'POST',
      path: '/v2/models/linear/infer',
      headers: JSON_TYPE,
      body: linearBody([[1, 2, 3, 4]]),
    });

    expect(answer.status, answer.text.slice(0, 300)).toBe(413);
    expect((JSON.parse(answer.text) as { error: string }).error).toMatch(error);
    expect(next.status).toBe(200);
    expect(stack.loads.filter((l) => l.model === 'amplifier')).toHaveLength(1);
  });
});

const DATATYPES: readonly Datatype[] = ['BOOL', 'UINT8', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'];

function tensorOf(datatype: Datatype, values: readonly number[]): Tensor {
  const shape = [values.length];
  switch (datatype) {
    case 'BYTES':
      return { name: 'o', datatype, shape, data: values.map((v) => 'x'.repeat(v % 4)) };
    case 'INT64':
      return { name: 'o', datatype, shape, data: BigInt64Array.from(values.map(BigInt)) };
    case 'FP32':
      return { name: 'o', datatype, shape, data: Float32Array.from(values, (v) => v / 7) };
    case 'FP64':
      return { name: 'o', datatype, shape, data: Float64Array.from(values, (v) => -v / 3) };
    case 'FP16':
      return { name: 'o', datatype, shape, data: Uint16Array.from(values) };
    case 'INT32':
      return { name: 'o', datatype, shape, data: Int32Array.from(values, (v) => -v) };
    default:
      return {
        name: 'o',
        datatype,
        shape,
        data: Uint8Array.from(values, (v) => (datatype === 'BOOL' ? v % 2 : v % 256)),
      };
  }
}

describe('minimumResponseBytes', () => {
  it('never exceeds the encoded body, and is exact for binary data', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DATATYPES),
        fc.array(fc.integer({ min: 0, max: 60_000 }), { maxLength: 50 }),
        fc.boolean(),
        (datatype, values, binary) => {
          const response = { modelName: 'm', modelVersion: '1', outputs: [tensorOf(datatype, values)] };
          const request = { binaryOutputByDefault: binary };
          const floor = minimumResponseBytes(response, request);
          const encoded = encodeInferenceResponse(response, request);
          const headerLength = Number(encoded.headers['Inference-Header-Content-Length'] ?? encoded.body.byteLength);

          expect(floor.binary).toBe(binary);
          if (binary && datatype !== 'BYTES') expect(floor.bytes).toBe(encoded.body.byteLength - headerLength);
          else
            expect(floor.bytes).toBeLessThanOrEqual(
              binary ? encoded.body.byteLength - headerLength : encoded.body.byteLength,
            );
        },
      ),
    );
  });
});
