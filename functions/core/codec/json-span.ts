/**
 * The fast path of V2 JSON request decoding: numeric `data` arrays are read straight from the body's bytes into
 * the tensor's typed array, and `JSON.parse` only sees the small rest of the document.
 *
 * `JSON.parse` of a 1x3x224x224 FP32 request (2.9 MB) builds a 150,528-element JS array of doubles that is copied
 * into a `Float32Array` and dropped; parsing the numbers in place removes that array, the UTF-8 decode of the
 * data, and most of the time.
 *
 * The fast path is all or nothing, and never decides anything on its own: {@link findDataSpans} locates each
 * input's `data` array (only where it can do so unambiguously), the document without those arrays is parsed and
 * checked by the same code as the standard path, and {@link fillFromJsonSpan} accepts exactly the JSON numbers,
 * nesting and values that `JSON.parse` followed by {@link fillFromJson} accepts, producing the same elements bit
 * for bit. Anything it is not sure of (a syntax error, an invalid element, a string in the array, a duplicate or
 * escaped key, a limit) makes it give up, and the standard path decodes the body from scratch: errors, and their
 * messages, always come from the standard path.
 */
import type { Datatype, TensorData } from '../types.js';
import { FP16_OVERFLOW, FP32_OVERFLOW, INTEGER_RANGE, float32ToFloat16Bits } from './datatypes.js';
import type { JsonFillTarget } from './json-data.js';

/** Where one input's `data` array sits in the body: `[start, end)` spans its brackets. */
export interface DataSpan {
  /** Index of the input in the request's `inputs` array. */
  readonly input: number;
  readonly start: number;
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

function isWhitespace(c: number | undefined): boolean {
  // JSON's whitespace exactly: space, tab, line feed, carriage return.
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Thrown inside the scanner to give up; never escapes {@link findDataSpans}. */
class GiveUp extends Error {}
const GIVE_UP = new GiveUp();

/** A byte scanner over one body: positions are checked against `length`, so reads past the end give up. */
class Scanner {
  public readonly length: number;

  public constructor(
    private readonly bytes: Buffer,
    public readonly minSpanBytes: number,
  ) {
    this.length = bytes.byteLength;
  }

  public at(p: number): number {
    if (p >= this.length) throw GIVE_UP;
    return this.bytes[p] as number;
  }

  public skipWhitespace(p: number): number {
    while (p < this.length && isWhitespace(this.bytes[p])) p++;
    return p;
  }

  /** `p` is at an opening quote; returns the position after the closing one. */
  public skipString(p: number): number {
    let from = p + 1;
    for (;;) {
      const quote = this.bytes.indexOf(QUOTE, from);
      if (quote < 0) throw GIVE_UP;
      let backslashes = 0;
      while (this.bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) return quote + 1;
      from = quote + 1;
    }
  }

  /** `p` is at a key's opening quote; returns its raw text, giving up on escapes (so raw text = the key). */
  public key(p: number): { readonly name: string; readonly next: number } {
    if (this.at(p) !== QUOTE) throw GIVE_UP;
    const next = this.skipString(p);
    const raw = this.bytes.subarray(p + 1, next - 1);
    if (raw.indexOf(BACKSLASH) >= 0) throw GIVE_UP;
    return { name: raw.toString('latin1'), next };
  }

  /** Skips any JSON value starting at `p` (validity is left to JSON.parse); returns the position after it. */
  public skipValue(p: number): number {
    const c = this.at(p);
    if (c === QUOTE) return this.skipString(p);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      let depth = 0;
      let q = p;
      for (;;) {
        const b = this.at(q);
        if (b === QUOTE) {
          q = this.skipString(q);
          continue;
        }
        if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
        else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
        q++;
        if (depth === 0) return q;
      }
    }
    let q = p;
    while (q < this.length) {
      const b = this.bytes[q];
      if (b === COMMA || b === CLOSE_BRACE || b === CLOSE_BRACKET || isWhitespace(b)) break;
      q++;
    }
    return q;
  }

  /**
   * `p` is at `[`: the end (after the matching `]`) of an array holding no string, found with native byte
   * searches; -1 when the array holds a string (then brackets inside strings could mislead the count).
   */
  public stringFreeArrayEnd(p: number): number {
    const bytes = this.bytes;
    let depth = 0;
    let from = p;
    let nextOpen = bytes.indexOf(OPEN_BRACKET, p);
    for (;;) {
      const close = bytes.indexOf(CLOSE_BRACKET, from);
      if (close < 0) throw GIVE_UP;
      while (nextOpen >= 0 && nextOpen < close) {
        depth++;
        nextOpen = bytes.indexOf(OPEN_BRACKET, nextOpen + 1);
      }
      depth--;
      from = close + 1;
      if (depth === 0) break;
    }
    const quote = bytes.indexOf(QUOTE, p);
    return quote >= 0 && quote < from ? -1 : from;
  }

  /** Members of an object starting at `p` (`{`); `visit` gets each key and its value's position, returns the end. */
  public members(p: number, visit: (key: string, valueAt: number) => number): number {
    let q = this.skipWhitespace(p + 1);
    if (this.at(q) === CLOSE_BRACE) return q + 1;
    for (;;) {
      const { name, next } = this.key(q);
      q = this.skipWhitespace(next);
      if (this.at(q) !== COLON) throw GIVE_UP;
      q = this.skipWhitespace(visit(name, this.skipWhitespace(q + 1)));
      const c = this.at(q);
      if (c === CLOSE_BRACE) return q + 1;
      if (c !== COMMA) throw GIVE_UP;
      q = this.skipWhitespace(q + 1);
    }
  }
}

function scanInputs(scanner: Scanner, p: number, spans: DataSpan[]): number {
  let q = scanner.skipWhitespace(p + 1);
  if (scanner.at(q) === CLOSE_BRACKET) return q + 1;
  for (let input = 0; ; input++) {
    if (scanner.at(q) === OPEN_BRACE) {
      let seenData = false;
      q = scanner.members(q, (key, valueAt) => {
        if (key !== 'data') return scanner.skipValue(valueAt);
        // JSON.parse keeps the last of duplicate keys; rather than mirror that, give up.
        if (seenData) throw GIVE_UP;
        seenData = true;
        if (scanner.at(valueAt) !== OPEN_BRACKET) return scanner.skipValue(valueAt);
        const end = scanner.stringFreeArrayEnd(valueAt);
        if (end < 0) return scanner.skipValue(valueAt);
        if (end - valueAt >= scanner.minSpanBytes) spans.push({ input, start: valueAt, end });
        return end;
      });
    } else {
      q = scanner.skipValue(q);
    }
    q = scanner.skipWhitespace(q);
    const c = scanner.at(q);
    if (c === CLOSE_BRACKET) return q + 1;
    if (c !== COMMA) throw GIVE_UP;
    q = scanner.skipWhitespace(q + 1);
  }
}

/**
 * Locates the `data` arrays of the request's inputs that hold no strings and are at least `minSpanBytes` long.
 * Returns `undefined` when there is none, or when the body is not laid out plainly enough to be sure: not an
 * object, a key with escapes, `"inputs"` twice, or `"data"` twice in one input.
 */
export function findDataSpans(body: Uint8Array, minSpanBytes = 0): DataSpan[] | undefined {
  const scanner = new Scanner(Buffer.from(body.buffer, body.byteOffset, body.byteLength), minSpanBytes);
  const spans: DataSpan[] = [];
  try {
    const start = scanner.skipWhitespace(0);
    if (scanner.at(start) !== OPEN_BRACE) return undefined;
    let seenInputs = false;
    const end = scanner.members(start, (key, valueAt) => {
      if (key !== 'inputs') return scanner.skipValue(valueAt);
      if (seenInputs) throw GIVE_UP;
      seenInputs = true;
      return scanner.at(valueAt) === OPEN_BRACKET ? scanInputs(scanner, valueAt, spans) : scanner.skipValue(valueAt);
    });
    if (scanner.skipWhitespace(end) !== scanner.length) return undefined;
  } catch (error) {
    if (error instanceof GiveUp || error instanceof RangeError) return undefined;
    throw error;
  }
  return spans.length > 0 ? spans : undefined;
}

/** The body with every span replaced by `0`: what JSON.parse reads on the fast path. */
export function withoutSpans(body: Uint8Array, spans: readonly DataSpan[]): Uint8Array {
  let length = body.byteLength;
  for (const span of spans) length -= span.end - span.start - 1;
  const out = new Uint8Array(length);
  let from = 0;
  let to = 0;
  for (const span of spans) {
    out.set(body.subarray(from, span.start), to);
    to += span.start - from;
    out[to++] = ZERO;
    from = span.end;
  }
  out.set(body.subarray(from), to);
  return out;
}

// Correctly rounded powers of ten (the engine's own decimal conversion): exact up to 1e22.
const POW10 = Float64Array.from({ length: 309 }, (_, k) => Number(`1e${k}`));
const MAX_EXACT_POW10 = 22;
/** Decimal exponents the approximate conversion takes: results stay normal doubles and finite or overflow. */
const MAX_APPROX_EXPONENT = 290;
/** Significant digits the approximate conversion takes: at most 10 rounded steps after the first 15 digits. */
const MAX_APPROX_DIGITS = 25;
/**
 * Relative half-width of the interval that surely holds the correctly rounded double of an approximated number.
 * The approximation is within 23 units of 2^-53 (10 steps of 2 roundings, the power of ten, the division, and
 * the rounding of the exact value itself); 2^-45 is 256 units.
 */
const APPROX_MARGIN = 2 ** -45;

/** How the last number was read: `value` is exactly JSON.parse's double. */
const EXACT = 0;
/** `value` is within {@link APPROX_MARGIN} of JSON.parse's double. */
const APPROXIMATE = 1;
/** Too many digits or too large an exponent: only the engine's own conversion of the text will do. */
const TEXT = 2;

/** Reads JSON numbers from bytes. Fields hold the last number read, so the hot loop allocates nothing. */
class NumberReader {
  public value = 0;
  /** {@link EXACT}, {@link APPROXIMATE} or {@link TEXT}. */
  public kind = EXACT;

  public constructor(private readonly bytes: Uint8Array) {}

  /** Reads the number at `p` (strict JSON grammar); returns the position after it, or -1 if there is none. */
  public read(p: number): number {
    const b = this.bytes;
    let q = p;
    const negative = b[q] === MINUS;
    if (negative) q++;
    let c = b[q] as number;
    // Every digit goes into the mantissa; past MAX_APPROX_DIGITS significant digits it is not used.
    let mantissa = 0;
    let digits = 0;
    let exponent = 0;
    if (c === ZERO) {
      c = b[++q] as number;
    } else if (c > ZERO && c <= NINE) {
      do {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        c = b[++q] as number;
      } while (c >= ZERO && c <= NINE);
    } else {
      return -1;
    }
    if (c === DOT) {
      c = b[++q] as number;
      if (!(c >= ZERO && c <= NINE)) return -1;
      do {
        mantissa = mantissa * 10 + (c - ZERO);
        exponent--;
        // Zeros before the first significant digit only move the decimal point.
        if (mantissa !== 0) digits++;
        c = b[++q] as number;
      } while (c >= ZERO && c <= NINE);
    }
    if (c === 0x65 || c === 0x45) {
      c = b[++q] as number;
      let sign = 1;
      if (c === MINUS) {
        sign = -1;
        c = b[++q] as number;
      } else if (c === PLUS) {
        c = b[++q] as number;
      }
      if (!(c >= ZERO && c <= NINE)) return -1;
      let power = 0;
      do {
        if (power < 100_000) power = power * 10 + (c - ZERO);
        c = b[++q] as number;
      } while (c >= ZERO && c <= NINE);
      exponent += sign * power;
    }
    let value: number;
    if (mantissa === 0) {
      value = 0;
      this.kind = EXACT;
    } else if (mantissa <= Number.MAX_SAFE_INTEGER && exponent >= -MAX_EXACT_POW10 && exponent <= MAX_EXACT_POW10) {
      // Clinger's fast path: an exact integer times or over an exact power of ten rounds once, correctly.
      value = exponent < 0 ? mantissa / (POW10[-exponent] as number) : mantissa * (POW10[exponent] as number);
      this.kind = EXACT;
    } else if (digits <= MAX_APPROX_DIGITS && exponent >= -MAX_APPROX_EXPONENT && exponent <= MAX_APPROX_EXPONENT) {
      value = exponent < 0 ? mantissa / (POW10[-exponent] as number) : mantissa * (POW10[exponent] as number);
      this.kind = APPROXIMATE;
    } else {
      value = 0;
      this.kind = TEXT;
    }
    this.value = negative ? -value : value;
    return q;
  }
}

/**
 * JSON.parse's double for the number text in `[start, end)`, already checked to be a JSON number (whose grammar
 * `Number` accepts and converts the same way, correctly rounded).
 */
function exactValue(bytes: Buffer, start: number, end: number): number {
  return Number(bytes.toString('latin1', start, end));
}

/** Stores elements of one datatype; returns false for a value JSON.parse + fillFromJson would refuse. */
type Store = (reader: NumberReader, index: number, start: number, end: number) => boolean;

function storeFor(datatype: Datatype, out: TensorData, bytes: Buffer): Store | undefined {
  switch (datatype) {
    case 'FP32': {
      const array = out as Float32Array;
      return (reader, index, start, end) => {
        let v = reader.value;
        if (reader.kind === APPROXIMATE) {
          // The exact double lies strictly inside [low, high]; if both ends round to the same float32, so does it.
          const magnitude = Math.abs(v);
          const high = magnitude * (1 + APPROX_MARGIN);
          if (high < FP32_OVERFLOW && Math.fround(magnitude * (1 - APPROX_MARGIN)) === Math.fround(high)) {
            array[index] = v;
            return true;
          }
          v = exactValue(bytes, start, end);
        } else if (reader.kind === TEXT) {
          v = exactValue(bytes, start, end);
        }
        if (!(v < FP32_OVERFLOW && v > -FP32_OVERFLOW)) return false;
        array[index] = v;
        return true;
      };
    }
    case 'FP64': {
      const array = out as Float64Array;
      // Long decimals are the norm in FP64 data and only the engine converts them exactly: leave them to JSON.parse.
      return (reader, index) => {
        if (reader.kind !== EXACT) return false;
        array[index] = reader.value;
        return true;
      };
    }
    case 'FP16': {
      const array = out as Uint16Array;
      return (reader, index, start, end) => {
        let v = reader.value;
        if (reader.kind === APPROXIMATE) {
          const magnitude = Math.abs(v);
          const high = magnitude * (1 + APPROX_MARGIN);
          const bits = float32ToFloat16Bits(high);
          if (high < FP16_OVERFLOW && float32ToFloat16Bits(magnitude * (1 - APPROX_MARGIN)) === bits) {
            array[index] = v < 0 ? bits | 0x8000 : bits;
            return true;
          }
          v = exactValue(bytes, start, end);
        } else if (reader.kind === TEXT) {
          v = exactValue(bytes, start, end);
        }
        if (!(v < FP16_OVERFLOW && v > -FP16_OVERFLOW)) return false;
        array[index] = float32ToFloat16Bits(v);
        return true;
      };
    }
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      const array = out as Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;
      const { min, max } = INTEGER_RANGE[datatype];
      return (reader, index, start, end) => {
        const v = reader.kind === EXACT ? reader.value : exactValue(bytes, start, end);
        if (!(Number.isInteger(v) && v >= min && v <= max)) return false;
        array[index] = v;
        return true;
      };
    }
    case 'INT64':
    case 'UINT64': {
      const array = out as BigInt64Array | BigUint64Array;
      const unsigned = datatype === 'UINT64';
      return (reader, index, start, end) => {
        const v = reader.kind === EXACT ? reader.value : exactValue(bytes, start, end);
        if (!Number.isSafeInteger(v) || (unsigned && v < 0)) return false;
        array[index] = BigInt(v);
        return true;
      };
    }
    case 'BOOL':
    case 'BYTES':
      return undefined;
  }
}

const TRUE = [0x74, 0x72, 0x75, 0x65] as const;
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65] as const;

function matches(bytes: Uint8Array, p: number, word: readonly number[]): boolean {
  for (let i = 0; i < word.length; i++) if (bytes[p + i] !== word[i]) return false;
  return true;
}

/** Reads one `data` array; every method returns the position after what it read, or -1 to give up. */
class SpanFiller {
  /** Elements written so far, in row-major order. */
  public index = 0;
  private readonly reader: NumberReader;

  public constructor(
    private readonly bytes: Buffer,
    private readonly end: number,
    private readonly shape: readonly number[],
    private readonly store: Store | undefined,
    private readonly bools: Uint8Array,
  ) {
    this.reader = new NumberReader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  public skipWhitespace(p: number): number {
    const bytes = this.bytes;
    while (p < this.end && isWhitespace(bytes[p])) p++;
    return p;
  }

  /** A nested array at `level` of the shape, at `p` (`[`). Recursion depth is the rank, bounded by maxJsonDepth. */
  public nested(p: number, level: number): number {
    const expected = this.shape[level] as number;
    if (level === this.shape.length - 1) return this.row(p, expected);
    const bytes = this.bytes;
    if (bytes[p] !== OPEN_BRACKET) return -1;
    let q = this.skipWhitespace(p + 1);
    for (let i = 0; i < expected; i++) {
      if (i > 0) {
        if (bytes[q] !== COMMA) return -1;
        q = this.skipWhitespace(q + 1);
      }
      q = this.nested(q, level + 1);
      if (q < 0) return -1;
      q = this.skipWhitespace(q);
    }
    return bytes[q] === CLOSE_BRACKET ? q + 1 : -1;
  }

  /** An array of exactly `expected` scalar elements at `p` (`[`). */
  public row(p: number, expected: number): number {
    const bytes = this.bytes;
    if (bytes[p] !== OPEN_BRACKET) return -1;
    let q = this.skipWhitespace(p + 1);
    if (bytes[q] === CLOSE_BRACKET) return expected === 0 ? q + 1 : -1;
    const store = this.store;
    const reader = this.reader;
    let index = this.index;
    const last = index + expected;
    for (;;) {
      if (index === last) return -1;
      if (store === undefined) {
        if (matches(bytes, q, TRUE)) {
          this.bools[index] = 1;
          q += 4;
        } else if (matches(bytes, q, FALSE)) {
          this.bools[index] = 0;
          q += 5;
        } else {
          return -1;
        }
      } else {
        const at = q;
        q = reader.read(q);
        if (q < 0 || !store(reader, index, at, q)) return -1;
      }
      index++;
      let c = bytes[q];
      while (isWhitespace(c)) c = bytes[++q];
      if (c === COMMA) {
        c = bytes[++q];
        while (isWhitespace(c)) c = bytes[++q];
        continue;
      }
      if (c !== CLOSE_BRACKET || index !== last) return -1;
      this.index = index;
      return q + 1;
    }
  }
}

/**
 * Decodes the `data` array in `body[start, end)` into `out` exactly as JSON.parse followed by `fillFromJson`
 * would, flat or nested as `target.shape` says. Returns false, having possibly written part of `out`, whenever
 * that pair would refuse the array or this reader cannot be sure it reads it the same way.
 */
export function fillFromJsonSpan(
  target: JsonFillTarget,
  body: Uint8Array,
  start: number,
  end: number,
  out: TensorData,
): boolean {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const { shape, count, datatype } = target;
  if (datatype === 'BYTES' || end > bytes.byteLength) return false;
  const store = datatype === 'BOOL' ? undefined : storeFor(datatype, out, bytes);
  const filler = new SpanFiller(bytes, end, shape, store, out as Uint8Array);
  if (bytes[start] !== OPEN_BRACKET) return false;
  // As fillFromJson: nested when the shape has several dimensions and the first element is an array.
  const nested = shape.length > 1 && bytes[filler.skipWhitespace(start + 1)] === OPEN_BRACKET;
  let p: number;
  if (nested) {
    if (target.dataDepth + shape.length - 1 > target.maxJsonDepth) return false;
    p = filler.nested(start, 0);
  } else {
    p = filler.row(start, count);
  }
  return p >= 0 && filler.skipWhitespace(p) === end && filler.index === count;
}
