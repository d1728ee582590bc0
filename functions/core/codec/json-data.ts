/**
 * Tensor `data` in V2 JSON, both directions.
 *
 * Decoding writes parsed JSON values straight into the tensor's preallocated typed array: one validation pass per
 * row (monomorphic over the parsed array) followed by the engine's native `TypedArray.prototype.set`, with no
 * intermediate arrays and no per-element allocations except where the element type needs one (BigInt, strings).
 * Row fillers return the index of the first invalid element instead of throwing, so error messages (which need the
 * element's path) are built only on the error path.
 *
 * 64-bit integers (INT64, UINT64): integer literals are read exactly (the JSON reader keeps those past 2^53 - 1 as
 * `bigint`, see `json-text.ts`), as Triton reads them; a decimal string such as `"9007199254740993"` is accepted
 * too; outputs are emitted as numbers when safe and as decimal strings otherwise. Nothing is ever rounded silently.
 *
 * Non-finite floats (FP16, FP32, FP64): JSON has no NaN or infinities, so these datatypes accept the strings
 * `"NaN"`, `"Infinity"` and `"-Infinity"`, and the bare tokens rapidjson writes, and emit the strings. A JSON number
 * too large for the datatype (which would round to infinity) is refused rather than silently turned into one.
 * A -0 is emitted as `-0.0` (see `stringifyJson`), as rapidjson prints it.
 *
 * BYTES: strings without NUL. onnxruntime-node hands strings to the runtime as C strings, which end at the first
 * NUL: `"ab\u0000cd"` would silently become `"ab"`, so it is refused instead.
 */
import { BadRequestError, PayloadTooLargeError } from '../errors.js';
import type { Datatype, Tensor, TensorData, TensorDataByType } from '../types.js';
import {
  createTensorData,
  FP16_MAX,
  FP16_OVERFLOW,
  FP32_MAX,
  FP32_OVERFLOW,
  INT64_RANGE,
  INTEGER_RANGE,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from './datatypes.js';
import { formatShape, show } from './describe.js';
import { DATA_DEPTH } from './document.js';
import type { TensorDescriptor } from './document.js';
import { InexactJsonIntegerError, NEGATIVE_ZERO, NonFiniteToken } from './json-text.js';

/** The strings that stand for non-finite floats in JSON, in both directions. */
export const NON_FINITE_STRINGS = ['NaN', 'Infinity', '-Infinity'] as const;

function nonFiniteValue(value: unknown): number | undefined {
  if (value instanceof NonFiniteToken) return value.value;
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return undefined;
}

function nonFiniteString(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

// A 64-bit decimal has at most 20 digits and a sign; longer strings are refused before BigInt ever sees them.
const DECIMAL_INTEGER = /^-?[0-9]{1,20}$/;

function parseDecimal(value: unknown, range: { readonly min: bigint; readonly max: bigint }): bigint | undefined {
  if (typeof value !== 'string' || !DECIMAL_INTEGER.test(value)) return undefined;
  const parsed = BigInt(value);
  return parsed >= range.min && parsed <= range.max ? parsed : undefined;
}

/** UTF-8 byte length of a string, without encoding it. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

type Row = readonly unknown[];

function fillFloats(out: Float32Array | Float64Array, offset: number, row: Row, limit: number): number {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (!(typeof v === 'number' && v < limit && v > -limit)) return fillFloatsWithStrings(out, offset, row, limit);
  }
  out.set(row as readonly number[], offset);
  return -1;
}

// The uncommon row that carries "NaN"/"Infinity" strings: element by element.
function fillFloatsWithStrings(out: Float32Array | Float64Array, offset: number, row: Row, limit: number): number {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (typeof v === 'number' && v < limit && v > -limit) {
      out[offset + i] = v;
    } else if (typeof v === 'bigint') {
      // A long integer literal: the double JSON.parse would have given, then the same range check.
      const n = Number(v);
      if (!(n < limit && n > -limit)) return i;
      out[offset + i] = n;
    } else {
      const special = nonFiniteValue(v);
      if (special === undefined) return i;
      out[offset + i] = special;
    }
  }
  return -1;
}

function fillFp16(out: Uint16Array, offset: number, row: Row): number {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n === 'number' && n < FP16_OVERFLOW && n > -FP16_OVERFLOW) {
      out[offset + i] = float32ToFloat16Bits(n);
    } else {
      const special = nonFiniteValue(v);
      if (special === undefined) return i;
      out[offset + i] = float32ToFloat16Bits(special);
    }
  }
  return -1;
}

type SmallIntegerArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

function fillIntegers(out: SmallIntegerArray, offset: number, row: Row, min: number, max: number): number {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) return i;
  }
  out.set(row as readonly number[], offset);
  return -1;
}

function fillBigInts(
  out: BigInt64Array | BigUint64Array,
  offset: number,
  row: Row,
  datatype: 'INT64' | 'UINT64',
): number {
  const range = INT64_RANGE[datatype];
  const unsigned = datatype === 'UINT64';
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || (unsigned && v < 0)) return i;
      out[offset + i] = BigInt(v);
    } else if (typeof v === 'bigint') {
      if (v < range.min || v > range.max) return i;
      out[offset + i] = v;
    } else {
      const parsed = parseDecimal(v, range);
      if (parsed === undefined) return i;
      out[offset + i] = parsed;
    }
  }
  return -1;
}

function fillBools(out: Uint8Array, offset: number, row: Row): number {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (v === true) out[offset + i] = 1;
    else if (v === false) out[offset + i] = 0;
    else return i;
  }
  return -1;
}

function fillStrings(out: string[], offset: number, row: Row, maxBytes: number): number {
  // A UTF-16 code unit never takes more than 3 UTF-8 bytes, so short strings skip the byte count.
  const safeLength = Math.floor(maxBytes / 3);
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (typeof v !== 'string' || (v.length > safeLength && utf8Length(v) > maxBytes) || v.includes('\0')) return i;
    out[offset + i] = v;
  }
  return -1;
}

/**
 * Writes one row of JSON values into `out` from `offset`. Returns -1 when every element was valid, else the index
 * (within `row`) of the first invalid one, which {@link describeInvalidElement} can explain.
 */
export function fillRow(
  datatype: Datatype,
  out: TensorData,
  offset: number,
  row: Row,
  maxBytesElementSize: number,
): number {
  switch (datatype) {
    case 'FP32':
      return fillFloats(out as Float32Array, offset, row, FP32_OVERFLOW);
    case 'FP64':
      return fillFloats(out as Float64Array, offset, row, Infinity);
    case 'FP16':
      return fillFp16(out as Uint16Array, offset, row);
    case 'BOOL':
      return fillBools(out as Uint8Array, offset, row);
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      const { min, max } = INTEGER_RANGE[datatype];
      return fillIntegers(out as SmallIntegerArray, offset, row, min, max);
    }
    case 'INT64':
    case 'UINT64':
      return fillBigInts(out as BigInt64Array | BigUint64Array, offset, row, datatype);
    case 'BYTES':
      return fillStrings(out as string[], offset, row, maxBytesElementSize);
  }
}

/** Why `value` cannot be an element of `datatype`; `tooLarge` marks a limit (413) rather than a mistake (400). */
export function describeInvalidElement(
  datatype: Datatype,
  value: unknown,
  maxBytesElementSize: number,
): { readonly reason: string; readonly tooLarge: boolean } {
  const is = `is ${show(value)}`;
  const fail = (reason: string, tooLarge = false) => ({ reason, tooLarge });
  switch (datatype) {
    case 'FP16':
    case 'FP32':
    case 'FP64': {
      if (typeof value === 'number' || typeof value === 'bigint') {
        const max = datatype === 'FP16' ? FP16_MAX : datatype === 'FP32' ? FP32_MAX : Number.MAX_VALUE;
        return fail(
          `${is}, outside the finite ${datatype} range (largest magnitude ${max}); ` +
            'send the string "Infinity" or "-Infinity" if you mean an infinity',
        );
      }
      return fail(
        `${is}, but ${datatype} elements must be numbers or one of the strings "NaN", "Infinity", "-Infinity"`,
      );
    }
    case 'BOOL':
      return fail(`${is}, but BOOL elements must be true or false`);
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      const { min, max } = INTEGER_RANGE[datatype];
      if ((typeof value === 'number' && Number.isInteger(value)) || typeof value === 'bigint') {
        return fail(`${is}, outside the ${datatype} range [${min}, ${max}]`);
      }
      return fail(`${is}, but ${datatype} elements must be integers`);
    }
    case 'INT64':
    case 'UINT64': {
      const { min, max } = INT64_RANGE[datatype];
      const range = `the ${datatype} range [${min}, ${max}]`;
      if (typeof value === 'bigint') return fail(`${is}, outside ${range}`);
      if (typeof value === 'number' && Number.isInteger(value)) {
        if (datatype === 'UINT64' && value < 0) return fail(`${is}, outside ${range}`);
        return fail(
          `${is}, written with a fraction or an exponent, which cannot carry a 64-bit integer exactly; ` +
            'write it in plain digits (e.g. 9007199254740993) or as a decimal string',
        );
      }
      if (typeof value === 'string' && DECIMAL_INTEGER.test(value)) return fail(`${is}, outside ${range}`);
      return fail(`${is}, but ${datatype} elements must be integers (plain JSON integers or decimal strings)`);
    }
    case 'BYTES':
      if (typeof value !== 'string') return fail(`${is}, but BYTES elements must be strings`);
      if (value.includes('\0')) return fail(nulReason(value.indexOf('\0')));
      return fail(
        `is ${utf8Length(value)} bytes of UTF-8; the limit is ${maxBytesElementSize} bytes per BYTES element ` +
          '(limits.maxBytesElementSize)',
        true,
      );
  }
}

/**
 * Why a BYTES element with a NUL at `index` (a character index in JSON, a byte index in binary) is refused: it
 * would reach onnxruntime as a C string and be cut there without a word.
 */
export function nulReason(index: number): string {
  return (
    `contains a NUL character (\\u0000) at index ${index}; this server passes BYTES to onnxruntime as C strings, ` +
    'which would silently end there, so BYTES must be UTF-8 text without NUL (encode binary payloads, e.g. base64)'
  );
}

/** What {@link fillFromJson} needs to know about the tensor it fills. */
export interface JsonFillTarget {
  /** `input "x"` or `output "y"`: the subject of every message. */
  readonly subject: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly count: number;
  /** JSON depth of the `data` array itself (the top-level object is depth 1). */
  readonly dataDepth: number;
  readonly maxJsonDepth: number;
  readonly maxBytesElementSize: number;
  /**
   * The document was read by the lossless reader, so a 64-bit integer past 2^53 - 1 that is still a number was
   * written with a fraction or exponent. Otherwise such a number throws {@link InexactJsonIntegerError} (read again).
   */
  readonly exactIntegers?: boolean;
}

function indexPath(path: readonly number[], depth: number): string {
  let text = 'data';
  for (let i = 0; i < depth; i++) text += `[${path[i]}]`;
  return text;
}

function invalidElement(target: JsonFillTarget, where: string, value: unknown): Error {
  const wide = target.datatype === 'INT64' || target.datatype === 'UINT64';
  if (
    wide &&
    target.exactIntegers !== true &&
    typeof value === 'number' &&
    Number.isInteger(value) &&
    !Number.isSafeInteger(value)
  ) {
    return new InexactJsonIntegerError();
  }
  const { reason, tooLarge } = describeInvalidElement(target.datatype, value, target.maxBytesElementSize);
  const message = `${target.subject}: ${where} ${reason}`;
  return tooLarge ? new PayloadTooLargeError(message) : new BadRequestError(message);
}

/**
 * Decodes a tensor's JSON `data` (flat, or nested exactly as `shape` says) into new element storage.
 * Throws BadRequestError (or PayloadTooLargeError for an oversized BYTES element) naming the tensor and element.
 */
export function fillFromJson<D extends Datatype>(
  target: JsonFillTarget & { readonly datatype: D },
  data: unknown,
  out: TensorDataByType[D],
): void;
export function fillFromJson(target: JsonFillTarget, data: unknown, out: TensorData): void {
  const { subject, shape, count } = target;
  if (!Array.isArray(data)) {
    throw new BadRequestError(`${subject}: "data" must be an array of ${count} elements, got ${show(data)}`);
  }
  // Nested data is recognised by its first element; anything else is read as flat.
  const nested = shape.length > 1 && data.length > 0 && Array.isArray(data[0]);
  if (!nested) {
    if (data.length !== count) {
      throw new BadRequestError(
        `${subject}: shape ${formatShape(shape)} needs ${count} elements, got ${data.length}` +
          (shape.length > 1 ? ' (send them flat, or nested exactly as the shape says)' : ''),
      );
    }
    const bad = fillRow(target.datatype, out, 0, data, target.maxBytesElementSize);
    if (bad >= 0) throw invalidElement(target, `data[${bad}]`, data[bad]);
    return;
  }
  const innermostDepth = target.dataDepth + shape.length - 1;
  if (innermostDepth > target.maxJsonDepth) {
    throw new BadRequestError(
      `${subject}: nested data of rank ${shape.length} would be ${innermostDepth} levels deep in the JSON body, over ` +
        `the limit of ${target.maxJsonDepth} (limits.maxJsonDepth); send the data flat`,
    );
  }
  fillNested(target, data, out, 0, new Array<number>(shape.length).fill(0), 0);
}

// Recursion depth is the tensor's rank, which the depth check above bounds by limits.maxJsonDepth.
function fillNested(
  target: JsonFillTarget,
  rows: readonly unknown[],
  out: TensorData,
  level: number,
  path: number[],
  offset: number,
): number {
  const { shape, subject } = target;
  const expected = shape[level] ?? 0;
  if (rows.length !== expected) {
    throw new BadRequestError(
      `${subject}: nested data does not match shape ${formatShape(shape)}: ${indexPath(path, level)} has ` +
        `${rows.length} elements, expected ${expected} (send the data flat, or nested exactly as the shape says)`,
    );
  }
  if (level === shape.length - 1) {
    const bad = fillRow(target.datatype, out, offset, rows, target.maxBytesElementSize);
    if (bad >= 0) {
      path[level] = bad;
      throw invalidElement(target, indexPath(path, level + 1), rows[bad]);
    }
    return offset + expected;
  }
  let next = offset;
  for (let i = 0; i < expected; i++) {
    path[level] = i;
    const child = rows[i];
    if (!Array.isArray(child)) {
      throw new BadRequestError(
        `${subject}: nested data does not match shape ${formatShape(shape)}: ${indexPath(path, level + 1)} is ` +
          `${show(child)}, expected an array of ${shape[level + 1]} elements`,
      );
    }
    next = fillNested(target, child, out, level + 1, path, next);
  }
  return next;
}

/** Decodes the JSON `data` of a checked tensor descriptor of a request or response document. */
export function decodeJsonTensor(
  descriptor: TensorDescriptor,
  limits: { readonly maxJsonDepth: number; readonly maxBytesElementSize: number },
  exactIntegers = false,
): Tensor {
  const { name, datatype, shape, count, subject } = descriptor;
  const data = createTensorData(datatype, count);
  const { maxJsonDepth, maxBytesElementSize } = limits;
  fillFromJson(
    { subject, datatype, shape, count, dataDepth: DATA_DEPTH, maxJsonDepth, maxBytesElementSize, exactIntegers },
    descriptor.data,
    data,
  );
  return { name, datatype, shape, data };
}

/**
 * Element storage as flat JSON values for {@link stringifyJson}: numbers ({@link NEGATIVE_ZERO} for -0);
 * `"NaN"`/`"Infinity"`/`"-Infinity"` for non-finite floats;
 * booleans for BOOL; decimal strings for 64-bit integers beyond 2^53-1; strings for BYTES.
 */
export function toJsonData(datatype: Datatype, data: TensorData): unknown[] {
  switch (datatype) {
    case 'FP32':
    case 'FP64':
      return floatsToJson(data as Float32Array | Float64Array);
    case 'FP16': {
      const bits = data as Uint16Array;
      const values: unknown[] = [];
      for (let i = 0; i < bits.length; i++) {
        const v = float16BitsToFloat32(bits[i] as number);
        values.push(v - v === 0 ? (v === 0 && 1 / v < 0 ? NEGATIVE_ZERO : v) : nonFiniteString(v));
      }
      return values;
    }
    case 'BOOL': {
      const bytes = data as Uint8Array;
      const values: boolean[] = [];
      for (let i = 0; i < bytes.length; i++) values.push(bytes[i] !== 0);
      return values;
    }
    case 'INT64':
    case 'UINT64': {
      const ints = data as BigInt64Array | BigUint64Array;
      const values: unknown[] = [];
      for (let i = 0; i < ints.length; i++) {
        const big = ints[i] as bigint;
        const n = Number(big);
        values.push(Number.isSafeInteger(n) ? n : big.toString());
      }
      return values;
    }
    case 'BYTES':
      return data as string[];
    default:
      return Array.from(data as SmallIntegerArray);
  }
}

function floatsToJson(floats: Float32Array | Float64Array): unknown[] {
  const values: unknown[] = [];
  for (let i = 0; i < floats.length; i++) {
    const v = floats[i] as number;
    // v - v is 0 for finite numbers and NaN otherwise: one subtraction instead of a call to Number.isFinite.
    values.push(v - v === 0 ? (v === 0 && 1 / v < 0 ? NEGATIVE_ZERO : v) : nonFiniteString(v));
  }
  return values;
}

/** Nests flat JSON values by `shape` (what clients that prefer nested data send). */
export function nestJsonData(flat: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return flat;
  const [first = 0, ...rest] = shape;
  const stride = rest.reduce((a, b) => a * b, 1);
  const rows: unknown[] = [];
  for (let i = 0; i < first; i++) rows.push(nestJsonData(flat.slice(i * stride, (i + 1) * stride), rest));
  return rows;
}
