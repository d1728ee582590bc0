import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bytesPerElement,
  createTensorData,
  elementCount,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  isDatatype,
  isTensorDataOf,
} from '../../functions/core/codec/index.js';
import { DATATYPES } from './helpers.js';

/** Finite non-negative half values in increasing order: index = bit pattern 0x0000..0x7bff. */
const HALF_VALUES = Array.from({ length: 0x7c00 }, (_, bits) => {
  // Independent of the code under test: straight from the IEEE 754 definition.
  const exponent = bits >> 10;
  const mantissa = bits & 0x3ff;
  return exponent === 0 ? mantissa / 2 ** 24 : (1 + mantissa / 1024) * 2 ** (exponent - 15);
});

/** Reference rounding: nearest finite half by binary search, ties to the even bit pattern, 65520 and up to infinity. */
function referenceHalfBits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(x);
  if (magnitude >= 65520) return sign | 0x7c00;
  let low = 0;
  let high = HALF_VALUES.length - 1;
  while (high - low > 1) {
    const mid = (low + high) >> 1;
    if ((HALF_VALUES[mid] as number) <= magnitude) low = mid;
    else high = mid;
  }
  const below = magnitude - (HALF_VALUES[low] as number);
  const above = (HALF_VALUES[high] as number) - magnitude;
  const bits = below < above ? low : above < below ? high : low % 2 === 0 ? low : high;
  return sign | bits;
}

describe('FP16 conversions', () => {
  it('decodes every half bit pattern and encodes it back to the same bits (NaNs to the quiet NaN)', () => {
    for (let bits = 0; bits <= 0xffff; bits++) {
      const value = float16BitsToFloat32(bits);
      const isNaNPattern = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      if (isNaNPattern) {
        expect(value).toBeNaN();
        expect(float32ToFloat16Bits(value)).toBe(0x7e00);
      } else {
        expect(float32ToFloat16Bits(value), `bits 0x${bits.toString(16)}`).toBe(bits);
      }
    }
  });

  it('knows the landmarks', () => {
    expect(float16BitsToFloat32(0x3c00)).toBe(1);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x7c00)).toBe(Infinity);
    expect(float16BitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float32ToFloat16Bits(65519.99)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and 2^-24: to even
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(1);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
  });

  it('rounds from the double directly, never twice through float32', () => {
    // Through float32 this becomes exactly 1 + 2^-11, a tie that rounds to 1; the true nearest half is 1 + 2^-10.
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
  });

  it('rounds any number to the nearest half, ties to even (property, against a reference)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ min: -70000, max: 70000, noNaN: true }),
          fc.double({ min: -1e-3, max: 1e-3, noNaN: true }),
          fc
            .integer({ min: 0, max: 0x7bfe })
            .map((bits) => ((HALF_VALUES[bits] as number) + (HALF_VALUES[bits + 1] as number)) / 2),
        ),
        (x) => {
          expect(float32ToFloat16Bits(x)).toBe(referenceHalfBits(x));
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('datatype helpers', () => {
  it('gives element sizes, and undefined for BYTES', () => {
    expect(DATATYPES.map((d) => bytesPerElement(d))).toEqual([1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, undefined]);
  });

  it('counts elements, 1 for a scalar and 0 for an empty dimension', () => {
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([])).toBe(1);
    expect(elementCount([5, 0, 7])).toBe(0);
  });

  it('creates zeroed storage of the prescribed type for every datatype', () => {
    for (const datatype of DATATYPES) {
      const data = createTensorData(datatype, 3);
      expect(isTensorDataOf(datatype, data), datatype).toBe(true);
      expect(Array.from(data as ArrayLike<unknown>), datatype).toEqual(
        datatype === 'BYTES' ? ['', '', ''] : datatype.endsWith('64') && datatype !== 'FP64' ? [0n, 0n, 0n] : [0, 0, 0],
      );
    }
  });

  it('recognises datatypes exactly', () => {
    expect(DATATYPES.every(isDatatype)).toBe(true);
    expect(['fp32', 'FLOAT', 'STRING', '', 1, null, 'toString'].some(isDatatype)).toBe(false);
  });

  it('tells storage of the wrong type apart', () => {
    expect(isTensorDataOf('FP32', new Float64Array(1))).toBe(false);
    expect(isTensorDataOf('INT64', new BigUint64Array(1))).toBe(false);
    expect(isTensorDataOf('BYTES', ['a', 1])).toBe(false);
  });
});
