/**
 * Property-based fuzzing of the codecs and the handler, end to end: fast-check builds requests (valid ones, valid
 * ones with one thing broken, and junk of every kind: methods, paths, headers, bodies), they go over real HTTP to
 * the local gateway in front of real onnxruntime sessions (identity models of all 13 datatypes), and every answer
 * must be a correct inference or a 4xx `{"error"}`: never a 5xx, a crash or a hang. What only an API Gateway event
 * can carry (control characters in headers, any body string, either base64 flag) goes straight to the handler.
 */
import http from 'node:http';
import type { APIGatewayProxyResult } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import {
  INTEGER_RANGE,
  createTensorData,
  decodeInferenceRequest,
  decodeInferenceResponse,
  encodeInferenceRequest,
  float16BitsToFloat32,
} from '../../functions/core/codec/index.js';
import { DATATYPES, type Datatype, type Tensor, type TensorData } from '../../functions/core/types.js';
import {
  identityModel,
  sendRaw,
  showsInternals,
  startHardened,
  type Answer,
  type HardenedStack,
  type RawRequest,
} from './fixture.js';
import { restApiEvent } from '../../tools/lambda-events.js';

/** Runs of each property; the README quotes their sum. */
const FUZZ_RUNS = { valid: 1000, mutated: 2000, junkHttp: 2000, junkEvents: 2000 } as const;

/** Longest wait for one answer: anything slower is a hang. */
const HANG_MS = 10_000;

let stack: HardenedStack;
let agent: http.Agent;

const modelOf = (datatype: Datatype) => `id-${datatype.toLowerCase()}`;

beforeAll(async () => {
  stack = await startHardened();
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  for (const datatype of DATATYPES) {
    const outcome = await stack.register(modelOf(datatype), 'identity.onnx', identityModel(datatype));
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
});
afterAll(async () => {
  agent?.destroy();
  await stack?.close();
});

async function send(request: RawRequest): Promise<Answer> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${HANG_MS} ms: ${request.method} ${request.path.slice(0, 100)}`)),
      HANG_MS,
    );
  });
  try {
    return await Promise.race([sendRaw(stack.port, request, agent), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** A 4xx with exactly `{"error": "<message>"}` and no internals; returns the status. */
function expectClientError(answer: Answer): number {
  expect(answer.status, answer.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
  const body = JSON.parse(answer.text) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error).toBe('string');
  expect(showsInternals(body.error as string), body.error as string).toBe(false);
  return answer.status;
}

// Values of each datatype as they sit in tensor storage, edge values included (NaN, infinities, -0, 2^64-1...).
const values: Record<Datatype, fc.Arbitrary<unknown>> = {
  BOOL: fc.integer({ min: 0, max: 1 }),
  UINT8: fc.integer(INTEGER_RANGE.UINT8),
  UINT16: fc.integer(INTEGER_RANGE.UINT16),
  UINT32: fc.integer(INTEGER_RANGE.UINT32),
  UINT64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  INT8: fc.integer(INTEGER_RANGE.INT8),
  INT16: fc.integer(INTEGER_RANGE.INT16),
  INT32: fc.integer(INTEGER_RANGE.INT32),
  INT64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  FP16: fc.integer({ min: 0, max: 0xffff }),
  FP32: fc.float(),
  FP64: fc.double(),
  BYTES: fc.string({ unit: 'grapheme', maxLength: 12 }),
};

const tensors: fc.Arbitrary<Tensor> = fc.constantFrom(...DATATYPES).chain((datatype) =>
  fc.array(values[datatype], { maxLength: 24 }).map((elements): Tensor => {
    const data = createTensorData(datatype, elements.length) as unknown as { [i: number]: unknown };
    elements.forEach((value, i) => {
      data[i] = value;
    });
    return { name: 'input', datatype, shape: [elements.length], data: data as unknown as TensorData };
  }),
);

/** A valid request for the identity model of its datatype, in any of the forms a client may choose. */
const validRequests = fc.record({
  tensor: tensors,
  binaryInput: fc.boolean(),
  binaryOutput: fc.option(fc.boolean(), { nil: undefined }),
  id: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
});

type ValidRequest = typeof validRequests extends fc.Arbitrary<infer T> ? T : never;

function encodeValid(request: ValidRequest): RawRequest {
  const { tensor, binaryInput, binaryOutput, id } = request;
  const encoded = encodeInferenceRequest([tensor], {
    binary: binaryInput,
    ...(binaryOutput === undefined ? {} : { binaryOutput }),
    ...(id === undefined ? {} : { id }),
  });
  return {
    method: 'POST',
    path: `/v2/models/${modelOf(tensor.datatype)}/infer`,
    headers: encoded.headers,
    body: encoded.body,
  };
}

/** Element `i` as a comparable string; `json` folds what V2 JSON cannot carry (-0, FP16 NaN payloads). */
function element(datatype: Datatype, data: TensorData, i: number, json: boolean): string {
  const value = (data as ArrayLike<unknown>)[i];
  if (datatype === 'FP16') {
    if (!json) return String(value);
    const float = float16BitsToFloat32(value as number);
    return Number.isNaN(float) ? 'NaN' : String(float === 0 ? 0 : float);
  }
  if (typeof value === 'number' && Object.is(value, -0)) return json ? '0' : '-0';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  return String(value);
}

/** `sentAsJson`: the input went as JSON, so what JSON cannot carry was already folded on the way in. */
function expectIdentity(answer: Answer, input: Tensor, id: string | undefined, sentAsJson = false): void {
  expect(answer.status, answer.text.slice(0, 300)).toBe(200);
  const response = decodeInferenceResponse(answer.bytes, answer.headers as Record<string, string>);
  expect(response.modelName).toBe(modelOf(input.datatype));
  expect(response.id).toBe(id);
  const [output] = response.outputs;
  expect(output?.datatype).toBe(input.datatype);
  expect(output?.shape).toEqual(input.shape);
  const json = sentAsJson || answer.headers['content-type'] === 'application/json';
  const got = Array.from({ length: output!.data.length }, (_, i) => element(input.datatype, output!.data, i, json));
  const want = Array.from({ length: input.data.length }, (_, i) => element(input.datatype, input.data, i, json));
  expect(got).toEqual(want);
}

const asBytes = (body: RawRequest['body']): Buffer => Buffer.from(body ?? '');

const mutations = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant('content-type' as const),
    value: fc.constantFrom(
      'application/json',
      'text/plain',
      'application/octet-stream',
      'application/vnd.sagemaker-triton.binary+json;json-header-size=5',
      '',
    ),
  }),
  fc.record({
    kind: fc.constant('header-length' as const),
    value: fc.oneof(fc.nat({ max: 400 }).map(String), fc.constantFrom('-1', 'x', '1e2', '')),
  }),
  fc.record({ kind: fc.constant('drop-header-length' as const) }),
  fc.record({ kind: fc.constant('model' as const), datatype: fc.constantFrom(...DATATYPES) }),
);

type Mutation = typeof mutations extends fc.Arbitrary<infer T> ? T : never;

function mutate(request: RawRequest, mutation: Mutation): RawRequest {
  const body = asBytes(request.body);
  const headers: Record<string, string> = { ...request.headers };
  const at = 'at' in mutation ? mutation.at % (body.byteLength + 1) : 0;
  switch (mutation.kind) {
    case 'truncate':
      return { ...request, body: body.subarray(0, at) };
    case 'flip': {
      const copy = Buffer.from(body);
      if (copy.byteLength > 0) copy[at % copy.byteLength] = mutation.byte;
      return { ...request, body: copy };
    }
    case 'insert':
      return { ...request, body: Buffer.concat([body.subarray(0, at), mutation.bytes, body.subarray(at)]) };
    case 'content-type':
      return { ...request, headers: { ...headers, 'Content-Type': mutation.value } };
    case 'header-length':
      return { ...request, headers: { ...headers, 'Inference-Header-Content-Length': mutation.value } };
    case 'drop-header-length':
      delete headers['Inference-Header-Content-Length'];
      return { ...request, headers };
    case 'model':
      return { ...request, path: `/v2/models/${modelOf(mutation.datatype)}/infer` };
  }
}

/** What the server must have done with `request`: the codec's own verdict, decoded here independently. */
function expectedVerdict(request: RawRequest): { status: number; input?: Tensor; id?: string } {
  const datatype = DATATYPES.find((d) => request.path === `/v2/models/${modelOf(d)}/infer`)!;
  const header = (name: string) => Object.entries(request.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
  try {
    const decoded = decodeInferenceRequest(asBytes(request.body), {
      contentType: header('content-type'),
      inferenceHeaderContentLength: header('inference-header-content-length'),
      limits: DEFAULT_LIMITS,
      modelInputs: [{ name: 'input', datatype, shape: [-1] }],
    });
    const [input, ...others] = decoded.inputs;
    const fits =
      input !== undefined &&
      others.length === 0 &&
      input.name === 'input' &&
      input.datatype === datatype &&
      input.shape.length === 1;
    const outputsKnown = (decoded.outputs ?? []).every((o) => o.name === 'output');
    if (!fits || !outputsKnown) return { status: 400 };
    return { status: 200, input, ...(decoded.id === undefined ? {} : { id: decoded.id }) };
  } catch (error) {
    return { status: (error as { statusCode?: number }).statusCode ?? 500 };
  }
}

const printable = (maxLength: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${maxLength}}$`));
const segment = fc.oneof(
  fc.constantFrom(
    'v2',
    'models',
    'versions',
    'infer',
    'ready',
    'health',
    'live',
    'repository',
    'index',
    '1',
    '..',
    '.',
    '%2e%2e',
    '%2F',
    '',
    'id-fp32',
  ),
  fc.string({ unit: 'grapheme', maxLength: 12 }).map(encodeURIComponent),
  printable(8).map((s) => s.replace(/[^A-Za-z0-9_.~%-]/g, '')),
);
const paths = fc.oneof(
  fc.array(segment, { maxLength: 7 }).map((parts) => `/${parts.join('/')}`),
  fc.array(segment, { maxLength: 4 }).map((parts) => `/v2/models/${parts.join('/')}`),
  fc.constantFrom(...DATATYPES).map((d) => `/v2/models/${modelOf(d)}/infer`),
);
const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        inputs: fc.array(
          fc.record(
            {
              name: fc.constantFrom('input', 'x'),
              datatype: fc.constantFrom(...DATATYPES, 'BAD'),
              shape: fc.jsonValue({ maxDepth: 2 }),
              data: fc.jsonValue({ maxDepth: 3 }),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);
const junkRequests = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND'),
  path: paths,
  headers: fc.dictionary(
    fc.constantFrom(
      'content-type',
      'inference-header-content-length',
      'accept',
      'x-junk',
      'content-encoding',
      'transfer-encoding-junk',
    ),
    printable(40),
    { maxKeys: 4 },
  ),
  body: fc.option(bodies, { nil: undefined }),
});

describe('fuzzing the handler over HTTP', () => {
  it('answers valid requests of every datatype and form with exactly their inputs (identity models)', async () => {
    await fc.assert(
      fc.asyncProperty(validRequests, async (request) => {
        const answer = await send(encodeValid(request));
        expectIdentity(answer, request.tensor, request.id, !request.binaryInput);
      }),
      { numRuns: FUZZ_RUNS.valid },
    );
  });

  it('answers valid requests with one thing broken as the codec decides: the right answer, or the same 4xx', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(validRequests, mutations, async (valid, mutation) => {
        const request = mutate(encodeValid(valid), mutation);
        const verdict = expectedVerdict(request);

        const answer = await send(request);

        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        expect(answer.status, answer.text.slice(0, 300)).toBe(verdict.status);
        if (verdict.input !== undefined) expectIdentity(answer, verdict.input, verdict.id);
        else expectClientError(answer);
      }),
      { numRuns: FUZZ_RUNS.mutated },
    );
    // The mutations must reach both outcomes, or this proves little.
    expect(statuses.get(200)).toBeGreaterThan(20);
    expect(statuses.get(400)).toBeGreaterThan(20);
  });

  it('answers junk methods, paths, headers and bodies with a 2xx or a 4xx {"error"}, never a 5xx', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(junkRequests, async (request) => {
        const answer = await send(request);

        statuses.add(answer.status);
        expect(
          answer.status === 200 || (answer.status >= 400 && answer.status < 500),
          `${answer.status} ${answer.text.slice(0, 300)}`,
        ).toBe(true);
        // A HEAD answer has no body to check.
        if (answer.status >= 400 && request.method !== 'HEAD') expectClientError(answer);
      }),
      { numRuns: FUZZ_RUNS.junkHttp },
    );
    expect([...statuses].filter((s) => s >= 400).length).toBeGreaterThanOrEqual(3);
  });
});

describe('fuzzing the handler with API Gateway events', () => {
  it('answers any body string, base64 flag and header set with a 2xx or a 4xx {"error"}', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DATATYPES).map((d) => `/v2/models/${modelOf(d)}/infer`),
        fc.option(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 200 }),
            fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64')),
          ),
          { nil: null },
        ),
        fc.boolean(),
        fc.dictionary(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 60 }), { maxKeys: 5 }),
        async (path, body, isBase64Encoded, headers) => {
          const event = restApiEvent({ path, headers, body, isBase64Encoded, requestId: 'fuzz' });

          const result = (await stack.infer(event, { awsRequestId: 'fuzz' })) as APIGatewayProxyResult;

          const text = Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8').toString('utf8');
          if (result.statusCode !== 200)
            expectClientError({ status: result.statusCode, headers: {}, text, bytes: Buffer.from(text) });
        },
      ),
      { numRuns: FUZZ_RUNS.junkEvents },
    );
  });
});
