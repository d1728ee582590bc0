/**
 * What Triton's clients put in JSON and what Triton reads from it: bare NaN/Infinity tokens, 64-bit integers as
 * plain JSON numbers, -0.0 with its sign, and BYTES with NUL (refused: onnxruntime-node would cut them).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import {
  decodeInferenceRequest,
  decodeInferenceResponse,
  encodeBytesElements,
  encodeInferenceRequest,
  encodeInferenceResponse,
} from '../../functions/core/codec/index.js';
import { parseJsonText, stringifyJson, NEGATIVE_ZERO } from '../../functions/core/codec/json-text.js';
import { BadRequestError } from '../../functions/core/errors.js';
import { jsonBytes, tensor, thrown } from './helpers.js';

const decode = (text: string) =>
  decodeInferenceRequest(jsonBytes(text), { contentType: 'application/json', limits: DEFAULT_LIMITS });
const body = (datatype: string, data: string, shape = '[3]') =>
  `{"inputs":[{"name":"x","datatype":"${datatype}","shape":${shape},"data":${data}}]}`;

describe('bare NaN, Infinity and -Infinity tokens (what rapidjson and Python json write)', () => {
  it.each(['FP16', 'FP32', 'FP64'])('reads them in %s data, flat and nested, like the string forms', (datatype) => {
    const bare = decode(body(datatype, '[NaN, Infinity, -Infinity, 1.5]', '[4]'));
    const nested = decode(body(datatype, '[[NaN, Infinity], [-Infinity, 1.5]]', '[2, 2]'));
    const strings = decode(body(datatype, '["NaN", "Infinity", "-Infinity", 1.5]', '[4]'));
    expect(Array.from(bare.inputs[0]?.data as ArrayLike<number>)).toEqual(
      Array.from(strings.inputs[0]?.data as ArrayLike<number>),
    );
    expect(Array.from(nested.inputs[0]?.data as ArrayLike<number>)).toEqual(
      Array.from(strings.inputs[0]?.data as ArrayLike<number>),
    );
  });

  it('reads them in a body long enough for the JSON fast path, and in the binary header', () => {
    const values = Array.from({ length: 600 }, (_, i) => (i % 100 === 7 ? 'NaN' : String(i / 4)));
    const decoded = decode(body('FP32', `[${values.join(',')}]`, '[600]'));
    const data = decoded.inputs[0]?.data as Float32Array;
    expect(Number.isNaN(data[7])).toBe(true);
    expect(data[8]).toBe(2);

    const header = jsonBytes(
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[-Infinity]}],"parameters":{"p":NaN}}',
    );
    const binary = decodeInferenceRequest(header, {
      inferenceHeaderContentLength: String(header.byteLength),
      limits: DEFAULT_LIMITS,
    });
    expect((binary.inputs[0]!.data as Float32Array)[0]).toBe(-Infinity);
  });

  it.each([
    ['INT32', 'NaN'],
    ['INT64', 'Infinity'],
    ['BOOL', '-Infinity'],
    ['BYTES', 'NaN'],
  ])('refuses them in %s data with a 400 quoting the token', (datatype, token) => {
    const error = thrown(() => decode(body(datatype, `[${token}]`, '[1]')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain(`data[0] is ${token}, but ${datatype} elements must be`);
  });

  it('still refuses numbers that overflow the datatype, and malformed tokens, with JSON.parse wording', () => {
    expect(thrown(() => decode(body('FP32', '[1e39]', '[1]'))).message).toContain('outside the finite FP32 range');
    const error = thrown(() => decode(body('FP32', '[Nan]', '[1]')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toMatch(/^the request body is not valid JSON: /);
    expect(thrown(() => decode(body('FP32', '[NaN,]', '[1]'))).message).toMatch(/not valid JSON/);
  });
});

describe('64-bit integers as JSON numbers', () => {
  it('reads INT64 and UINT64 literals beyond 2^53 exactly, in JSON and in the fast path', () => {
    const int64 = decode(body('INT64', '[9007199254740993, -9223372036854775808, 9223372036854775807]'));
    expect(Array.from(int64.inputs[0]?.data as BigInt64Array)).toEqual([
      9007199254740993n,
      -(2n ** 63n),
      2n ** 63n - 1n,
    ]);
    const uint64 = decode(body('UINT64', '[18446744073709551615, 0, 12345678901234567891]'));
    expect(Array.from(uint64.inputs[0]?.data as BigUint64Array)).toEqual([2n ** 64n - 1n, 0n, 12345678901234567891n]);
    const many = Array.from({ length: 300 }, (_, i) => String(2n ** 62n + BigInt(i)));
    const fast = decode(body('INT64', `[${many.join(',')}]`, '[300]'));
    expect((fast.inputs[0]!.data as BigInt64Array)[299]).toBe(2n ** 62n + 299n);
  });

  it('refuses an out-of-range value quoting it as sent, not as a rounded double', () => {
    const error = thrown(() => decode(body('INT64', '[1, 9223372036854775808, 3]')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe(
      'input "x": data[1] is 9223372036854775808, outside the INT64 range [-9223372036854775808, 9223372036854775807]',
    );
    expect(thrown(() => decode(body('UINT64', '[18446744073709551616]', '[1]'))).message).toContain(
      'data[0] is 18446744073709551616, outside the UINT64 range',
    );
    // Narrower integers quote JSON.parse's double: only 64-bit tensors send the text to the lossless reader.
    expect(thrown(() => decode(body('INT32', '[12345678901234567890]', '[1]'))).message).toContain(
      'outside the INT32 range',
    );
  });

  it('reads 64-bit integers exactly in the binary header and in the client-side response decoder', () => {
    const header = jsonBytes('{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],"data":[18446744073709551615]}]}');
    const binary = decodeInferenceRequest(header, {
      inferenceHeaderContentLength: String(header.byteLength),
      limits: DEFAULT_LIMITS,
    });
    expect((binary.inputs[0]!.data as BigUint64Array)[0]).toBe(2n ** 64n - 1n);
    const response = jsonBytes(
      '{"model_name":"m","model_version":"1","outputs":[{"name":"y","datatype":"INT64","shape":[1],"data":[9007199254740993]}]}',
    );
    expect((decodeInferenceResponse(response, {}).outputs[0]!.data as BigInt64Array)[0]).toBe(9007199254740993n);
  });

  it('reads long integer literals in float tensors as JSON.parse would (the nearest double)', () => {
    const decoded = decode(body('FP64', '[12345678901234567890, 0.5]', '[2]'));
    expect(Array.from(decoded.inputs[0]!.data as Float64Array)).toEqual([Number('12345678901234567890'), 0.5]);
  });

  it('refuses a 64-bit integer written with an exponent, saying how to write it', () => {
    expect(thrown(() => decode(body('INT64', '[1e19]', '[1]'))).message).toContain(
      'written with a fraction or an exponent',
    );
  });
});

describe('the lossless JSON reader', () => {
  it('gives JSON.parse values for every ordinary document, __proto__ keys included', () => {
    const texts = [
      '{"a":[1,2.5,-0,1e-7,"x\\u0041\\n",true,false,null,{},[]],"b":{"c":{"d":[[[]]]}},"n":1234567890123456}',
      '  {"__proto__": {"polluted": 1}, "k": "v", "n": 1234567890123456}  ',
      '[9007199254740991, -9007199254740991, 1.0e+2, 1234567890123456]',
    ];
    for (const text of texts) {
      const lossless = parseJsonText(text, true);
      const expected: unknown = JSON.parse(text);
      expect(lossless).toEqual(expected);
      expect(Object.getPrototypeOf(lossless)).toBe(Object.getPrototypeOf(expected));
      expect(Object.keys(lossless as object)).toEqual(Object.keys(expected as object));
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses what JSON.parse refuses, and reads deep nesting without recursion', () => {
    for (const bad of ['{"a":1,}', '[1 2]', '{"a" 1}', '"\\x"', '[01]', '[1.]', '{"a":1}x', '[NaN]]']) {
      expect(() => parseJsonText(bad, true)).toThrow(SyntaxError);
    }
    const deep = `${'['.repeat(100_000)}12345678901234567890${']'.repeat(100_000)}`;
    let value = parseJsonText(deep, true);
    let depth = 0;
    while (Array.isArray(value)) {
      value = value[0];
      depth++;
    }
    expect(depth).toBe(100_000);
    expect(value).toBe(12345678901234567890n);
  });
});

describe('-0.0 in JSON output', () => {
  it('prints -0 with its sign, as rapidjson and Triton do, and the client side reads it back', () => {
    const outputs = [
      tensor('y', 'FP32', [3], [-0, 0, 1.5]),
      tensor('z', 'FP64', [1], [-0]),
      tensor('h', 'FP16', [2], [0x8000, 0x0000]),
    ];
    const encoded = encodeInferenceResponse(
      { modelName: 'm', modelVersion: '1', outputs },
      { binaryOutputByDefault: false },
    );
    const text = new TextDecoder().decode(encoded.body);
    expect(text).toContain('"data":[-0.0,0,1.5]');
    expect(text).toContain('"data":[-0.0]');
    expect(text).toContain('"data":[-0.0,0]');
    const decoded = decodeInferenceResponse(encoded.body, encoded.headers);
    expect(Object.is((decoded.outputs[0]!.data as Float32Array)[0], -0)).toBe(true);
  });

  it('never mistakes a string of the document for the -0 marker', () => {
    const text = stringifyJson({ id: '-0.0', data: [NEGATIVE_ZERO, 0], other: [NEGATIVE_ZERO] });
    expect(text).toBe('{"id":"-0.0","data":[-0.0,0],"other":[-0.0]}');
    const request = encodeInferenceRequest([tensor('x', 'FP32', [1], [-0])], { id: 'a' });
    expect(new TextDecoder().decode(request.body)).toContain('"data":[-0.0]');
  });
});

describe('BYTES with NUL', () => {
  it('refuses a NUL in JSON BYTES data with a 400 that says why, for every input', () => {
    const text =
      '{"inputs":[{"name":"a","datatype":"BYTES","shape":[1],"data":["ok"]},' +
      '{"name":"b","datatype":"BYTES","shape":[2],"data":["fine","ab\\u0000cd"]}]}';
    const error = thrown(() => decode(text));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe(
      'input "b": data[1] contains a NUL character (\\u0000) at index 2; this server passes BYTES to onnxruntime as C ' +
        'strings, which would silently end there, so BYTES must be UTF-8 text without NUL (encode binary payloads, e.g. base64)',
    );
  });

  it('refuses a NUL in binary BYTES data with the same reason and the byte index', () => {
    const good = encodeBytesElements(['x']);
    const bad = encodeBytesElements(['abc', 'ab\0cd']);
    const header = jsonBytes({
      inputs: [
        { name: 'a', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: good.byteLength } },
        { name: 'b', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: bad.byteLength } },
      ],
    });
    const all = new Uint8Array([...header, ...good, ...bad]);
    const error = thrown(() =>
      decodeInferenceRequest(all, { inferenceHeaderContentLength: String(header.byteLength), limits: DEFAULT_LIMITS }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toMatch(/^input "b": BYTES element 1 contains a NUL character \(\\u0000\) at index 2; /);
  });
});
