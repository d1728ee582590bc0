/** Shared fixtures for the codec tests: tensors of every datatype, arbitraries, and small decode helpers. */
import fc from 'fast-check';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import type { Limits } from '../../functions/core/catalog.js';
import {
  INTEGER_RANGE,
  createTensorData,
  decodeInferenceRequest,
  elementCount,
  float16BitsToFloat32,
} from '../../functions/core/codec/index.js';
import type { DecodeOptions } from '../../functions/core/codec/index.js';
import { DATATYPES } from '../../functions/core/types.js';
import type { Datatype, InferenceRequest, Tensor, TensorData } from '../../functions/core/types.js';

export { DATATYPES };

const utf8 = new TextEncoder();

/** UTF-8 bytes of `JSON.stringify(document)` (or of `document` itself when it is already a string). */
export function jsonBytes(document: unknown): Uint8Array {
  return utf8.encode(typeof document === 'string' ? document : JSON.stringify(document));
}

/** Decodes a V2 JSON request document with the default limits (overridable). */
export function decodeJson(
  document: unknown,
  limits: Partial<Limits> = {},
  options: Partial<DecodeOptions> = {},
): InferenceRequest {
  return decodeInferenceRequest(jsonBytes(document), {
    contentType: 'application/json',
    ...options,
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
}

/** Runs `act` and returns what it threw (failing the test when it throws nothing). */
export function thrown(act: () => unknown): Error & { statusCode?: number } {
  try {
    act();
  } catch (error) {
    return error as Error & { statusCode?: number };
  }
  throw new Error('expected an error, but none was thrown');
}

/** Builds a tensor of `datatype` from plain values (numbers, bigints, booleans or strings). */
export function tensor(name: string, datatype: Datatype, shape: number[], values: readonly unknown[]): Tensor {
  const data = createTensorData(datatype, values.length) as unknown as { [i: number]: unknown };
  values.forEach((value, i) => {
    data[i] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  });
  return { name, datatype, shape, data: data as unknown as TensorData };
}

/** Edge values of every datatype, as they sit in tensor storage. */
export const EDGE_VALUES: Record<Datatype, readonly unknown[]> = {
  BOOL: [true, false, true],
  UINT8: [0, 1, 255],
  UINT16: [0, 1, 65535],
  UINT32: [0, 1, 4294967295],
  UINT64: [0n, 9007199254740993n, 18446744073709551615n],
  INT8: [-128, 0, 127],
  INT16: [-32768, 0, 32767],
  INT32: [-2147483648, 0, 2147483647],
  INT64: [-9223372036854775808n, 9007199254740993n, 9223372036854775807n],
  FP16: [0x3c00, 0x7bff, 0xfc00], // 1, 65504, -Infinity
  FP32: [1.5, NaN, -Infinity],
  FP64: [Number.MAX_VALUE, NaN, Infinity],
  BYTES: ['', 'héllo', '\u{1F600} emoji'],
};

/**
 * A canonical, comparable view of tensor data. `json` folds what V2 JSON cannot carry: the sign of zero, and
 * FP16 NaN payloads (JSON has one "NaN").
 */
export function comparable(datatype: Datatype, data: TensorData, json: boolean): string[] {
  return Array.from(data as ArrayLike<unknown>, (value) => {
    if (datatype === 'FP16' && json) {
      const v = float16BitsToFloat32(value as number);
      return Number.isNaN(v) ? 'NaN' : String(v);
    }
    if (typeof value === 'number' && Object.is(value, -0)) return json ? '0' : '-0';
    return String(value);
  });
}

/** Random data for `n` elements of `datatype`, covering the whole value range (NaN, infinities, -0 included). */
function elementArbitrary(datatype: Datatype): fc.Arbitrary<unknown> {
  switch (datatype) {
    case 'BOOL':
      return fc.integer({ min: 0, max: 1 });
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return fc.integer(INTEGER_RANGE[datatype]);
    case 'UINT64':
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case 'INT64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'FP16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'FP32':
      return fc.float();
    case 'FP64':
      return fc.double();
    case 'BYTES':
      // NUL is refused (onnxruntime-node passes C strings); test/codec/triton-json.test.ts covers it.
      return fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replaceAll('\0', '\u0001'));
  }
}

/** A random tensor: any datatype, rank 0 to 4, small dimensions (zeros included), data across the value range. */
export const tensorArbitrary: fc.Arbitrary<Tensor> = fc
  .record({
    datatype: fc.constantFrom(...DATATYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
    name: fc.string({ minLength: 1, maxLength: 8 }),
  })
  .chain(({ datatype, shape, name }) =>
    fc
      .array(elementArbitrary(datatype), { minLength: elementCount(shape), maxLength: elementCount(shape) })
      .map((values) => tensor(name, datatype, shape, values)),
  );

/** Random tensors with distinct names. */
export const tensorsArbitrary: fc.Arbitrary<Tensor[]> = fc.uniqueArray(tensorArbitrary, {
  minLength: 1,
  maxLength: 4,
  selector: (t) => t.name,
});
