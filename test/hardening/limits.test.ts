/**
 * Every request limit, configured through the function's environment (`MODEL_LIMITS`, which infra fills from the
 * catalog's `limits`) and enforced by the handler: a request at the limit is served, one step past it gets the
 * documented 4xx naming the limit. Then Lambda's own payload limits, which no configuration can lift: the local
 * gateway refuses what Lambda would, and a response too large for Lambda is refused with what to do instead.
 */
import fc from 'fast-check';
import sharp from 'sharp';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, type Limits } from '../../functions/core/catalog.js';
import { decodeInferenceResponse } from '../../functions/core/codec/index.js';
import { gunzipSync } from 'node:zlib';
import { createApi, lambdaBodyBytes } from '../../functions/transport/api.js';
import { redactInternals } from '../../functions/core/redact.js';
import { PLATFORM_LIMITS } from '../../functions/core/platform-limits.js';

const {
  lambdaRequestPayloadBytes: LAMBDA_REQUEST_PAYLOAD_BYTES,
  lambdaResponsePayloadBytes: LAMBDA_RESPONSE_PAYLOAD_BYTES,
} = PLATFORM_LIMITS;
import { lambdaEventBytes, lambdaResultBytes } from '../../functions/local/gateway.js';
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
} from './fixture.js';
import { scanBombJpeg } from '../image/scan-bomb.js';

const JSON_TYPE = { 'content-type': 'application/json' };

/** Small enough that every limit is cheap to reach; each differs from its default. */
const TIGHT: Limits = {
  maxBodyBytes: 4096,
  maxElements: 40,
  maxJsonDepth: 6,
  maxBytesElementSize: 8,
  maxInputs: 2,
  maxOutputs: 1,
  maxIdLength: 8,
  maxResponseBytes: 1024,
  maxImagePixels: 1000,
  imageDecodeTimeoutSeconds: 1,
  maxJpegScans: 5,
  minCompressBytes: 0,
  timeoutMs: 5000,
};

let tight: HardenedStack;
let loose: HardenedStack;

async function registerAll(stack: HardenedStack): Promise<void> {
  const models: [string, Uint8Array][] = [
    ['linear', linearModel(1, 0)],
    ['add', addModel()],
    ['bytes', identityModel('BYTES')],
    ['amplifier', amplifierModel(0.1)],
  ];
  for (const [name, bytes] of models) {
    const outcome = await stack.register(name, `${name}.onnx`, bytes);
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
  // Image bodies: a [1, 3, 2, 2] tensor (12 elements) stays within maxElements whatever the picture's size.
  const picture = await stack.register('picture', 'picture.onnx', identityModel('FP32', [1, 3, 2, 2]), {
    preprocess: { images: { input: { size: [2, 2], resize: 'stretch' } } },
  });
  expect(picture.kind, JSON.stringify(picture)).toBe('registered');
}

/** A PNG of `width × height` grey pixels. */
const png = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
const [pngAtLimit, pngOverLimit] = await Promise.all([png(40, 25), png(40, 26)]);
const PNG_TYPE = { 'content-type': 'image/png' };
// A grey progressive JPEG of 1 + levels scans: 5 is the limit, 6 past it.
const jpegAtLimit = scanBombJpeg({ width: 8, height: 8, components: 1, lastCoefficient: 1, levels: 4 }).bytes;
const jpegOverLimit = scanBombJpeg({ width: 8, height: 8, components: 1, lastCoefficient: 1, levels: 5 }).bytes;

beforeAll(async () => {
  tight = await startHardened({ MODEL_LIMITS: JSON.stringify(TIGHT) });
  loose = await startHardened();
  await registerAll(tight);
  await registerAll(loose);
});
afterAll(async () => {
  await tight?.close();
  await loose?.close();
});

const rows = (n: number) => Array.from({ length: n }, (_, i) => [i, 1, 2, 3]);
const nestedParameters = (depth: number): unknown => (depth === 0 ? {} : { p: nestedParameters(depth - 1) });
const amplify = (rowCount: number, columns: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...extra, inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [rowCount, columns] }] });
const bytesBody = (elements: string[]) =>
  JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [elements.length], data: elements }] });
const vector = (name: string, n: number) => ({ name, datatype: 'FP32', shape: [n], data: Array<number>(n).fill(1) });

function infer(
  stack: HardenedStack,
  model: string,
  body: string | Uint8Array,
  headers: Record<string, string> = JSON_TYPE,
): Promise<Answer> {
  return stack.send({ method: 'POST', path: `/v2/models/${model}/infer`, headers, body });
}

function errorOf(answer: Answer): string {
  const body = JSON.parse(answer.text) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(['error']);
  return body.error as string;
}

interface LimitCase {
  readonly limit: keyof Limits;
  readonly model: string;
  /** A request the limit allows: the largest one, except for the response size (whole elements only). */
  readonly atLimit: string | Uint8Array;
  /** One step past it. */
  readonly overLimit: string | Uint8Array;
  readonly status: 400 | 413;
  /** @default JSON */
  readonly headers?: Record<string, string>;
}

const CASES: readonly LimitCase[] = [
  {
    limit: 'maxBodyBytes',
    model: 'linear',
    atLimit: linearBody(rows(1)).padEnd(4096, ' '),
    overLimit: linearBody(rows(1)).padEnd(4097, ' '),
    status: 413,
  },
  {
    limit: 'maxElements',
    model: 'linear',
    atLimit: linearBody(rows(10)),
    overLimit: linearBody(rows(11)),
    status: 413,
  },
  {
    limit: 'maxElements',
    model: 'add',
    // Charged over all inputs: 39 + 1 is the limit (b of 1 element broadcasts over a).
    atLimit: JSON.stringify({ inputs: [vector('a', 39), vector('b', 1)] }),
    overLimit: JSON.stringify({ inputs: [vector('a', 40), vector('b', 1)] }),
    status: 413,
  },
  // The top-level object is depth 1 and "parameters" depth 2, so 4 more levels make 6.
  {
    limit: 'maxJsonDepth',
    model: 'linear',
    atLimit: linearBody(rows(1), { parameters: nestedParameters(4) }),
    overLimit: linearBody(rows(1), { parameters: nestedParameters(5) }),
    status: 400,
  },
  // Counted in UTF-8 bytes: five "é" are 10 bytes.
  {
    limit: 'maxBytesElementSize',
    model: 'bytes',
    atLimit: bytesBody(['12345678', 'éééé']),
    overLimit: bytesBody(['12345678', 'ééééé']),
    status: 413,
  },
  {
    limit: 'maxInputs',
    model: 'add',
    atLimit: JSON.stringify({ inputs: [vector('a', 1), vector('b', 1)] }),
    overLimit: JSON.stringify({ inputs: [vector('a', 1), vector('b', 1), vector('c', 1)] }),
    status: 400,
  },
  {
    limit: 'maxOutputs',
    model: 'linear',
    atLimit: linearBody(rows(1), { outputs: [{ name: 'y' }] }),
    overLimit: linearBody(rows(1), { outputs: [{ name: 'y' }, { name: 'z' }] }),
    status: 400,
  },
  {
    limit: 'maxIdLength',
    model: 'linear',
    atLimit: linearBody(rows(1), { id: '12345678' }),
    overLimit: linearBody(rows(1), { id: '123456789' }),
    status: 400,
  },
  // 0.1 as FP32 is 0.10000000149011612 in JSON: 20 bytes per element, so 30 columns fit in 1024 bytes, 60 do not.
  { limit: 'maxResponseBytes', model: 'amplifier', atLimit: amplify(1, 30), overLimit: amplify(1, 60), status: 413 },
  // 40 x 25 is the 1,000 pixels allowed, 40 x 26 is past them (checked from the PNG header, before decoding).
  {
    limit: 'maxImagePixels',
    model: 'picture',
    atLimit: pngAtLimit,
    overLimit: pngOverLimit,
    status: 413,
    headers: PNG_TYPE,
  },
  {
    limit: 'maxJpegScans',
    model: 'picture',
    atLimit: jpegAtLimit,
    overLimit: jpegOverLimit,
    status: 413,
    headers: { 'content-type': 'image/jpeg' },
  },
];

describe('request limits, per function from MODEL_LIMITS', () => {
  it('covers every limit of the catalog schema', () => {
    // minCompressBytes refuses nothing: its own test is below. No image small enough for maxImagePixels here takes a
    // second to decode: imageDecodeTimeoutSeconds has its own test (test/image/decode-bounds.test.ts). timeoutMs is a
    // deadline, not a refusal of the request as sent: test/e2e/inference-isolation.test.ts.
    const refusing = Object.keys(DEFAULT_LIMITS).filter(
      (key) => key !== 'minCompressBytes' && key !== 'imageDecodeTimeoutSeconds' && key !== 'timeoutMs',
    );
    expect(new Set(CASES.map((c) => c.limit))).toEqual(new Set(refusing));
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) expect(TIGHT[key]).not.toBe(DEFAULT_LIMITS[key]);
  });

  it.each(CASES)(
    '$limit: served at (or just within) the limit, $status past it, naming limits.$limit',
    async ({ limit, model, atLimit, overLimit, status, headers = JSON_TYPE }) => {
      const served = await infer(tight, model, atLimit, headers);
      const refused = await infer(tight, model, overLimit, headers);
      const elsewhere = await infer(loose, model, overLimit, headers);

      expect(served.status, served.text).toBe(200);
      expect(refused.status, refused.text).toBe(status);
      expect(errorOf(refused)).toContain(`limits.${limit}`);
      expect(showsInternals(errorOf(refused))).toBe(false);
      // The same request is fine under the default limits, or a different refusal than the limit's.
      if (elsewhere.status !== 200) expect(errorOf(elsewhere)).not.toContain(`limits.${limit}`);
    },
  );

  it('minCompressBytes: compresses responses from that size when Accept-Encoding allows it', async () => {
    const headers = { ...JSON_TYPE, 'accept-encoding': 'gzip' };
    const small = await infer(tight, 'linear', linearBody(rows(1)), headers);
    const uncompressed = await infer(loose, 'linear', linearBody(rows(1)), headers);

    expect(small.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(small.bytes).toString('utf8'))).toMatchObject({ model_name: 'linear' });
    expect(uncompressed.headers['content-encoding']).toBeUndefined();
  });

  it('echoes an id at the length limit', async () => {
    const answer = await infer(tight, 'linear', linearBody(rows(1), { id: '12345678' }));

    expect(JSON.parse(answer.text)).toMatchObject({ id: '12345678', model_name: 'linear', model_version: '1' });
  });

  it('refuses an oversized shape in the binary form before reading its bytes', async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [11, 4], parameters: { binary_data_size: 176 } }],
      }),
    );
    const body = Buffer.concat([header, Buffer.alloc(176)]);

    const answer = await infer(tight, 'linear', body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    });

    expect(answer.status).toBe(413);
    expect(errorOf(answer)).toMatch(/shape \[11,4\] has 44 elements; .* at most 40 .*limits\.maxElements/);
  });
});

describe("Lambda's payload limits", () => {
  it('refuses a JSON response over the limit with what to do, and serves the same answer as binary', async () => {
    const json = await infer(loose, 'amplifier', amplify(1000, 1000));
    const binary = await infer(loose, 'amplifier', amplify(1000, 1000, { parameters: { binary_data_output: true } }));

    expect(json.status).toBe(413);
    expect(errorOf(json)).toMatch(
      /^the response would be \d+ bytes as JSON, over the 6225920-byte limit of a Lambda response \(limits\.maxResponseBytes\): request binary outputs \("binary_data_output": true.*fewer outputs/,
    );
    expect(binary.status, binary.text.slice(0, 300)).toBe(200);
    const decoded = decodeInferenceResponse(binary.bytes, binary.headers as Record<string, string>);
    const output = decoded.outputs[0]!;
    expect(output.shape).toEqual([1000, 1000]);
    expect((output.data as Float32Array).every((v) => v === Math.fround(0.1))).toBe(true);
    // Base64 in the Lambda result: within the limit that refused the JSON.
    expect(Math.ceil(binary.bytes.byteLength / 3) * 4).toBeLessThanOrEqual(DEFAULT_LIMITS.maxResponseBytes);
  });

  it('counts the backslashes a JSON body gains inside the Lambda result', async () => {
    const elements = Array<string>(200).fill('a');
    const request = {
      method: 'POST',
      path: '/v2/models/bytes/infer',
      headers: JSON_TYPE,
      body: new TextEncoder().encode(bytesBody(elements)),
      requestId: 'r',
    };
    const api = (limits: Limits) =>
      createApi({ service: loose.runtime.service, scope: { kind: 'all' }, limitsFor: () => limits });
    const plain = await api(DEFAULT_LIMITS)(request);
    const size = Buffer.byteLength(plain.body as string);
    const escaped = Buffer.byteLength(JSON.stringify(String(plain.body))) - 2;

    // Between the raw size and the size inside the result: the raw size alone would let it through.
    const refused = await api({ ...DEFAULT_LIMITS, maxResponseBytes: size + 100 })(request);
    const served = await api({ ...DEFAULT_LIMITS, maxResponseBytes: escaped })(request);

    expect(plain.statusCode).toBe(200);
    expect(escaped).toBeGreaterThan(size + 400);
    expect(refused.statusCode).toBe(413);
    expect(served.statusCode).toBe(200);
  });

  it("answers 413 when the event API Gateway would build is over Lambda's request payload limit", async () => {
    const valid = linearBody(rows(1));
    const fits = await infer(loose, 'linear', valid.padEnd(4_600_000, ' '));
    const over = await infer(loose, 'linear', valid.padEnd(4_800_000, ' '));

    expect(fits.status, fits.text.slice(0, 300)).toBe(200);
    expect(over.status).toBe(413);
    expect(errorOf(over)).toMatch(
      /^the request body is 4800000 bytes; base64-encoded in the Lambda event, as the API Gateway REST API sends it, that makes \d+ bytes, over Lambda's 6291456-byte request payload limit .* send the binary tensor extension .* or fewer rows per request$/,
    );
  });
});

describe('payload arithmetic', () => {
  const event = (body: string | null, headers: Record<string, string>): APIGatewayProxyEvent =>
    ({
      path: '/v2/models/m/infer',
      httpMethod: 'POST',
      headers,
      body,
      isBase64Encoded: body !== null,
      requestContext: {},
    }) as APIGatewayProxyEvent;

  it('sizes an event exactly as Lambda counts it, for any body and headers', () => {
    fc.assert(
      fc.property(
        fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
        fc.dictionary(fc.string(), fc.string({ unit: 'binary' })),
        (body, headers) => {
          const e = event(body === null ? null : Buffer.from(body).toString('base64'), headers);
          expect(lambdaEventBytes(e)).toBe(Buffer.byteLength(JSON.stringify(e)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sizes a JSON body inside a Lambda result exactly, and a binary one as base64', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        const body = new TextEncoder().encode(text);
        expect(lambdaBodyBytes(body, 'application/json')).toBe(Buffer.byteLength(JSON.stringify(text)) - 2);
        expect(lambdaBodyBytes(body, 'application/octet-stream')).toBe(Buffer.from(body).toString('base64').length);
      }),
      { numRuns: 300 },
    );
  });

  it('sizes large results exactly and small ones by a bound that cannot reach the limit', () => {
    const large = { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '"\\'.repeat(600_000) };
    const small = { statusCode: 200, headers: {}, body: '\u0001'.repeat(1000) };

    expect(lambdaResultBytes(large)).toBe(Buffer.byteLength(JSON.stringify(large)));
    expect(lambdaResultBytes(small)).toBeLessThan(LAMBDA_RESPONSE_PAYLOAD_BYTES);
    expect(LAMBDA_REQUEST_PAYLOAD_BYTES).toBe(6_291_456);
  });

  it('keeps source locations and stack frames of native libraries out of client messages', () => {
    const native =
      "Non-zero status code returned while running Add node. Name:'Add_0' Status Message: " +
      '/onnxruntime_src/onnxruntime/core/providers/cpu/math/element_wise_ops.h:563 void onnxruntime::BroadcastIterator::Init(ptrdiff_t, ptrdiff_t) axis == 1 || axis == largest was false. ' +
      'Attempting to broadcast an axis by a dimension other than 1. 2 by 3\n';

    expect(redactInternals(native)).toBe(
      "Non-zero status code returned while running Add node. Name:'Add_0' Status Message: Attempting to broadcast an axis by a dimension other than 1. 2 by 3",
    );
    expect(
      redactInternals(
        'Status Message: virtual OrtValue* onnxruntime::OpKernelContext::OutputMLValue(int, const onnxruntime::TensorShape&) [ONNXRuntimeError] : 1 : FAIL : tensor.cc:57 CalculateTensorStorageSize Tensor shape.Size() must be >= 0',
      ),
    ).toBe('Status Message: CalculateTensorStorageSize Tensor shape.Size() must be >= 0');
    expect(redactInternals('bad\n    at f (/work/main/x.ts:1:2)\n    at g (node:internal/x:3:4)')).toBe('bad');
    expect(redactInternals('no route /v2/models/a/b/c')).toBe('no route /v2/models/a/b/c');
    expect(redactInternals('x'.repeat(10_000))).toHaveLength(4096 + 3);
  });
});
