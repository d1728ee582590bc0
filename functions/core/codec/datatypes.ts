/**
 * Datatype facts and element conversions shared by every codec path and by whoever builds tensors
 * (sessions, validation, the CLI, benchmarks).
 */
import { DATATYPES } from '../types.js';
import type { Datatype, TensorData, TensorDataByType } from '../types.js';

/** Every datatype except BYTES: the ones with a fixed number of bytes per element. */
export type FixedSizeDatatype = Exclude<Datatype, 'BYTES'>;

/** Bytes per element on the wire and in memory, for fixed-size datatypes. */
export const BYTES_PER_ELEMENT = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
} as const satisfies Record<FixedSizeDatatype, number>;

// The binary extension is little-endian and the codec copies bytes straight into typed arrays, which use the host's
// byte order. Every Node and Lambda target (x86_64, arm64) is little-endian; fail loudly rather than corrupt data.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('the tensor codec needs a little-endian CPU (x86_64 or arm64)');
}

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

/** True when `value` is one of the V2 datatypes this server speaks. */
export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && DATATYPE_SET.has(value);
}

/**
 * The smallest shape a tensor declared with `shape` takes: its dynamic dimensions (-1) set to 1. What registration's
 * smoke inference feeds and what the OpenAPI examples send.
 */
export function smallestShape(shape: readonly number[]): number[] {
  return shape.map((dim) => (dim < 0 ? 1 : dim));
}

/** True for datatypes with a fixed element size (all but BYTES). */
export function isFixedSize(datatype: Datatype): datatype is FixedSizeDatatype {
  return datatype !== 'BYTES';
}

/**
 * Bytes per element: a number for fixed-size datatypes, `undefined` for BYTES (whose elements are
 * length-prefixed on the wire).
 * @example bytesPerElement('FP32') // 4
 */
export function bytesPerElement(datatype: FixedSizeDatatype): number;
export function bytesPerElement(datatype: Datatype): number | undefined;
export function bytesPerElement(datatype: Datatype): number | undefined {
  return datatype === 'BYTES' ? undefined : BYTES_PER_ELEMENT[datatype];
}

/**
 * Elements in a tensor of `shape` (1 for the scalar shape `[]`). The shape must hold concrete non-negative
 * dimensions; decoders validate shapes from clients before calling this.
 */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** The typed-array constructor that holds each fixed-size datatype (see {@link TensorDataByType}). */
export const TYPED_ARRAY_BY_DATATYPE = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as const satisfies Record<FixedSizeDatatype, new (n: number) => TensorData>;

/**
 * Zero-filled element storage for `n` elements of `datatype` (BYTES: `n` empty strings).
 * @example createTensorData('INT64', 3) // BigInt64Array [0n, 0n, 0n]
 */
export function createTensorData<D extends Datatype>(datatype: D, n: number): TensorDataByType[D];
export function createTensorData(datatype: Datatype, n: number): TensorData {
  return datatype === 'BYTES' ? new Array<string>(n).fill('') : new TYPED_ARRAY_BY_DATATYPE[datatype](n);
}

/**
 * True when `data` is the storage {@link TensorDataByType} prescribes for `datatype` (BOOL and UINT8 share
 * `Uint8Array`, FP16 and UINT16 share `Uint16Array`).
 */
export function isTensorDataOf<D extends Datatype>(datatype: D, data: unknown): data is TensorDataByType[D] {
  if (datatype === 'BYTES') return Array.isArray(data) && data.every((e) => typeof e === 'string');
  // instanceof alone would accept a Buffer for UINT8: that is fine, a Buffer is a Uint8Array.
  return isDatatype(datatype) && data instanceof TYPED_ARRAY_BY_DATATYPE[datatype as FixedSizeDatatype];
}

/** Largest finite half-precision value. */
export const FP16_MAX = 65504;
/** Largest finite single-precision value. */
export const FP32_MAX = 3.4028234663852886e38;
/** Numbers at or above this magnitude round to infinity in FP16 (65504 plus half an ulp, ties to even). */
export const FP16_OVERFLOW = 65520;
/** Numbers at or above this magnitude round to infinity in FP32 (2^128 - 2^103, ties to even). */
export const FP32_OVERFLOW = 3.4028235677973366e38;

/** Round half to even, for non-negative values that are exact doubles. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5 || (fraction === 0.5 && floor % 2 === 1)) return floor + 1;
  return floor;
}

/**
 * IEEE 754 half-precision bits of a number, rounded to nearest even straight from the double (so no double
 * rounding through float32). Magnitudes from 65520 up become infinity; NaN becomes the quiet NaN 0x7e00.
 * @example float32ToFloat16Bits(1) // 0x3c00
 */
export function float32ToFloat16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= FP16_OVERFLOW) return sign | 0x7c00;
  if (magnitude < 2 ** -14) {
    // Subnormal: the step is 2^-24, and scaling by a power of two is exact. A result of 0x400 is the smallest
    // normal number, which is exactly the bit pattern it should be.
    return sign | roundHalfEven(magnitude * 2 ** 24);
  }
  // Math.log2 may be off by one near powers of two; correct it with exact power-of-two comparisons.
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  else if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  const significand = roundHalfEven(magnitude * 2 ** (10 - exponent)); // in [1024, 2048]
  // A significand rounded up to 2048 carries into the exponent, which is the right result.
  return sign | (((exponent + 15) << 10) + (significand - 1024));
}

/**
 * The number that IEEE 754 half-precision `bits` stand for (exact: every half value is a float32 and a double).
 * @example float16BitsToFloat32(0x3c00) // 1
 */
export function float16BitsToFloat32(bits: number): number {
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** Value range of each integer datatype up to 32 bits, as numbers (64-bit types: {@link INT64_RANGE}). */
export const INTEGER_RANGE = {
  UINT8: { min: 0, max: 0xff },
  UINT16: { min: 0, max: 0xffff },
  UINT32: { min: 0, max: 0xffffffff },
  INT8: { min: -0x80, max: 0x7f },
  INT16: { min: -0x8000, max: 0x7fff },
  INT32: { min: -0x80000000, max: 0x7fffffff },
} as const;

/** Range of the 64-bit integer datatypes. */
export const INT64_RANGE = {
  INT64: { min: -(2n ** 63n), max: 2n ** 63n - 1n },
  UINT64: { min: 0n, max: 2n ** 64n - 1n },
} as const;
