/**
 * A catalog of hostile and malformed requests, each sent over real HTTP to the local gateway in front of the real
 * handlers (or, for what only API Gateway could send, as an event straight to the `infer` handler). Every one must
 * get its documented 4xx with a `{"error"}` body that shows no stack frame or server path, and the very next valid
 * request must succeed on the same cached session: no model is loaded again.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidModelName } from '../../functions/core/catalog.js';
import {
  addModel,
  amplifierModel,
  identityModel,
  linearBody,
  linearModel,
  showsInternals,
  startHardened,
  type Answer,
  type HardenedStack,
  type RawRequest,
} from './fixture.js';
import { restApiEvent } from '../../tools/lambda-events.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const INFER = '/v2/models/linear/infer';
const VALID = linearBody([[1, 2, 3, 4]]);
/** What {@link VALID} answers: y = 0.5 * (1 + 2 + 3 + 4) + 1. */
const VALID_Y = 6;

let stack: HardenedStack;
let loadsAfterWarmUp: number;

beforeAll(async () => {
  stack = await startHardened();
  const models: [string, Uint8Array][] = [
    ['linear', linearModel(0.5, 1)],
    ['ints', identityModel('INT32')],
    ['add', addModel()],
    ['bytes', identityModel('BYTES')],
    ['amplifier', amplifierModel(0.5)],
  ];
  for (const [name, bytes] of models) {
    const outcome = await stack.register(name, `${name}.onnx`, bytes);
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
  // Warm every model the table touches, so that any later load would be a reload.
  const warm: [string, string][] = [
    ['linear', VALID],
    ['ints', tensorBody('INT32', [1], [7])],
    ['add', JSON.stringify({ inputs: [vector('a', [1, 2]), vector('b', [3, 4])] })],
    ['bytes', tensorBody('BYTES', [1], ['hello'])],
    ['amplifier', amplify([1, 1])],
  ];
  for (const [model, body] of warm) {
    const answer = await stack.send({ method: 'POST', path: `/v2/models/${model}/infer`, headers: JSON_TYPE, body });
    expect(answer.status, answer.text).toBe(200);
  }
  loadsAfterWarmUp = stack.loads.length;
  expect(stack.loads.map((l) => l.model).sort()).toEqual(['add', 'amplifier', 'bytes', 'ints', 'linear']);
});
afterAll(() => stack?.close());

/** A request for an identity model (input `input`). */
function tensorBody(datatype: string, shape: unknown[], data: unknown): string {
  return JSON.stringify({ inputs: [{ name: 'input', datatype, shape, data }] });
}

/** A request for the amplifier model: the output shape it should fill. */
function amplify(shape: unknown[]): string {
  return JSON.stringify({ inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: shape }] });
}

function vector(name: string, data: number[]) {
  return { name, datatype: 'FP32', shape: [data.length], data };
}

function post(path: string, body: Uint8Array | string, headers: Record<string, string> = JSON_TYPE): RawRequest {
  return { method: 'POST', path, headers, body };
}

/** A request to the linear model's infer route with one input tensor descriptor replaced. */
function linearWith(input: Record<string, unknown>, extra: Record<string, unknown> = {}): RawRequest {
  return post(
    INFER,
    JSON.stringify({
      ...extra,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...input }],
    }),
  );
}

/** The binary tensor extension: a JSON header, then `tail` bytes; the header length can be overridden. */
function binary(header: unknown, tail: Uint8Array, headerLength?: string): RawRequest {
  const json = Buffer.from(JSON.stringify(header));
  return post(INFER, Buffer.concat([json, tail]), {
    'content-type': 'application/octet-stream',
    'inference-header-content-length': headerLength ?? String(json.byteLength),
  });
}

const fourFloats = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
const binaryX = (parameters: Record<string, unknown>, shape: number[] = [1, 4]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape, parameters }],
});

function restEvent(
  body: string | null,
  isBase64Encoded: boolean,
  headers: Record<string, string> | null = JSON_TYPE,
): APIGatewayProxyEvent {
  return restApiEvent({ path: INFER, headers, body, isBase64Encoded, requestId: 'hostile' });
}

/** Sends an API Gateway event straight to the `infer` handler, as only a misconfigured integration could. */
async function viaEvent(event: APIGatewayProxyEvent | APIGatewayProxyEventV2): Promise<Answer> {
  const result = (await stack.infer(event, { awsRequestId: 'hostile' })) as APIGatewayProxyResult;
  const bytes = Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8');
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
  return { status: result.statusCode, headers, text: bytes.toString('utf8'), bytes };
}

interface HostileCase {
  readonly name: string;
  readonly send: RawRequest | (() => Promise<Answer>);
  readonly status: 400 | 404 | 405 | 413 | 415;
  readonly error: RegExp;
}

const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const validDoc = JSON.parse(VALID) as Record<string, unknown>;

/** The catalog. Statuses are the README's error table; messages are checked for the part a user acts on. */
const CASES: readonly HostileCase[] = [
  // Malformed bodies.
  { name: 'malformed JSON', send: post(INFER, '{"inputs": ['), status: 400, error: /not valid JSON/ },
  {
    name: 'JSON truncated mid-data',
    send: post(INFER, VALID.slice(0, VALID.length - 9)),
    status: 400,
    error: /not valid JSON/,
  },
  { name: 'empty body', send: post(INFER, ''), status: 400, error: /not valid JSON/ },
  { name: 'top-level JSON array', send: post(INFER, '[]'), status: 400, error: /must be a JSON object/ },
  { name: 'top-level JSON null', send: post(INFER, 'null'), status: 400, error: /must be a JSON object/ },
  {
    name: 'body not UTF-8',
    send: post(INFER, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
    status: 400,
    error: /not valid UTF-8/,
  },
  {
    name: '"inputs" not an array',
    send: post(INFER, '{"inputs": {"x": [1, 2, 3, 4]}}'),
    status: 400,
    error: /"inputs" array/,
  },
  {
    name: 'input not an object',
    send: post(INFER, '{"inputs": [42]}'),
    status: 400,
    error: /inputs\[0\] must be a JSON object/,
  },
  {
    name: 'misspelt NaN token (rapidjson writes NaN)',
    send: post(INFER, VALID.replace('[1,2,3,4]', '[nan,2,3,4]')),
    status: 400,
    error: /not valid JSON/,
  },
  {
    name: '200,000 levels of nesting in parameters',
    send: post(INFER, `{"parameters":{"p":${deep(200_000)}},"inputs":[]}`),
    status: 400,
    error: /limits\.maxJsonDepth/,
  },
  {
    name: '200,000 levels of nesting in data',
    send: post(
      INFER,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":${JSON.stringify(Array(100).fill(1))},"data":${deep(200_000)}}]}`,
    ),
    status: 400,
    error: /maxJsonDepth/,
  },
  // Content types.
  {
    name: 'XML under Content-Type application/xml (read as JSON, as Triton does)',
    send: post(INFER, '<inputs/>', { 'content-type': 'application/xml' }),
    status: 400,
    error: /read as V2 JSON although its Content-Type is "application\/xml"/,
  },
  {
    name: 'Content-Encoding br',
    send: post(INFER, VALID, { 'content-type': 'application/json', 'content-encoding': 'br' }),
    status: 415,
    error: /unsupported Content-Encoding "br"/,
  },
  {
    name: 'Content-Encoding compress',
    send: post(INFER, VALID, { 'content-type': 'application/json', 'content-encoding': 'compress' }),
    status: 415,
    error: /gzip or deflate/,
  },
  {
    name: 'Content-Encoding gzip with a corrupt stream',
    send: post(INFER, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]), { 'content-encoding': 'gzip' }),
    status: 400,
    error: /not valid gzip data/,
  },
  {
    name: 'SageMaker binary type without json-header-size',
    send: post(INFER, VALID, { 'content-type': 'application/vnd.sagemaker-triton.binary+json' }),
    status: 400,
    error: /json-header-size/,
  },
  // The binary tensor extension.
  {
    name: 'header length past the body',
    send: binary(binaryX({ binary_data_size: 16 }), fourFloats, '100000'),
    status: 400,
    error: /Inference-Header-Content-Length must be/,
  },
  {
    name: 'header length not a number',
    send: binary(binaryX({ binary_data_size: 16 }), fourFloats, 'abc'),
    status: 400,
    error: /Inference-Header-Content-Length/,
  },
  {
    name: 'header length negative',
    send: binary(binaryX({ binary_data_size: 16 }), fourFloats, '-5'),
    status: 400,
    error: /Inference-Header-Content-Length/,
  },
  {
    name: 'header length cutting the JSON short',
    send: binary(binaryX({ binary_data_size: 16 }), fourFloats, '10'),
    status: 400,
    error: /inference header .* is not valid JSON/,
  },
  {
    name: 'declared binary size not matching the shape',
    send: binary(binaryX({ binary_data_size: 12 }), fourFloats.subarray(0, 12)),
    status: 400,
    error: /needs 4 x 4 = 16 bytes/,
  },
  {
    name: 'declared binary size past the body',
    send: binary(binaryX({ binary_data_size: 16 }), fourFloats.subarray(0, 8)),
    status: 400,
    error: /only 8 bytes of binary data are left/,
  },
  {
    name: 'bytes left over after the binary inputs',
    send: binary(binaryX({ binary_data_size: 16 }), Buffer.concat([fourFloats, Buffer.from([1, 2])])),
    status: 400,
    error: /2 bytes follow/,
  },
  {
    name: 'binary_data_size in a plain JSON request',
    send: post(INFER, JSON.stringify(binaryX({ binary_data_size: 16 }))),
    status: 400,
    error: /no binary part/,
  },
  {
    name: 'binary_data_size not an integer',
    send: binary(binaryX({ binary_data_size: 'sixteen' }), fourFloats),
    status: 400,
    error: /"binary_data_size" must be a non-negative integer/,
  },
  {
    name: 'raw body not a whole number of FP32 elements',
    send: post(INFER, Buffer.alloc(17), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': '0',
    }),
    status: 400,
    error: /not a whole number of FP32 elements/,
  },
  // Shapes.
  {
    name: 'shape [1e12] with no data',
    send: post(INFER, '{"inputs":[{"name":"x","datatype":"FP32","shape":[1e12]}]}'),
    status: 413,
    error: /limits\.maxElements/,
  },
  {
    name: 'shape [1e9] of FP64 (8 GB if allocated)',
    send: post(INFER, '{"inputs":[{"name":"x","datatype":"FP64","shape":[1000000000],"data":[1]}]}'),
    status: 413,
    error: /limits\.maxElements/,
  },
  {
    name: 'shape whose product overflows 2^53',
    send: linearWith({ shape: [4294967296, 4294967296, 4294967296] }),
    status: 413,
    error: /more than 2\^53 elements/,
  },
  { name: 'negative dimension', send: linearWith({ shape: [-1, 4] }), status: 400, error: /non-negative integers/ },
  { name: 'fractional dimension', send: linearWith({ shape: [1.5, 4] }), status: 400, error: /non-negative integers/ },
  { name: 'dimension as a string', send: linearWith({ shape: ['1', 4] }), status: 400, error: /non-negative integers/ },
  {
    name: 'dimension beyond 2^53',
    send: linearWith({ shape: [2 ** 60, 4] }),
    status: 400,
    error: /non-negative integers/,
  },
  { name: 'shape not an array', send: linearWith({ shape: 4 }), status: 400, error: /"shape" must be an array/ },
  {
    name: 'data shorter than the shape',
    send: linearWith({ shape: [2, 4] }),
    status: 400,
    error: /needs 8 elements, got 4/,
  },
  {
    name: 'nested data not matching the shape',
    send: linearWith({ shape: [2, 2], data: [[1, 2, 3], [4]] }),
    status: 400,
    error: /nested data does not match shape/,
  },
  {
    name: 'shape fits the data but not the model',
    send: linearWith({ shape: [4, 1] }),
    status: 400,
    error: /takes \[-1, 4\]/,
  },
  // Values.
  {
    name: 'string in a numeric tensor',
    send: linearWith({ data: [1, 'two', 3, 4] }),
    status: 400,
    error: /data\[1\] is "two"/,
  },
  {
    name: 'boolean in a numeric tensor',
    send: linearWith({ data: [1, true, 3, 4] }),
    status: 400,
    error: /must be numbers/,
  },
  {
    name: 'null in a numeric tensor',
    send: linearWith({ data: [1, null, 3, 4] }),
    status: 400,
    error: /data\[1\] is null/,
  },
  {
    name: '1e400 (infinite) as an FP32 number',
    send: post(INFER, VALID.replace('[1,2,3,4]', '[1e400,2,3,4]')),
    status: 400,
    error: /outside the finite FP32 range/,
  },
  {
    name: '"NaN" in an INT32 tensor',
    send: post('/v2/models/ints/infer', tensorBody('INT32', [2], [1, 'NaN'])),
    status: 400,
    error: /INT32 elements must be integers/,
  },
  {
    name: '"Infinity" in an INT32 tensor',
    send: post('/v2/models/ints/infer', tensorBody('INT32', [1], ['Infinity'])),
    status: 400,
    error: /INT32 elements must be integers/,
  },
  {
    name: 'INT32 element out of range',
    send: post('/v2/models/ints/infer', tensorBody('INT32', [1], [3_000_000_000])),
    status: 400,
    error: /outside the INT32 range/,
  },
  {
    name: 'fraction in an INT32 tensor',
    send: post('/v2/models/ints/infer', tensorBody('INT32', [1], [1.5])),
    status: 400,
    error: /INT32 elements must be integers/,
  },
  {
    name: 'BYTES element as a base64 object',
    send: post('/v2/models/bytes/infer', tensorBody('BYTES', [1], [{ b64: 'aGk=' }])),
    status: 400,
    error: /BYTES elements must be strings/,
  },
  {
    name: 'BYTES element over 1 MiB',
    send: post('/v2/models/bytes/infer', tensorBody('BYTES', [1], ['é'.repeat(600_000)])),
    status: 413,
    error: /limits\.maxBytesElementSize/,
  },
  // Inputs, outputs, parameters, id.
  { name: 'unknown input', send: linearWith({ name: 'z' }), status: 400, error: /unknown input "z"/ },
  {
    name: 'duplicate input',
    send: post(
      INFER,
      JSON.stringify({ inputs: [...(validDoc.inputs as unknown[]), ...(validDoc.inputs as unknown[])] }),
    ),
    status: 400,
    error: /input "x" appears more than once/,
  },
  {
    name: 'missing input',
    send: post('/v2/models/add/infer', JSON.stringify({ inputs: [vector('a', [1])] })),
    status: 400,
    error: /missing input "b"/,
  },
  { name: 'no inputs at all', send: post(INFER, '{"inputs": []}'), status: 400, error: /missing input "x"/ },
  { name: 'wrong datatype', send: linearWith({ datatype: 'FP64' }), status: 400, error: /must be FP32, got FP64/ },
  { name: 'unknown datatype', send: linearWith({ datatype: 'FLOAT' }), status: 400, error: /unknown datatype "FLOAT"/ },
  {
    name: 'unknown output requested',
    send: linearWith({}, { outputs: [{ name: 'nope' }] }),
    status: 400,
    error: /unknown output "nope"/,
  },
  {
    name: 'same output requested twice',
    send: linearWith({}, { outputs: [{ name: 'y' }, { name: 'y' }] }),
    status: 400,
    error: /requested output "y" appears more than once/,
  },
  {
    name: '65 inputs (limit 64)',
    send: post(
      INFER,
      JSON.stringify({
        inputs: Array.from({ length: 65 }, (_, i) => ({ name: `x${i}`, datatype: 'FP32', shape: [1], data: [1] })),
      }),
    ),
    status: 400,
    error: /limits\.maxInputs/,
  },
  {
    name: '65 outputs requested (limit 64)',
    send: linearWith({}, { outputs: Array.from({ length: 65 }, (_, i) => ({ name: `y${i}` })) }),
    status: 400,
    error: /limits\.maxOutputs/,
  },
  {
    name: 'id of 257 characters',
    send: linearWith({}, { id: 'i'.repeat(257) }),
    status: 400,
    error: /limits\.maxIdLength/,
  },
  {
    name: 'id not a string',
    send: linearWith({}, { id: { evil: true } }),
    status: 400,
    error: /"id" must be a string/,
  },
  {
    name: 'binary_data_output not a boolean',
    send: linearWith({}, { parameters: { binary_data_output: 'yes' } }),
    status: 400,
    error: /must be true or false/,
  },
  {
    name: 'an output too large for any memory (onnxruntime size overflow)',
    send: post('/v2/models/amplifier/infer', amplify([3_000_000_000, 3_000_000_000])),
    status: 400,
    error: /the model refused the inputs: .*overflowed/,
  },
  {
    name: 'a negative output dimension (onnxruntime shape error)',
    send: post('/v2/models/amplifier/infer', amplify([-1, 5])),
    status: 400,
    error: /the model refused the inputs: .*must be >= 0/,
  },
  {
    name: 'input name of 1 MB, echoed back bounded',
    send: linearWith({ name: 'n'.repeat(1024 * 1024) }),
    status: 400,
    error: /^unknown input "n{100}.{3950,4000}\.\.\.$/,
  },
  {
    name: 'input name of 100,000 slashes',
    send: linearWith({ name: '/'.repeat(100_000) }),
    status: 400,
    error: /unknown input/,
  },
  {
    name: 'inputs the graph refuses (onnxruntime broadcast error)',
    send: post('/v2/models/add/infer', JSON.stringify({ inputs: [vector('a', [1, 2]), vector('b', [1, 2, 3])] })),
    status: 400,
    error: /the model refused the inputs: .*broadcast/,
  },
  // Models, versions and names.
  {
    name: 'unknown model',
    send: post('/v2/models/no-such-model/infer', VALID),
    status: 404,
    error: /unknown model "no-such-model"/,
  },
  {
    name: 'unknown version',
    send: post('/v2/models/linear/versions/9/infer', VALID),
    status: 404,
    error: /no version "9"; available: 1/,
  },
  {
    name: 'unknown label',
    send: post('/v2/models/linear/versions/canary/infer', VALID),
    status: 404,
    error: /no version "canary"/,
  },
  {
    name: 'version ".."',
    send: post('/v2/models/linear/versions/../infer', VALID),
    status: 404,
    error: /unknown version/,
  },
  { name: 'model name ".."', send: post('/v2/models/../infer', VALID), status: 404, error: /unknown model/ },
  { name: 'model name "%2e%2e"', send: post('/v2/models/%2e%2e/infer', VALID), status: 404, error: /unknown model/ },
  {
    name: 'model name "..%2f..%2fetc"',
    send: post('/v2/models/..%2f..%2fetc/infer', VALID),
    status: 404,
    error: /unknown model/,
  },
  {
    name: 'model name with an encoded slash',
    send: post('/v2/models/linear%2Fversions%2F1/infer', VALID),
    status: 404,
    error: /unknown model/,
  },
  {
    name: 'model name with a backslash',
    send: post('/v2/models/..%5C..%5Cetc/infer', VALID),
    status: 404,
    error: /unknown model/,
  },
  {
    name: 'model name with a NUL byte',
    send: post('/v2/models/linear%00/infer', VALID),
    status: 404,
    error: /unknown model/,
  },
  {
    name: 'unicode model name',
    send: post(`/v2/models/${encodeURIComponent('línear')}/infer`, VALID),
    status: 404,
    error: /unknown model/,
  },
  {
    name: 'model name of 1,000 characters',
    send: post(`/v2/models/${'a'.repeat(1000)}/infer`, VALID),
    status: 404,
    error: /unknown model: model names are 1 to 128/,
  },
  {
    name: 'broken percent-encoding',
    send: post('/v2/models/%zz/infer', VALID),
    status: 400,
    error: /not valid percent-encoding/,
  },
  { name: 'request target "//"', send: { method: 'GET', path: '//' }, status: 404, error: /no route/ },
  { name: 'request target "*"', send: { method: 'OPTIONS', path: '*' }, status: 404, error: /no route/ },
  {
    name: 'unknown route under a model',
    send: post('/v2/models/linear/explain', VALID),
    status: 404,
    error: /no route/,
  },
  // Methods.
  { name: 'GET on infer', send: { method: 'GET', path: INFER }, status: 405, error: /use POST/ },
  { name: 'PUT on infer', send: { ...post(INFER, VALID), method: 'PUT' }, status: 405, error: /use POST/ },
  { name: 'DELETE on a model', send: { method: 'DELETE', path: '/v2/models/linear' }, status: 405, error: /use GET/ },
  {
    name: 'PATCH on a version',
    send: { ...post('/v2/models/linear/versions/1', '{}'), method: 'PATCH' },
    status: 405,
    error: /use GET/,
  },
  { name: 'POST on health', send: post('/v2/health/live', '{}'), status: 405, error: /use GET/ },
  {
    name: 'GET on the repository index',
    send: { method: 'GET', path: '/v2/repository/index' },
    status: 405,
    error: /use POST/,
  },
  // Sizes.
  {
    name: "body over API Gateway's 10 MB",
    send: post(INFER, Buffer.alloc(10 * 1024 * 1024 + 1, 0x20)),
    status: 413,
    error: /over 10485760 bytes/,
  },
  {
    name: 'body of 5 MB: its Lambda event is over 6 MB',
    send: post(INFER, VALID.padEnd(5_000_000, ' ')),
    status: 413,
    error: /6291456-byte request payload limit.*binary tensor extension/,
  },
  // What only a misconfigured integration could send.
  {
    name: 'event body that is not base64',
    send: () => viaEvent(restEvent('%%% not base64 %%%', true)),
    status: 400,
    error: /not valid (JSON|UTF-8)/,
  },
  {
    name: 'event with binary junk as a text body',
    send: () => viaEvent(restEvent('\u0000\u0001{', false)),
    status: 400,
    error: /not valid JSON/,
  },
  {
    name: 'event without headers or body',
    send: () => viaEvent(restEvent(null, false, null)),
    status: 400,
    error: /not valid JSON/,
  },
];

describe('hostile requests', () => {
  it('are at least 40, each with its own name', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)(
    '$name: $status with {"error"}, then a valid request on the same session',
    async ({ send, status, error }) => {
      const answer = typeof send === 'function' ? await send() : await stack.send(send);
      const next = await stack.send(post(INFER, VALID));

      expect(answer.status, answer.text.slice(0, 500)).toBe(status);
      expect(answer.headers['content-type']).toBe('application/json');
      const body = JSON.parse(answer.text) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['error']);
      expect(typeof body.error).toBe('string');
      expect(body.error as string).toMatch(error);
      expect(showsInternals(body.error as string), body.error as string).toBe(false);
      if (status === 405) expect(answer.headers.allow).toMatch(/^(GET|POST)$/);
      expect(next.status, next.text).toBe(200);
      expect((JSON.parse(next.text) as { outputs: { data: number[] }[] }).outputs[0]?.data).toEqual([VALID_Y]);
      expect(stack.loads.length, 'no model was loaded again').toBe(loadsAfterWarmUp);
    },
  );

  it('never let a hostile name reach the store: every key read was under models/<valid name>/', () => {
    const modelKeys = stack.store.keys.filter((key) => key.startsWith('models/'));
    expect(modelKeys.length).toBeGreaterThan(0);
    for (const key of modelKeys) {
      const [, name, ...rest] = key.split('/');
      expect(isValidModelName(name ?? ''), key).toBe(true);
      expect(
        rest.every((segment) => segment !== '..' && segment !== '.'),
        key,
      ).toBe(true);
    }
    // The valid but unknown name was looked up (a 404 needs that); none of the invalid ones was.
    expect(new Set(modelKeys.map((key) => key.split('/')[1]))).toEqual(
      new Set(['linear', 'ints', 'add', 'bytes', 'amplifier', 'no-such-model']),
    );
  });
});
