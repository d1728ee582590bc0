/**
 * JSON text as Triton's clients write it, both directions.
 *
 * Reading: Triton parses with rapidjson, which takes the bare tokens `NaN`, `Infinity` and `-Infinity` (Python's
 * `json` and `rapidjson` write them for non-finite floats) and reads integers exactly up to 64 bits. `JSON.parse`
 * refuses the first and rounds the second to a double. {@link parseJsonText} therefore uses `JSON.parse` for the
 * common document and a small lossless reader only when it must: when `JSON.parse` fails on a text holding such a
 * token, or when asked (`lossless`), which the decoders do once they meet a 64-bit integer `JSON.parse` may have
 * rounded (scanning every body for long digit runs up front would cost half a `JSON.parse`). The lossless reader
 * gives exactly `JSON.parse`'s values, except that an integer literal beyond 2^53 - 1 becomes a `bigint` (so
 * INT64/UINT64 data is exact and range errors quote the value as sent) and the bare tokens become
 * {@link NonFiniteToken}s (so only floating-point tensors accept them).
 *
 * Writing: `JSON.stringify(-0)` is `0`, which loses the sign that rapidjson and Triton keep (`-0.0`);
 * {@link stringifyJson} prints {@link NEGATIVE_ZERO} markers as `-0.0`.
 */

/** A bare `NaN`, `Infinity` or `-Infinity` token of the request text. */
export class NonFiniteToken {
  private constructor(
    /** The token as written. */
    public readonly text: 'NaN' | 'Infinity' | '-Infinity',
    public readonly value: number,
  ) {}

  public static readonly NaN = new NonFiniteToken('NaN', NaN);
  public static readonly Infinity = new NonFiniteToken('Infinity', Infinity);
  public static readonly NegativeInfinity = new NonFiniteToken('-Infinity', -Infinity);
}

/** Stops the lossless reader; {@link parseJsonText} then reports `JSON.parse`'s own error. */
class JsonSyntaxError extends Error {}

/**
 * Parses JSON text as rapidjson does for Triton (see the module comment): `JSON.parse`, unless the text has bare
 * non-finite tokens or `lossless` asks for exact integers.
 * @throws SyntaxError with `JSON.parse`'s message when the text is not JSON (with the bare tokens allowed).
 */
export function parseJsonText(text: string, lossless = false): unknown {
  if (!lossless) {
    try {
      return JSON.parse(text);
    } catch (error) {
      if (!/NaN|Infinity/.test(text)) throw error;
      try {
        return new LosslessReader(text).document();
      } catch (readerError) {
        if (readerError instanceof JsonSyntaxError) throw error;
        throw readerError;
      }
    }
  }
  try {
    return new LosslessReader(text).document();
  } catch (error) {
    // Let JSON.parse word the syntax error; it throws here, since the lossless reader accepts more than it does.
    if (error instanceof JsonSyntaxError) JSON.parse(text);
    throw error;
  }
}

/**
 * Thrown by the tensor decoders when a 64-bit integer tensor holds a JSON number that `JSON.parse` may have rounded
 * (an integer past 2^53 - 1): the caller decodes the text again with the lossless reader. Never reaches a client.
 */
export class InexactJsonIntegerError extends Error {
  public constructor() {
    super('a 64-bit integer needs the lossless JSON reader');
    this.name = 'InexactJsonIntegerError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
/** Integer literals longer than this stay doubles: BigInt parsing is not linear, and no 64-bit value needs more. */
const MAX_EXACT_INTEGER_CHARS = 4096;

/** A container being filled: an array, or an object waiting for the value of `key`. */
type Frame = { readonly array: unknown[] } | { readonly object: Record<string, unknown>; key: string };

/**
 * A strict JSON reader with an explicit stack (depth costs heap, never stack, as with `JSON.parse`), for the rare
 * documents `JSON.parse` cannot read faithfully.
 */
class LosslessReader {
  private p = 0;

  public constructor(private readonly text: string) {}

  public document(): unknown {
    const stack: Frame[] = [];
    let value: unknown;
    for (;;) {
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.p);
      if (c === 0x7b /* { */) {
        this.p++;
        this.skipWhitespace();
        const object: Record<string, unknown> = {};
        if (this.text.charCodeAt(this.p) === 0x7d /* } */) {
          this.p++;
          value = object;
        } else {
          stack.push({ object, key: this.key() });
          continue;
        }
      } else if (c === 0x5b /* [ */) {
        this.p++;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.p) === 0x5d /* ] */) {
          this.p++;
          value = [];
        } else {
          stack.push({ array: [] });
          continue;
        }
      } else {
        value = this.scalar();
      }
      // Put the value in its container, and close every container that ends here.
      for (;;) {
        const frame = stack.at(-1);
        if (frame === undefined) {
          this.skipWhitespace();
          if (this.p !== this.text.length) throw new JsonSyntaxError();
          return value;
        }
        if ('array' in frame) frame.array.push(value);
        else setMember(frame.object, frame.key, value);
        this.skipWhitespace();
        const next = this.text.charCodeAt(this.p++);
        if (next === 0x2c /* , */) {
          if (!('array' in frame)) frame.key = this.keyAfterComma();
          break;
        }
        if ('array' in frame ? next !== 0x5d : next !== 0x7d) throw new JsonSyntaxError();
        stack.pop();
        value = 'array' in frame ? frame.array : frame.object;
      }
    }
  }

  private skipWhitespace(): void {
    const text = this.text;
    let c = text.charCodeAt(this.p);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++this.p);
  }

  private keyAfterComma(): string {
    this.skipWhitespace();
    return this.key();
  }

  /** A member name and its colon; the reader is left at the value. */
  private key(): string {
    if (this.text.charCodeAt(this.p) !== 0x22) throw new JsonSyntaxError();
    const key = this.string();
    this.skipWhitespace();
    if (this.text.charCodeAt(this.p++) !== 0x3a /* : */) throw new JsonSyntaxError();
    return key;
  }

  /** The string literal at the reader (at its opening quote). */
  private string(): string {
    const text = this.text;
    const start = this.p;
    let q = start + 1;
    for (;;) {
      const c = text.charCodeAt(q);
      if (Number.isNaN(c) || c < 0x20) throw new JsonSyntaxError();
      if (c === 0x22) break;
      q += c === 0x5c ? 2 : 1;
    }
    this.p = q + 1;
    // JSON.parse decodes the literal's escapes exactly (and refuses invalid ones).
    try {
      return JSON.parse(text.slice(start, q + 1)) as string;
    } catch {
      throw new JsonSyntaxError();
    }
  }

  private scalar(): unknown {
    const text = this.text;
    const c = text.charCodeAt(this.p);
    if (c === 0x22) return this.string();
    for (const [word, value] of WORDS) {
      if (text.startsWith(word, this.p)) {
        this.p += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = this.p;
    const match = NUMBER.exec(text);
    if (match === null) throw new JsonSyntaxError();
    this.p = NUMBER.lastIndex;
    const literal = match[0];
    const value = Number(literal);
    // An integer literal past 2^53 - 1 stays exact; anything else is the double JSON.parse gives.
    if (
      match[1] === undefined &&
      match[2] === undefined &&
      !Number.isSafeInteger(value) &&
      literal.length <= MAX_EXACT_INTEGER_CHARS
    ) {
      return BigInt(literal);
    }
    return value;
  }
}

// Longest first, so "-Infinity" is not read as "-" and a number.
const WORDS: readonly (readonly [string, unknown])[] = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', NonFiniteToken.NaN],
  ['Infinity', NonFiniteToken.Infinity],
  ['-Infinity', NonFiniteToken.NegativeInfinity],
];

/** `object[key] = value`, except that `__proto__` becomes an own property as with JSON.parse, never the prototype. */
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/**
 * Stands for -0 in values given to {@link stringifyJson}, which prints it as `-0.0`. Its `toJSON` returns a
 * placeholder that {@link stringifyJson} replaces.
 */
export const NEGATIVE_ZERO = {
  toJSON(): string {
    negativeZeros++;
    return placeholder;
  },
} as const;

let placeholder = '';
let negativeZeros = 0;

/**
 * `JSON.stringify(value)`, with each {@link NEGATIVE_ZERO} printed as `-0.0`. The placeholder carries a random
 * nonce, and the count of replacements is checked against the count of markers, so no string of the document (a
 * client's request id, say) can ever be mistaken for one.
 */
export function stringifyJson(value: unknown): string {
  for (;;) {
    placeholder = `-0.0:${Math.random().toString(36).slice(2)}:${Date.now().toString(36)}`;
    negativeZeros = 0;
    const text = JSON.stringify(value);
    if (negativeZeros === 0) return text;
    const quoted = JSON.stringify(placeholder);
    const parts = text.split(quoted);
    if (parts.length - 1 === negativeZeros) return parts.join('-0.0');
  }
}
