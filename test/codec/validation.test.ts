import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { decodeInferenceRequest, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { BadRequestError, PayloadTooLargeError } from '../../functions/core/errors.js';
import { decodeJson, jsonBytes, tensor, thrown } from './helpers.js';

function input(fields: Record<string, unknown>): Record<string, unknown> {
  return { name: 'x', shape: [2], datatype: 'FP32', data: [1, 2], ...fields };
}

/** [case, request document, limits override, expected status, expected message (substring or pattern)]. */
type Case = [string, unknown, Record<string, number>, 400 | 413, string | RegExp];

const CASES: Case[] = [
  // Shapes and element counts
  [
    'data length vs shape',
    { inputs: [input({ shape: [2, 3], data: [1, 2, 3, 4, 5] })] },
    {},
    400,
    'input "x": shape [2,3] needs 6 elements, got 5',
  ],
  [
    'nested data vs shape',
    {
      inputs: [
        input({
          shape: [2, 3],
          data: [
            [1, 2, 3],
            [4, 5],
          ],
        }),
      ],
    },
    {},
    400,
    'input "x": nested data does not match shape [2,3]: data[1] has 2 elements, expected 3',
  ],
  [
    'nested rows vs shape',
    {
      inputs: [
        input({
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
        }),
      ],
    },
    {},
    400,
    'input "x": nested data does not match shape [2,2]: data has 3 elements, expected 2',
  ],
  [
    'nesting deeper than the shape',
    { inputs: [input({ shape: [1, 2], data: [[[1], [2]]] })] },
    {},
    400,
    'input "x": data[0][0] is an array, but FP32 elements must be numbers',
  ],
  [
    'a row that is not an array',
    { inputs: [input({ shape: [2, 2], data: [[1, 2], 3] })] },
    {},
    400,
    'input "x": nested data does not match shape [2,2]: data[1] is 3, expected an array of 2 elements',
  ],
  [
    'negative dimension',
    { inputs: [input({ shape: [-1, 2] })] },
    {},
    400,
    'input "x": "shape" must be an array of non-negative integers, got [-1,2]',
  ],
  [
    'fractional dimension',
    { inputs: [input({ shape: [1.5] })] },
    {},
    400,
    '"shape" must be an array of non-negative integers, got [1.5]',
  ],
  [
    'unsafe dimension',
    { inputs: [input({ shape: [2 ** 53] })] },
    {},
    400,
    '"shape" must be an array of non-negative integers',
  ],
  [
    'shape not an array',
    { inputs: [input({ shape: '2' })] },
    {},
    400,
    'input "x": "shape" must be an array of non-negative integers, got "2"',
  ],
  [
    'element-count product overflow',
    { inputs: [input({ shape: [2 ** 30, 2 ** 30, 2 ** 30] })] },
    {},
    413,
    'input "x": shape [1073741824,1073741824,1073741824] has more than 2^53 elements; a message may carry at most 16777216 elements',
  ],
  [
    'one tensor over maxElements',
    { inputs: [input({ shape: [11], data: [] })] },
    { maxElements: 10 },
    413,
    'input "x": shape [11] has 11 elements; a message may carry at most 10 elements over all its tensors (limits.maxElements)',
  ],
  [
    'sum over inputs over maxElements',
    { inputs: [input({ name: 'a', shape: [6] }), input({ name: 'b', shape: [5] })] },
    { maxElements: 10 },
    413,
    'input "b": shape [5] has 5 elements; a message may carry at most 10 elements over all its tensors (4 left after the tensors before it)',
  ],
  [
    'data not an array',
    { inputs: [input({ data: 5 })] },
    {},
    400,
    'input "x": "data" must be an array of 2 elements, got 5',
  ],
  ['no data', { inputs: [input({ data: undefined })] }, {}, 400, 'input "x": has no "data"'],
  // Datatypes and elements
  [
    'unknown datatype',
    { inputs: [input({ datatype: 'FLOAT' })] },
    {},
    400,
    'input "x": unknown datatype "FLOAT"; use one of BOOL, UINT8',
  ],
  [
    'string in FP32',
    { inputs: [input({ data: [1, 'abc'] })] },
    {},
    400,
    'input "x": data[1] is "abc", but FP32 elements must be numbers or one of the strings "NaN", "Infinity", "-Infinity"',
  ],
  [
    'null in FP64',
    { inputs: [input({ datatype: 'FP64', data: [null, 1] })] },
    {},
    400,
    'input "x": data[0] is null, but FP64 elements must be numbers',
  ],
  [
    'FP32 overflow',
    { inputs: [input({ data: [1, 1e39] })] },
    {},
    400,
    'input "x": data[1] is 1e+39, outside the finite FP32 range',
  ],
  [
    'FP16 overflow',
    { inputs: [input({ datatype: 'FP16', data: [70000, 1] })] },
    {},
    400,
    'input "x": data[0] is 70000, outside the finite FP16 range (largest magnitude 65504)',
  ],
  ['FP64 number beyond doubles', { inputs: [input({ datatype: 'FP64' })] }, {}, 400, 'PLACEHOLDER'],
  [
    'fraction in INT32',
    { inputs: [input({ datatype: 'INT32', data: [1, 2.5] })] },
    {},
    400,
    'input "x": data[1] is 2.5, but INT32 elements must be integers',
  ],
  [
    'out of range UINT8',
    { inputs: [input({ datatype: 'UINT8', data: [256, 1] })] },
    {},
    400,
    'input "x": data[0] is 256, outside the UINT8 range [0, 255]',
  ],
  [
    'negative UINT32',
    { inputs: [input({ datatype: 'UINT32', data: [1, -1] })] },
    {},
    400,
    'input "x": data[1] is -1, outside the UINT32 range [0, 4294967295]',
  ],
  [
    'string in INT16',
    { inputs: [input({ datatype: 'INT16', data: ['1', 2] })] },
    {},
    400,
    'input "x": data[0] is "1", but INT16 elements must be integers',
  ],
  [
    'non-boolean in BOOL',
    { inputs: [input({ datatype: 'BOOL', data: [true, 1] })] },
    {},
    400,
    'input "x": data[1] is 1, but BOOL elements must be true or false',
  ],
  [
    'JSON number past the INT64 range',
    { inputs: [input({ datatype: 'INT64', data: [1, 1e19] })] },
    {},
    400,
    'input "x": data[1] is 10000000000000000000, outside the INT64 range [-9223372036854775808, 9223372036854775807]',
  ],
  [
    'exponent in INT64',
    '{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1, 2e18]}]}',
    {},
    400,
    'input "x": data[1] is 2000000000000000000, written with a fraction or an exponent',
  ],
  [
    'fraction in INT64',
    { inputs: [input({ datatype: 'INT64', data: [1.5, 2] })] },
    {},
    400,
    'input "x": data[0] is 1.5, but INT64 elements must be integers (plain JSON integers or decimal strings)',
  ],
  [
    'bad decimal string in INT64',
    { inputs: [input({ datatype: 'INT64', data: ['12a', 2] })] },
    {},
    400,
    'input "x": data[0] is "12a", but INT64 elements must be integers',
  ],
  [
    'INT64 string out of range',
    { inputs: [input({ datatype: 'INT64', data: ['9223372036854775808', 2] })] },
    {},
    400,
    'input "x": data[0] is "9223372036854775808", outside the INT64 range [-9223372036854775808, 9223372036854775807]',
  ],
  [
    'negative UINT64',
    { inputs: [input({ datatype: 'UINT64', data: [-1, 2] })] },
    {},
    400,
    'input "x": data[0] is -1, outside the UINT64 range [0, 18446744073709551615]',
  ],
  [
    'number in BYTES',
    { inputs: [input({ datatype: 'BYTES', data: ['a', 1] })] },
    {},
    400,
    'input "x": data[1] is 1, but BYTES elements must be strings',
  ],
  [
    'BYTES element over maxBytesElementSize',
    { inputs: [input({ datatype: 'BYTES', data: ['ok', 'ééé'] })] },
    { maxBytesElementSize: 5 },
    413,
    'input "x": data[1] is 6 bytes of UTF-8; the limit is 5 bytes per BYTES element (limits.maxBytesElementSize)',
  ],
  [
    'element error path in nested data',
    {
      inputs: [
        input({
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 'x'],
          ],
        }),
      ],
    },
    {},
    400,
    'input "x": data[1][1] is "x"',
  ],
  // Request structure and counts
  [
    'body not an object',
    [1, 2],
    {},
    400,
    'the request body must be a JSON object with an "inputs" array, got an array',
  ],
  ['no inputs', { id: 'a' }, {}, 400, 'the request must have an "inputs" array of tensors'],
  [
    'input not an object',
    { inputs: [3] },
    {},
    400,
    'inputs[0] must be a JSON object with "name", "shape", "datatype" and "data", got 3',
  ],
  [
    'input without name',
    { inputs: [input({ name: '' })] },
    {},
    400,
    'inputs[0]: "name" must be a non-empty string, got ""',
  ],
  [
    'too many inputs',
    { inputs: [input({ name: 'a' }), input({ name: 'b' }), input({ name: 'c' })] },
    { maxInputs: 2 },
    400,
    'the request has 3 inputs; the limit is 2 (limits.maxInputs)',
  ],
  [
    'too many outputs',
    { inputs: [input({})], outputs: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] },
    { maxOutputs: 2 },
    400,
    'the request asks for 3 outputs; the limit is 2 (limits.maxOutputs)',
  ],
  ['duplicate input names', { inputs: [input({}), input({})] }, {}, 400, 'input "x" appears more than once'],
  [
    'duplicate requested outputs',
    { inputs: [input({})], outputs: [{ name: 'y' }, { name: 'y' }] },
    {},
    400,
    'requested output "y" appears more than once',
  ],
  [
    'output without name',
    { inputs: [input({})], outputs: [{ parameters: {} }] },
    {},
    400,
    'outputs[0] must be an object with a non-empty "name" string, got "name" missing',
  ],
  ['outputs not an array', { inputs: [input({})], outputs: 'y' }, {}, 400, '"outputs" must be an array'],
  [
    'binary_data not boolean',
    { inputs: [input({})], outputs: [{ name: 'y', parameters: { binary_data: 'yes' } }] },
    {},
    400,
    'requested output "y" parameter "binary_data" must be true or false, got "yes"',
  ],
  [
    'binary_data_output not boolean',
    { inputs: [input({})], parameters: { binary_data_output: 1 } },
    {},
    400,
    'the request parameter "binary_data_output" must be true or false, got 1',
  ],
  [
    'parameters not an object',
    { inputs: [input({})], parameters: [] },
    {},
    400,
    'the request "parameters" must be a JSON object, got an array',
  ],
  ['id not a string', { id: 7, inputs: [input({})] }, {}, 400, '"id" must be a string, got 7'],
  [
    'id too long',
    { id: 'abcdef', inputs: [input({})] },
    { maxIdLength: 5 },
    400,
    '"id" is 6 characters; the limit is 5 (limits.maxIdLength)',
  ],
  [
    'binary_data_size without a binary part',
    { inputs: [input({ data: undefined, parameters: { binary_data_size: 8 } })] },
    {},
    400,
    'input "x": has "binary_data_size" but the request has no binary part; send the Inference-Header-Content-Length header',
  ],
  [
    'both data and binary_data_size',
    { inputs: [input({ parameters: { binary_data_size: 8 } })] },
    {},
    400,
    'input "x": has both "data" and "binary_data_size"',
  ],
  [
    'parameters nested too deep',
    { inputs: [input({})], parameters: { a: { b: { c: {} } } } },
    { maxJsonDepth: 4 },
    400,
    'the JSON document is nested more than 4 levels deep (limits.maxJsonDepth)',
  ],
  [
    'input parameters nested too deep',
    { inputs: [input({ parameters: { a: [[]] } })] },
    { maxJsonDepth: 5 },
    400,
    'nested more than 5 levels deep',
  ],
  [
    'nested data deeper than maxJsonDepth',
    { inputs: [input({ shape: [1, 1, 1], data: [[[1]]] })] },
    { maxJsonDepth: 5 },
    400,
    'input "x": nested data of rank 3 would be 6 levels deep in the JSON body, over the limit of 5 (limits.maxJsonDepth); send the data flat',
  ],
];
// JSON.stringify cannot produce a number beyond the double range; this one is spliced in as text.
CASES[CASES.findIndex((c) => c[0] === 'FP64 number beyond doubles')] = [
  'FP64 number beyond doubles',
  '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1e999]}]}',
  {},
  400,
  'input "x": data[0] is Infinity, outside the finite FP64 range',
];

describe('decodeInferenceRequest validation', () => {
  it.each(CASES)('refuses %s', (_label, document, limits, status, message) => {
    // Act
    const error = thrown(() => decodeJson(document, limits));

    // Assess
    expect(error).toBeInstanceOf(status === 400 ? BadRequestError : PayloadTooLargeError);
    expect(error.statusCode).toBe(status);
    if (typeof message === 'string') expect(error.message).toContain(message);
    else expect(error.message).toMatch(message);
  });

  it('accepts what the refusals above are near to (flat, nested, zero-size and scalar tensors)', () => {
    const decoded = decodeJson({
      inputs: [
        input({ name: 'flat', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }),
        input({
          name: 'nested',
          shape: [2, 3],
          data: [
            [1, 2, 3],
            [4, 5, 6],
          ],
        }),
        input({ name: 'empty', shape: [0, 3], data: [] }),
        input({ name: 'empty-rows', shape: [2, 0], data: [[], []] }),
        input({ name: 'scalar', shape: [], data: [7] }),
        input({ name: 'unsafe-as-string', datatype: 'UINT64', data: ['18446744073709551615', 0] }),
      ],
    });
    expect(decoded.inputs.map((t) => [t.name, Array.from(t.data as ArrayLike<unknown>)])).toEqual([
      ['flat', [1, 2, 3, 4, 5, 6]],
      ['nested', [1, 2, 3, 4, 5, 6]],
      ['empty', []],
      ['empty-rows', []],
      ['scalar', [7]],
      ['unsafe-as-string', [18446744073709551615n, 0n]],
    ]);
  });

  it('refuses a shape of 2^52 elements with a 413 before allocating anything', () => {
    // Allocating first would throw a RangeError (or exhaust memory) instead of this error.
    const error = thrown(() => decodeJson({ inputs: [input({ shape: [2 ** 26, 2 ** 26], data: [] })] }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error.message).toContain('4503599627370496 elements');
  });

  it('refuses a body over maxBodyBytes with a 413', () => {
    const error = thrown(() => decodeJson({ inputs: [input({})] }, { maxBodyBytes: 10 }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error.message).toMatch(/^the request body is \d+ bytes; the limit is 10 bytes \(limits.maxBodyBytes\)$/);
  });

  it('refuses malformed JSON with a 400 that quotes the parser and carries no stack or path', () => {
    const error = thrown(() => decodeJson('{"inputs": [}'));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toMatch(/^the request body is not valid JSON: .+/);
    expect(error.message).not.toMatch(/\n|\bat \w+ \(|\/work\//);
  });

  it('refuses a body that is not UTF-8 with a 400', () => {
    const body = new Uint8Array([0x7b, 0xff, 0x7d]);
    const error = thrown(() => decodeInferenceRequest(body, { limits: DEFAULT_LIMITS }));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe('the request body is not valid UTF-8 text');
  });

  it('refuses 100,000 levels of nesting with the depth 400, not a stack overflow', () => {
    // Prepare: deep parameters in an otherwise valid request
    const deep = `{"inputs":[],"parameters":{"p":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;

    // Act
    const error = thrown(() => decodeJson(deep));

    // Assess
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain('nested more than 64 levels deep');
  });

  it('refuses 100,000 levels of nesting inside tensor data with a 400', () => {
    const deep = `{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    const error = thrown(() => decodeJson(deep));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain('input "x"');
  });

  it('truncates absurd names and shapes in messages', () => {
    const error = thrown(() =>
      decodeJson({ inputs: [input({ name: 'n'.repeat(10_000), shape: new Array(1000).fill(-1) })] }),
    );
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toContain('(1000 dims)');
  });
});

describe('binary extension validation', () => {
  const encoded = encodeInferenceRequest([tensor('x', 'FP32', [2], [1, 2])], { binary: true });
  const headerLength = Number(encoded.headers['Inference-Header-Content-Length']);
  const header = JSON.parse(new TextDecoder().decode(encoded.body.subarray(0, headerLength))) as Record<
    string,
    unknown
  >;

  function binaryBody(document: unknown, tail: Uint8Array): { body: Uint8Array; length: string } {
    const head = jsonBytes(document);
    const body = new Uint8Array(head.byteLength + tail.byteLength);
    body.set(head);
    body.set(tail, head.byteLength);
    return { body, length: String(head.byteLength) };
  }

  function decodeBinary(document: unknown, tail: Uint8Array, limits = {}) {
    const { body, length } = binaryBody(document, tail);
    return decodeInferenceRequest(body, {
      inferenceHeaderContentLength: length,
      limits: { ...DEFAULT_LIMITS, ...limits },
    });
  }

  function bytesElements(...parts: [number, number[]][]): Uint8Array {
    const out: number[] = [];
    for (const [length, bytes] of parts)
      out.push(length & 0xff, (length >>> 8) & 0xff, (length >>> 16) & 0xff, length >>> 24, ...bytes);
    return new Uint8Array(out);
  }

  it.each([
    ['a non-integer', 'abc'],
    ['a negative number', '-1'],
    ['a fraction', '1.5'],
    ['larger than the body', '100000'],
    ['empty', ''],
  ])('refuses an Inference-Header-Content-Length that is %s', (_label, value) => {
    const error = thrown(() =>
      decodeInferenceRequest(encoded.body, { inferenceHeaderContentLength: value, limits: DEFAULT_LIMITS }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain(
      `Inference-Header-Content-Length must be the byte length of the JSON inference header at the start of the body: an integer from 0 to the body length (${encoded.body.byteLength} bytes), got "${value}"`,
    );
  });

  it('refuses a header length that cuts the JSON header short', () => {
    const error = thrown(() =>
      decodeInferenceRequest(encoded.body, {
        inferenceHeaderContentLength: String(headerLength - 1),
        limits: DEFAULT_LIMITS,
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toMatch(/^the inference header \(the first \d+ bytes of the body\) is not valid JSON: /);
  });

  it('refuses binary_data_size beyond the remaining bytes', () => {
    const error = thrown(() => decodeBinary(header, new Uint8Array(4)));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe(
      'input "x": "binary_data_size" is 8 but only 4 bytes of binary data are left in the body',
    );
  });

  it('refuses binary_data_size that does not match the shape', () => {
    const document = { inputs: [{ name: 'x', shape: [3], datatype: 'FP32', parameters: { binary_data_size: 8 } }] };
    const error = thrown(() => decodeBinary(document, new Uint8Array(8)));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe(
      'input "x": "binary_data_size" is 8 bytes, but shape [3] of FP32 needs 3 x 4 = 12 bytes',
    );
  });

  it('refuses bytes left over after the last binary input', () => {
    const error = thrown(() => decodeBinary(header, new Uint8Array(11)));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain('3 bytes follow the inference header and the binary inputs it declares');
  });

  it('refuses a negative binary_data_size', () => {
    const document = { inputs: [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: -8 } }] };
    const error = thrown(() => decodeBinary(document, new Uint8Array(8)));
    expect(error.message).toBe('input "x": "binary_data_size" must be a non-negative integer, got -8');
  });

  it('reads BYTES elements as 4-byte little-endian lengths and UTF-8, counted against the shape', () => {
    const tail = bytesElements([2, [0x68, 0x69]], [0, []], [3, [0xe2, 0x82, 0xac]]);
    const document = {
      inputs: [{ name: 's', shape: [3], datatype: 'BYTES', parameters: { binary_data_size: tail.byteLength } }],
    };
    expect(decodeBinary(document, tail).inputs[0]?.data).toEqual(['hi', '', '€']);
  });

  it.each([
    [
      'fewer elements than the shape',
      [3],
      bytesElements([1, [0x61]]),
      400,
      'input "s": its binary data holds 1 BYTES elements, but its shape needs 3',
    ],
    [
      'more elements than the shape',
      [1],
      bytesElements([1, [0x61]], [0, []]),
      400,
      'input "s": its binary data holds more than the 1 BYTES elements its shape allows',
    ],
    [
      'a truncated length prefix',
      [2],
      new Uint8Array([1, 0, 0, 0, 0x61, 1, 0]),
      400,
      'input "s": BYTES element 1 is cut short: its 4-byte length prefix has only 2 bytes left',
    ],
    [
      'a length beyond the data',
      [1],
      bytesElements([4, [0x61]]),
      400,
      'input "s": BYTES element 0 declares 4 bytes but only 1 remain in the tensor\'s binary data',
    ],
    [
      'invalid UTF-8',
      [1],
      bytesElements([2, [0xc3, 0x28]]),
      400,
      'input "s": BYTES element 0 is not valid UTF-8; this server carries BYTES as UTF-8 strings',
    ],
    [
      'a JPEG file where the input takes text',
      [1],
      bytesElements([4, [0xff, 0xd8, 0xff, 0xe0]]),
      400,
      'input "s": BYTES element 0 holds a JPEG image, but this input takes text: images go to an input the model declares image preprocessing for ("preprocess" in its catalog entry or upload sidecar)',
    ],
    [
      'a PNG file (its signature, NUL bytes included) where the input takes text',
      [1],
      bytesElements([5, [0x89, 0x50, 0x4e, 0x47, 0x00]]),
      400,
      'input "s": BYTES element 0 holds a PNG image, but this input takes text: images go to an input the model declares image preprocessing for ("preprocess" in its catalog entry or upload sidecar)',
    ],
    [
      'an element over maxBytesElementSize',
      [1],
      bytesElements([6, [1, 2, 3, 4, 5, 6]]),
      413,
      'input "s": BYTES element 0 is 6 bytes; the limit is 5 bytes per BYTES element (limits.maxBytesElementSize)',
    ],
  ] as const)('refuses binary BYTES with %s', (_label, shape, tail, status, message) => {
    const document = {
      inputs: [{ name: 's', shape, datatype: 'BYTES', parameters: { binary_data_size: tail.byteLength } }],
    };
    const error = thrown(() => decodeBinary(document, tail, { maxBytesElementSize: 5 }));
    expect(error.statusCode).toBe(status);
    expect(error.message).toBe(message);
  });

  it('refuses binary BOOL bytes other than 0 and 1', () => {
    const document = { inputs: [{ name: 'b', shape: [2], datatype: 'BOOL', parameters: { binary_data_size: 2 } }] };
    const error = thrown(() => decodeBinary(document, new Uint8Array([1, 7])));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe('input "b": BOOL element 1 is the byte 7; BOOL bytes must be 0 or 1');
  });

  it('mixes JSON and binary inputs in one request, binary ones in order', () => {
    // Prepare
    const document = {
      inputs: [
        { name: 'a', shape: [1], datatype: 'INT32', parameters: { binary_data_size: 4 } },
        { name: 'b', shape: [2], datatype: 'UINT8', data: [7, 8] },
        { name: 'c', shape: [1], datatype: 'INT16', parameters: { binary_data_size: 2 } },
      ],
    };

    // Act
    const decoded = decodeBinary(document, new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0x01, 0x80]));

    // Assess: little-endian -2 and -32767
    expect(decoded.inputs.map((t) => Array.from(t.data as ArrayLike<number>))).toEqual([[-2], [7, 8], [-32767]]);
  });
});
