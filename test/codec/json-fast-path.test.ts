/**
 * The JSON fast path (numeric `data` read straight from the bytes) against the standard path (JSON.parse, then the
 * fillers): for every body, valid or not, the two must agree exactly: the same tensors bit for bit, or the same
 * error. The fast path may decline a body (then the standard path answers), but must take the plain ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import type { Limits } from '../../functions/core/catalog.js';
import {
  FP32_MAX,
  INTEGER_RANGE,
  decodeInferenceRequest,
  encodeInferenceRequest,
} from '../../functions/core/codec/index.js';
import { FP16_OVERFLOW, FP32_OVERFLOW } from '../../functions/core/codec/datatypes.js';
import { findDataSpans } from '../../functions/core/codec/json-span.js';
import { FAST_JSON_MIN_SPAN_BYTES, decodeJsonRequestFast } from '../../functions/core/codec/request.js';
import { DATATYPES, type Datatype, type InferenceRequest, type Tensor } from '../../functions/core/types.js';
import { jsonBytes } from './helpers.js';

const LIMITS: Limits = { ...DEFAULT_LIMITS, maxElements: 4096, maxJsonDepth: 16 };
const utf8 = new TextEncoder();

function standard(body: Uint8Array, limits: Limits = LIMITS): InferenceRequest {
  return decodeInferenceRequest(body, { contentType: 'application/json', limits, jsonFastPath: false });
}

/** What decoding came to, comparable with toEqual: tensors as raw bytes, errors as class, status and message. */
function outcome(decode: () => InferenceRequest | undefined): unknown {
  try {
    const request = decode();
    if (request === undefined) return undefined;
    return {
      ...request,
      inputs: request.inputs.map((t: Tensor) => ({
        ...t,
        data: Array.isArray(t.data)
          ? t.data
          : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex'),
      })),
    };
  } catch (error) {
    const e = error as Error & { statusCode?: number };
    return { error: e.name, statusCode: e.statusCode, message: e.message };
  }
}

/** Asserts that the fast path (every array taken, whatever its size) agrees with the standard path. */
function expectAgreement(body: Uint8Array, limits: Limits = LIMITS): { taken: boolean } {
  const fast = outcome(() => decodeJsonRequestFast(body, limits, 0));
  const reference = outcome(() => standard(body, limits));
  if (fast !== undefined) expect(fast).toEqual(reference);
  return { taken: fast !== undefined };
}

function body(data: string, datatype: Datatype, shape: readonly number[], extra = ''): Uint8Array {
  return utf8.encode(
    `{"inputs":[{"name":"x","datatype":"${datatype}","shape":${JSON.stringify(shape)},"data":${data}}]${extra}}`,
  );
}

/** Spellings of a number that JSON allows: plain, exponent forms, padded exponents, many digits. */
function spellings(value: number): string[] {
  const texts = [
    String(value),
    value.toExponential(),
    value.toExponential(3),
    value.toPrecision(17),
    value.toPrecision(21),
  ];
  if (Math.abs(value) < 1e21) texts.push(value.toFixed(20), value.toFixed(0));
  texts.push(value.toPrecision(30).replace('e+', 'E+').replace('e-', 'e-0'));
  // toFixed and toPrecision may print "-0" or exponents JSON accepts; all are valid JSON numbers.
  return texts.filter((text) => /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text));
}

const numberText: fc.Arbitrary<string> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).chain((v) => fc.constantFrom(...spellings(v))),
  fc.float({ noNaN: true, noDefaultInfinity: true }).chain((v) => fc.constantFrom(...spellings(v))),
  fc.integer({ min: -70000, max: 70000 }).map(String),
  fc.constantFrom('0', '-0', '0.0', '-0e0', '1e2', '100e-2', '1.5', '0e999', '1e-400', '1e400', '5e-324', '2.5e-45'),
  fc.constantFrom('9007199254740991', '9007199254740992', '-9007199254740993', '18446744073709551615', '4294967296'),
  fc.constantFrom(String(FP32_OVERFLOW), String(FP32_MAX), '3.4028235677973362e38', String(FP16_OVERFLOW), '65519.99'),
  fc.stringMatching(/^-?[1-9][0-9]{20,40}(\.[0-9]{1,40})?(e-?[0-9]{1,3})?$/),
);

const whitespace = fc.constantFrom('', '', '', ' ', '\n', '\t', ' \r\n ');

/** Nested or flat JSON data text for `shape`, elements from `element`. */
function dataText(shape: readonly number[], element: fc.Arbitrary<string>, nested: boolean): fc.Arbitrary<string> {
  const count = shape.reduce((a, b) => a * b, 1);
  return fc
    .tuple(
      fc.array(element, { minLength: count, maxLength: count }),
      fc.array(whitespace, { minLength: 4 * count + 8, maxLength: 4 * count + 8 }),
    )
    .map(([elements, spaces]) => {
      let s = 0;
      const ws = () => spaces[s++ % spaces.length] ?? '';
      if (!nested || shape.length < 2) return `[${ws()}${elements.map((e) => `${e}${ws()}`).join(`,${ws()}`)}]`;
      let next = 0;
      const build = (level: number): string => {
        const n = shape[level] ?? 0;
        const items = Array.from({ length: n }, () =>
          level === shape.length - 1 ? (elements[next++] ?? '0') : build(level + 1),
        );
        return `[${ws()}${items.join(`${ws()},${ws()}`)}${ws()}]`;
      };
      return build(0);
    });
}

const NUMERIC: readonly Datatype[] = DATATYPES.filter((d) => d !== 'BOOL' && d !== 'BYTES');

const requestArbitrary = fc
  .record({
    datatype: fc.constantFrom<Datatype>(...NUMERIC, 'BOOL'),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
    nested: fc.boolean(),
    // Text around the data that a careless scanner would trip on: brackets and quotes inside strings, escapes.
    extra: fc.constantFrom(
      '',
      ',"id":"[[\\"]]\\\\"',
      ',"parameters":{"data":[1,2],"inputs":"x"}',
      ',"outputs":[{"name":"y"}]',
    ),
  })
  .chain(({ datatype, shape, nested, extra }) =>
    dataText(shape, datatype === 'BOOL' ? fc.constantFrom('true', 'false', '1') : numberText, nested).map((data) =>
      body(data, datatype, shape, extra),
    ),
  );

describe('the JSON fast path', () => {
  it('agrees with JSON.parse and the fillers on random requests of every numeric type, flat and nested', () => {
    let taken = 0;
    fc.assert(
      fc.property(requestArbitrary, (b) => {
        if (expectAgreement(b).taken) taken++;
      }),
      { numRuns: 1500 },
    );
    // Most random requests hold some invalid element; still, a good share must go the fast way.
    expect(taken).toBeGreaterThan(150);
  });

  it('agrees on random edits of valid bodies (syntax errors, wrong counts, stray characters)', () => {
    const edit = fc.record({
      at: fc.nat(),
      remove: fc.integer({ min: 0, max: 2 }),
      insert: fc.constantFrom('', ',', ']', '[', '-', '.', 'e', '1', ' ', '"', 'x', '{', '}', '0', 'E+', ',,', '[]'),
    });
    const valid = fc
      .record({ shape: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }), nested: fc.boolean() })
      .chain(({ shape, nested }) =>
        dataText(shape, fc.float({ noNaN: true, noDefaultInfinity: true }).map(String), nested).map((d) =>
          body(d, 'FP32', shape),
        ),
      );
    fc.assert(
      fc.property(valid, fc.array(edit, { minLength: 1, maxLength: 3 }), (b, edits) => {
        let text = Buffer.from(b).toString('latin1');
        for (const { at, remove, insert } of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        expectAgreement(Buffer.from(text, 'latin1'));
      }),
      { numRuns: 1500 },
    );
  });

  it('reads float32 values exactly, including decimals at and around the midpoints between two float32s', () => {
    const texts: string[] = [];
    fc.assert(
      fc.property(
        fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-3e38), max: Math.fround(3e38) }),
        (f) => {
          const next = new Float32Array([f]);
          const bits = new Int32Array(next.buffer);
          bits[0] = (bits[0] ?? 0) + 1;
          const g = next[0] ?? f;
          if (!Number.isFinite(g)) return;
          const midpoint = (f + g) / 2; // exact in a double: one bit more than a float32
          for (const v of [f, midpoint, midpoint * (1 + 2 ** -52), midpoint * (1 - 2 ** -52)]) {
            texts.push(v.toPrecision(17), v.toPrecision(25), v.toPrecision(40), String(v));
          }
        },
      ),
      { numRuns: 200 },
    );
    const data = `[${texts.join(',')}]`;
    const b = body(data, 'FP32', [texts.length]);
    expect(expectAgreement(b).taken).toBe(true);
    const fp16 = body(data.replace(/[0-9.]+e\+?3[0-9]/g, '1'), 'FP16', [texts.length]);
    expectAgreement(fp16);
  });

  it('takes plain requests: images as flat or nested FP32, integers of every width, booleans', () => {
    const image = new Float32Array(3 * 8 * 8).map((_, i) => Math.sin(i) * 3.7);
    const tensors: Tensor[] = [
      { name: 'image', datatype: 'FP32', shape: [1, 3, 8, 8], data: image },
      {
        name: 'ids',
        datatype: 'INT64',
        shape: [2, 3],
        data: new BigInt64Array([101n, -2n, 0n, 9007199254740991n, 5n, 6n]),
      },
      { name: 'mask', datatype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      { name: 'pixels', datatype: 'UINT8', shape: [4], data: new Uint8Array([0, 1, 128, 255]) },
      { name: 'half', datatype: 'FP16', shape: [2], data: new Uint16Array([0x3c00, 0xbc00]) },
      { name: 'wide', datatype: 'FP64', shape: [3], data: new Float64Array([0.5, -1.25, 1e-7]) },
    ];
    for (const nested of [false, true]) {
      const { body: b } = encodeInferenceRequest(tensors, { nested, id: 'r1' });
      const fast = decodeJsonRequestFast(b, LIMITS, 0);
      expect(fast).toBeDefined();
      expect(outcome(() => fast)).toEqual(outcome(() => standard(b)));
      expect(Array.from(fast?.inputs[0]?.data as Float32Array)).toEqual(Array.from(image));
    }
  });

  it('is what decodeInferenceRequest uses for large bodies, with the same result as JSON.parse', () => {
    const n = 4000;
    const data = new Float32Array(n).map((_, i) => Math.cos(i) / 3);
    const { body: b } = encodeInferenceRequest([{ name: 'x', datatype: 'FP32', shape: [n], data }]);
    expect(b.byteLength).toBeGreaterThan(FAST_JSON_MIN_SPAN_BYTES);
    expect(decodeJsonRequestFast(b, LIMITS)).toBeDefined();

    const decoded = decodeInferenceRequest(b, { contentType: 'application/json', limits: LIMITS });

    expect(outcome(() => decoded)).toEqual(outcome(() => standard(b)));
    expect(decoded.inputs[0]?.data).toEqual(data);
  });

  it.each([
    ['an escaped key', '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"d\\u0061ta":[1,2]}]}'],
    ['"data" twice', '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2],"data":[3,4]}]}'],
    ['"inputs" twice', '{"inputs":[],"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2]}]}'],
    ['non-finite strings', '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,"NaN"]}]}'],
    ['BYTES', '{"inputs":[{"name":"x","datatype":"BYTES","shape":[0],"data":[]}]}'],
    ['long FP64 decimals', '{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[0.1234567890123456789]}]}'],
    ['a byte-order mark', '\ufeff{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2]}]}'],
  ])('declines %s and leaves it to the standard path, which decides', (_, text) => {
    const b = utf8.encode(text);

    expect(decodeJsonRequestFast(b, LIMITS, 0)).toBeUndefined();
    expect(outcome(() => decodeInferenceRequest(b, { contentType: 'application/json', limits: LIMITS }))).toEqual(
      outcome(() => standard(b)),
    );
  });

  it('declines when the depth limit is below the depth of data itself, so the standard error is given', () => {
    const b = body('[1,2]', 'FP32', [2]);
    const limits = { ...LIMITS, maxJsonDepth: 3 };

    expect(decodeJsonRequestFast(b, limits, 0)).toBeUndefined();
    expect(outcome(() => standard(b, limits))).toMatchObject({
      statusCode: 400,
      message: expect.stringContaining('deep'),
    });
  });

  it('refuses through the standard path what the standard path refuses, with its message', () => {
    const cases: Array<[Datatype, string]> = [
      ['INT32', '[1, 2147483648]'],
      ['INT32', '[1.5]'],
      ['UINT8', '[-1]'],
      ['INT64', '[9223372036854775808]'],
      ['INT64', '[2e18]'],
      ['FP32', '[3.4028235677973366e38]'],
      ['FP16', '[65520]'],
      ['BOOL', '[1]'],
      ['FP32', '[1,2,]'],
      ['FP32', '[01]'],
    ];
    for (const [datatype, data] of cases) {
      const count = (data.match(/,/g)?.length ?? 0) + 1;
      const b = body(data, datatype, [count]);
      const reference = outcome(() => standard(b));
      expect(reference).toMatchObject({ statusCode: 400 });
      expect(decodeJsonRequestFast(b, LIMITS, 0)).toBeUndefined();
      expect(outcome(() => decodeInferenceRequest(b, { contentType: 'application/json', limits: LIMITS }))).toEqual(
        reference,
      );
    }
    expect(INTEGER_RANGE.INT32.max).toBe(2147483647);
  });

  it('locates data arrays exactly, past strings holding brackets, quotes and escapes', () => {
    const text =
      '{"id":"[\\"]\\\\","inputs":[{"name":"a]","data":[[1, 2],[3,4]] ,"shape":[2,2]},{"data":"x"},{"data":[5]}]}';
    const b = jsonBytes(text);

    const spans = findDataSpans(b, 0);

    expect(spans?.map((s) => [s.input, text.slice(s.start, s.end)])).toEqual([
      [0, '[[1, 2],[3,4]]'],
      [2, '[5]'],
    ]);
  });
});
