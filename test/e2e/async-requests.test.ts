/**
 * Async requests through the real wiring users run (docs/async.md): `startLocal()`, its HTTP gateway, the embedded S3
 * server enforcing each function's deployed grants, real onnxruntime. A 50 MB input in S3 is answered in S3 with
 * the synchronous answer for the same bytes; bad locations are 4xx naming the rule; a model that fails on its input
 * ends as an error record and a failed job; the service keeps serving synchronously.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3AsyncStore } from '../../functions/adapters/s3-async-store.js';
import { ASYNC_LIMITS, type AsyncJob } from '../../functions/core/async-jobs.js';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { StorageAccessDeniedError } from '../../functions/core/errors.js';
import type { AsyncInvocationRecord } from '../../functions/local/async-invocation.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import type { AccessDenial } from '../../functions/local/s3-access.js';
import {
  type BucketAccess,
  bucketArn,
  bucketStatements,
  inferAccess,
  SHARED_INFER_ACCESS,
} from '../../infra/function-grants.js';
import { attr, ModelBuilder } from '../../tools/onnx/model-builder.js';
import { buildIdentityModel } from '../../tools/onnx/sample-models.js';

/** Rows × columns of FP32: 64 × 204,800 × 4 bytes = 50 MiB of tensor data in the binary extension. */
const ROWS = 64;
const COLUMNS = 204_800;

/** Rows per synchronous request: 3.2 MB in the binary extension, under Lambda's 6 MB request payload (base64). */
const SYNC_ROWS = 4;

/** `sum = ReduceSum(x, axis 1)`: a 50 MB input; each row's sum is also what a synchronous request of it answers. */
function rowSumModel(): Uint8Array {
  return new ModelBuilder({ graphName: 'row_sum' })
    .input('x', 'FP32', ['N', 'D'])
    .initializer('axes', { datatype: 'INT64', dims: [1], data: new BigInt64Array([1n]) })
    .node('ReduceSum', ['x', 'axes'], ['sum'], { keepdims: attr.int(0) })
    .output('sum', 'FP32', ['N'])
    .toBytes();
}

/**
 * `y = Reshape(x, shape)`: registers with its sample (x of 2 into shape [2]), and fails at run time on an input
 * whose element count does not fit the shape asked: a model error that only the request's data causes.
 */
function reshapeModel(): Uint8Array {
  return new ModelBuilder({ graphName: 'reshape' })
    .input('x', 'FP32', ['N'])
    .input('shape', 'INT64', [1])
    .node('Reshape', ['x', 'shape'], ['y'])
    .output('y', 'FP32', ['M'])
    .toBytes();
}

function reshapeRequest(x: number[], shape: number): object {
  return {
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [x.length], data: x },
      { name: 'shape', datatype: 'INT64', shape: [1], data: [shape] },
    ],
  };
}

interface Local {
  readonly stack: LocalStack;
  readonly dataDir: string;
  readonly denials: AccessDenial[];
  readonly successes: AsyncInvocationRecord[];
  /** The bucket as its owner sees it (the user's own `aws s3 cp`). */
  readonly owner: S3AsyncStore;
}

async function call(local: Local, method: string, path: string, body?: unknown) {
  const response = await fetch(`${local.stack.gatewayUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function jobOf(local: Local, model: string, id: unknown): Promise<AsyncJob> {
  const status = await call(local, 'GET', `/v2/models/${model}/jobs/${String(id)}`);
  expect(status.status).toBe(200);
  return status.body as unknown as AsyncJob;
}

/** Starts the local stack in a fresh data folder, recording denials and on-success records. */
async function startAsyncStack(options: Parameters<typeof startLocal>[0] = {}): Promise<Local> {
  const dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-async-'));
  const denials: AccessDenial[] = [];
  const successes: AsyncInvocationRecord[] = [];
  const stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    onAccessDenied: (denial) => denials.push(denial),
    onAsyncSuccess: (record) => successes.push(record),
    ...options,
  });
  const owner = new S3AsyncStore({
    bucket: stack.s3.bucket,
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    credentials: stack.s3.credentials,
  });
  return { stack, dataDir, denials, successes, owner };
}

async function stopAsyncStack(local: Local | undefined): Promise<void> {
  await local?.stack.close();
  if (local !== undefined) await rm(local.dataDir, { recursive: true, force: true });
}

/** Uploads a JSON input as `async/<model>/inputs/<name>`, asks for it at `path`, and waits for the job to end. */
async function runJob(local: Local, model: string, name: string, input: object, path = `/v2/models/${model}/infer`) {
  await local.owner.put(
    `async/${model}/inputs/${name}`,
    Buffer.from(JSON.stringify(input)),
    {},
    { contentType: 'application/json' },
  );
  const accepted = await call(local, 'POST', path, {
    parameters: {
      input_location: `s3://models/async/${model}/inputs/${name}`,
      output_location: `s3://models/async/${model}/outputs/${name}`,
    },
  });
  expect(accepted.status).toBe(202);
  await local.stack.asyncSettled();
  return { accepted, job: await jobOf(local, model, accepted.body.job_id) };
}

describe('async requests under npm start', () => {
  let local: Local;
  let input: { body: Uint8Array; headerLength: number; data: Float32Array };

  beforeAll(async () => {
    local = await startAsyncStack();
    const { stack, owner } = local;
    await stack.runtime.store.put('uploads/rowsum/v1.onnx', rowSumModel());
    await stack.runtime.store.put('uploads/fails/v1.onnx.json', Buffer.from(JSON.stringify(reshapeRequest([1, 2], 2))));
    await stack.runtime.store.put('uploads/fails/v1.onnx', reshapeModel());
    await stack.settled();

    const data = new Float32Array(ROWS * COLUMNS);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 250 - 2;
    const encoded = encodeInferenceRequest([{ name: 'x', datatype: 'FP32', shape: [ROWS, COLUMNS], data }], {
      binary: true,
    });
    input = {
      body: encoded.body,
      headerLength: Number(encoded.headers['Inference-Header-Content-Length']),
      data,
    };
    await owner.put(
      'async/rowsum/inputs/big.bin',
      input.body,
      {},
      {
        contentType: 'application/octet-stream',
        metadata: { 'inference-header-content-length': String(input.headerLength) },
      },
    );
  }, 120_000);

  afterAll(() => stopAsyncStack(local));

  it('answers a 50 MB input in S3 with the synchronous answer, and the job moves to succeeded', async () => {
    expect(input.body.byteLength).toBeGreaterThan(50 * 1024 * 1024);
    const accepted = await call(local, 'POST', '/v2/models/rowsum/infer', {
      id: 'big-1',
      parameters: {
        input_location: 's3://models/async/rowsum/inputs/big.bin',
        output_location: 's3://models/async/rowsum/outputs/big.json',
      },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({
      id: 'big-1',
      model_name: 'rowsum',
      model_version: '1',
      status: 'accepted',
      output_location: 's3://models/async/rowsum/outputs/big.json',
    });
    expect(accepted.body.status_location).toBe(`/v2/models/rowsum/jobs/${String(accepted.body.job_id)}`);

    await local.stack.asyncSettled();
    const job = await jobOf(local, 'rowsum', accepted.body.job_id);
    expect(job).toMatchObject({
      state: 'succeeded',
      version: '1',
      input_location: 's3://models/async/rowsum/inputs/big.bin',
    });
    expect(job.error).toBeUndefined();

    const stored = await local.owner.get('async/rowsum/outputs/big.json');
    const head = await local.owner.head('async/rowsum/outputs/big.json');
    expect(head?.contentType).toBe('application/json');
    const asyncAnswer = decodeInferenceResponse(stored?.body ?? new Uint8Array(), {
      'content-type': 'application/json',
    });

    // The same input synchronously: 50 MB is over a synchronous request's limit (that is what async is for), so
    // row by row, in requests that fit; each row's sum depends on that row alone.
    const syncSums: number[] = [];
    for (let row = 0; row < ROWS; row += SYNC_ROWS) {
      const part = encodeInferenceRequest(
        [
          {
            name: 'x',
            datatype: 'FP32',
            shape: [SYNC_ROWS, COLUMNS],
            data: input.data.subarray(row * COLUMNS, (row + SYNC_ROWS) * COLUMNS),
          },
        ],
        { binary: true },
      );
      const sync = await fetch(`${local.stack.gatewayUrl}/v2/models/rowsum/infer`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': part.headers['Inference-Header-Content-Length'] ?? '',
        },
        body: part.body,
      });
      expect(sync.status, sync.status === 200 ? '' : await sync.clone().text()).toBe(200);
      const answer = decodeInferenceResponse(new Uint8Array(await sync.arrayBuffer()), {
        'content-type': sync.headers.get('content-type') ?? undefined,
      });
      syncSums.push(...Array.from((answer.outputs[0]?.data ?? []) as Iterable<number>));
    }
    expect(asyncAnswer.outputs).toHaveLength(1);
    expect(asyncAnswer.outputs[0]).toMatchObject({ name: 'sum', datatype: 'FP32', shape: [ROWS] });
    expect(Array.from(asyncAnswer.outputs[0]?.data as Iterable<number>)).toEqual(syncSums);
    expect(asyncAnswer.modelVersion).toBe('1');

    // And the answer is the row sums, not merely the same wrong thing twice.
    const sums = Array.from(asyncAnswer.outputs[0]?.data as Iterable<number>);
    expect(sums).toHaveLength(ROWS);
    for (const row of [0, 17, ROWS - 1]) {
      let expected = 0;
      for (let c = 0; c < COLUMNS; c++) expected += input.data[row * COLUMNS + c] ?? 0;
      expect(sums[row]).toBeCloseTo(expected, 0);
    }
    // The on-success destination got the invocation's result.
    expect(local.successes.map((r) => (r.responsePayload as { job_id: string }).job_id)).toContain(job.id);
  }, 120_000);

  it('refuses locations outside the rule, in another bucket, missing or over 1 GiB with a 4xx naming the rule', async () => {
    const ask = (input_location: string, output_location = 's3://models/async/rowsum/outputs/x.json') =>
      call(local, 'POST', '/v2/models/rowsum/infer', { parameters: { input_location, output_location } });
    const rule = 'under s3://models/async/rowsum/inputs/';

    const outside = await ask('s3://models/models/rowsum/1/model.onnx');
    expect(outside.status).toBe(400);
    expect(String(outside.body.error)).toContain(rule);

    const otherModel = await ask('s3://models/async/fails/inputs/big.bin');
    expect(otherModel.status).toBe(400);
    expect(String(otherModel.body.error)).toContain(rule);

    const otherBucket = await ask('s3://other-bucket/async/rowsum/inputs/big.bin');
    expect(otherBucket.status).toBe(400);
    expect(String(otherBucket.body.error)).toContain('is not the model bucket');

    const traversal = await ask('s3://models/async/rowsum/inputs/../../../models/rowsum/manifest.json');
    expect(traversal.status).toBe(400);

    const badOutput = await ask('s3://models/async/rowsum/inputs/big.bin', 's3://models/models/rowsum/manifest.json');
    expect(badOutput.status).toBe(400);
    expect(String(badOutput.body.error)).toContain('output_location must be an S3 URI in the model bucket under');

    const missing = await ask('s3://models/async/rowsum/inputs/nothing-here.bin');
    expect(missing.status).toBe(404);
    expect(String(missing.body.error)).toContain('no such object');

    // A sparse object just over the limit: the embedded store's size is the file's (a fault injected on disk).
    await local.owner.put('async/rowsum/inputs/huge.bin', new Uint8Array(1));
    const key = 'async/rowsum/inputs/huge.bin';
    const file = join(local.dataDir, 'models', 'objects', createHash('sha256').update(key).digest('hex'), 'object');
    await truncate(file, ASYNC_LIMITS.maxInputBytes + 1);
    const huge = await ask(`s3://models/${key}`);
    expect(huge.status).toBe(413);
    expect(String(huge.body.error)).toContain(`the limit of an async input is ${ASYNC_LIMITS.maxInputBytes} bytes`);

    const withInputs = await call(local, 'POST', '/v2/models/rowsum/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
      parameters: {
        input_location: 's3://models/async/rowsum/inputs/big.bin',
        output_location: 's3://models/async/rowsum/outputs/x.json',
      },
    });
    expect(withInputs.status).toBe(400);
    expect(String(withInputs.body.error)).toContain('remove "inputs"');

    // A synchronous request that merely mentions the name is served synchronously.
    const mention = await call(local, 'POST', '/v2/models/rowsum/infer', {
      id: 'input_location',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    expect(mention.status).toBe(200);
    expect(mention.body).toMatchObject({ id: 'input_location', outputs: [{ data: [3] }] });

    // None of these was a denial: the rule refused them before S3 was asked.
    expect(local.denials).toEqual([]);
    // And the next valid request still succeeds.
    const next = await call(local, 'POST', '/v2/models/rowsum/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    expect(next.status).toBe(200);
  }, 60_000);

  it('lands a model error as an error record and a failed job; synchronous requests still succeed', async () => {
    const sync = await call(local, 'POST', '/v2/models/fails/infer', reshapeRequest([1, 2, 3], 2));
    expect(sync.status).toBeGreaterThanOrEqual(400);
    const { job } = await runJob(local, 'fails', 'three.json', reshapeRequest([1, 2, 3], 2));
    expect(job.state).toBe('failed');
    const record = JSON.parse(
      Buffer.from((await local.owner.get('async/fails/outputs/three.json'))?.body ?? []).toString(),
    ) as { error: string; job_id: string };
    expect(record.job_id).toBe(job.id);
    expect(record.error).toBe(job.error);
    // The reason the synchronous request gets (onnxruntime's, about the reshape), here as the job's.
    expect(record.error).toContain(String(sync.body.error).slice(0, 40));
    expect(record.error).toMatch(/reshape/i);

    // A bad input object (wrong shape) fails its job with the decoder's reason, at once.
    const { job: wrongJob } = await runJob(local, 'rowsum', 'wrong.json', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3], data: [1, 2, 3] }],
    });
    expect(wrongJob.state).toBe('failed');
    expect(wrongJob.error).toMatch(/shape|rank|dimension/i);

    const next = await call(local, 'POST', '/v2/models/rowsum/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }],
    });
    expect(next.status).toBe(200);
    expect((next.body.outputs as { data: number[] }[])[0]?.data).toEqual([3, 7]);
  }, 60_000);

  it('answers in the binary extension when the input object asks for binary outputs', async () => {
    const encoded = encodeInferenceRequest(
      [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      { binary: true, binaryOutput: true },
    );
    const headerLength = encoded.headers['Inference-Header-Content-Length'] ?? '';
    await local.owner.put(
      'async/rowsum/inputs/small.bin',
      encoded.body,
      {},
      { contentType: 'application/octet-stream', metadata: { 'inference-header-content-length': headerLength } },
    );
    const accepted = await call(local, 'POST', '/v2/models/rowsum/infer', {
      parameters: {
        input_location: 's3://models/async/rowsum/inputs/small.bin',
        output_location: 's3://models/async/rowsum/outputs/small.bin',
      },
    });
    expect(accepted.status).toBe(202);
    await local.stack.asyncSettled();

    const head = await local.owner.head('async/rowsum/outputs/small.bin');
    expect(head?.contentType).toBe('application/octet-stream');
    const answerHeaderLength = head?.metadata['inference-header-content-length'];
    expect(Number(answerHeaderLength)).toBeGreaterThan(0);
    const stored = await local.owner.get('async/rowsum/outputs/small.bin');
    const answer = decodeInferenceResponse(stored?.body ?? new Uint8Array(), {
      'content-type': head?.contentType,
      'inference-header-content-length': answerHeaderLength,
    });
    expect(Array.from(answer.outputs[0]?.data as Iterable<number>)).toEqual([6, 15]);
  });

  it('reads an image input for a model that declares its preprocessing, as the synchronous image body', async () => {
    await local.stack.runtime.store.put(
      'uploads/picture/identity.onnx.json',
      Buffer.from(
        JSON.stringify({ preprocess: { images: { input: { size: [64, 64], resize: 'letterbox', pad: 0 } } } }),
      ),
    );
    await local.stack.runtime.store.put('uploads/picture/identity.onnx', buildIdentityModel('FP32', [1, 3, 64, 64]));
    await local.stack.settled();
    const png = await sharp(Buffer.alloc(48 * 32 * 3, 0x7f), { raw: { width: 48, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    await local.owner.put('async/picture/inputs/tiny.png', png, {}, { contentType: 'image/png' });
    const accepted = await call(local, 'POST', '/v2/models/picture/infer', {
      parameters: {
        input_location: 's3://models/async/picture/inputs/tiny.png',
        output_location: 's3://models/async/picture/outputs/tiny.json',
      },
    });
    expect(accepted.status).toBe(202);
    await local.stack.asyncSettled();
    expect((await jobOf(local, 'picture', accepted.body.job_id)).state).toBe('succeeded');

    const stored = JSON.parse(
      Buffer.from((await local.owner.get('async/picture/outputs/tiny.json'))?.body ?? []).toString(),
    ) as { parameters: unknown; outputs: { shape: number[]; data: number[] }[] };
    const sync = await fetch(`${local.stack.gatewayUrl}/v2/models/picture/infer`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', accept: 'application/json' },
      body: png,
    });
    expect(sync.status).toBe(200);
    const syncBody = (await sync.json()) as { parameters: unknown; outputs: { shape: number[]; data: number[] }[] };
    expect(stored.parameters).toEqual({ image: { original_size: [32, 48], scale: 1, pad: [16, 8], size: [64, 64] } });
    expect(stored.parameters).toEqual(syncBody.parameters);
    expect(stored.outputs[0]?.shape).toEqual([1, 3, 64, 64]);
    expect(stored.outputs[0]?.data).toEqual(syncBody.outputs[0]?.data);
  });

  it('answers an unknown job with a 404', async () => {
    const unknown = await call(local, 'GET', '/v2/models/rowsum/jobs/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    const malformed = await call(local, 'GET', '/v2/models/rowsum/jobs/..%2Fmanifest');
    expect(malformed.status).toBe(404);
  });

  it('enforces the async grants on S3: a model function reads and writes only its own async/ prefixes', async () => {
    const credentials = local.stack.s3.addRole({
      role: 'infer-rowsum-probe',
      statements: bucketStatements(inferAccess('rowsum'), bucketArn(local.stack.s3.bucket)),
    });
    const asRole = new S3AsyncStore({
      bucket: local.stack.s3.bucket,
      endpoint: local.stack.s3.endpoint,
      region: local.stack.s3.region,
      credentials,
    });
    const before = local.denials.length;
    await expect(asRole.put('async/rowsum/outputs/probe.json', Buffer.from('{}'))).resolves.toMatchObject({
      etag: expect.any(String),
    });
    expect((await asRole.head('async/rowsum/inputs/big.bin'))?.size).toBe(input.body.byteLength);
    await expect(asRole.put('async/rowsum/inputs/planted.bin', Buffer.from('x'))).rejects.toBeInstanceOf(
      StorageAccessDeniedError,
    );
    await expect(asRole.put('async/fails/outputs/probe.json', Buffer.from('{}'))).rejects.toBeInstanceOf(
      StorageAccessDeniedError,
    );
    await expect(asRole.put('models/rowsum/manifest.json', Buffer.from('{}'))).rejects.toBeInstanceOf(
      StorageAccessDeniedError,
    );
    await expect(asRole.get('async/fails/inputs/three.json')).rejects.toBeInstanceOf(StorageAccessDeniedError);
    const denied = local.denials.slice(before);
    expect(denied.map((d) => d.action)).toEqual(['s3:PutObject', 's3:PutObject', 's3:PutObject', 's3:GetObject']);
    expect(denied.every((d) => d.role === 'infer-rowsum-probe')).toBe(true);

    // The shared function's own role (it serves rowsum here): any model's async answers, nothing else written.
    const shared = new S3AsyncStore({
      bucket: local.stack.s3.bucket,
      endpoint: local.stack.s3.endpoint,
      region: local.stack.s3.region,
      credentials: local.stack.s3.credentialsFor('infer-shared'),
    });
    await expect(shared.put('async/fails/outputs/probe.json', Buffer.from('{}'))).resolves.toBeDefined();
    await expect(shared.put('async/rowsum/inputs/planted.bin', Buffer.from('x'))).rejects.toBeInstanceOf(
      StorageAccessDeniedError,
    );
    await expect(shared.put('uploads/rowsum/planted.onnx', Buffer.from('x'))).rejects.toBeInstanceOf(
      StorageAccessDeniedError,
    );
    expect(local.denials.slice(before + 4).map((d) => [d.role, d.action])).toEqual([
      ['infer-shared', 's3:PutObject'],
      ['infer-shared', 's3:PutObject'],
    ]);
  });

  it('pins the version when the job is accepted: a route version, or the latest at that moment', async () => {
    const square = (op: 'Mul' | 'Add') =>
      new ModelBuilder({ graphName: `pinned_${op}` })
        .input('x', 'FP32', ['N'])
        .node(op, ['x', 'x'], ['y'])
        .output('y', 'FP32', ['N'])
        .toBytes();
    await local.stack.runtime.store.put('uploads/pinned/v1.onnx', square('Mul'));
    await local.stack.settled();
    await local.stack.runtime.store.put('uploads/pinned/v2.onnx', square('Add'));
    await local.stack.settled();
    const input = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [3, 5] }] };
    const first = await runJob(local, 'pinned', 'v1.json', input, '/v2/models/pinned/versions/1/infer');
    const latest = await runJob(local, 'pinned', 'latest.json', input);

    expect([first.job.version, latest.job.version]).toEqual(['1', '2']);
    const answer = async (key: string) =>
      JSON.parse(Buffer.from((await local.owner.get(key))?.body ?? []).toString()) as {
        model_version: string;
        outputs: { data: number[] }[];
      };
    expect(await answer('async/pinned/outputs/v1.json')).toMatchObject({
      model_version: '1',
      outputs: [{ data: [9, 25] }],
    });
    expect(await answer('async/pinned/outputs/latest.json')).toMatchObject({
      model_version: '2',
      outputs: [{ data: [6, 10] }],
    });
  });
});

describe('a function whose role may not write async answers', () => {
  it('ends the job failed after its retries, names no internals, and keeps serving', async () => {
    // The shared function's deployed grants, less the async answers: a grant narrowed on purpose.
    const narrowed: BucketAccess = {
      ...SHARED_INFER_ACCESS,
      objects: SHARED_INFER_ACCESS.objects.map((grant) =>
        grant.actions.includes('s3:PutObject')
          ? { ...grant, keyPatterns: grant.keyPatterns.filter((pattern) => !pattern.includes('/outputs/')) }
          : grant,
      ),
    };
    const local = await startAsyncStack({ accessOverrides: { 'infer-shared': narrowed } });
    const { stack, denials } = local;
    try {
      await stack.runtime.store.put(
        'uploads/double/v1.onnx',
        new ModelBuilder({ graphName: 'double' })
          .input('x', 'FP32', ['N'])
          .node('Add', ['x', 'x'], ['y'])
          .output('y', 'FP32', ['N'])
          .toBytes(),
      );
      await stack.settled();
      const { job } = await runJob(local, 'double', 'x.json', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [1, 2] }],
      });

      expect(job.state).toBe('failed');
      expect(job.error).toMatch(/^the job failed after 3 attempt\(s\): internal error; request id /);
      expect(job.error).toContain('(the error record could not be written to s3://models/async/double/outputs/x.json)');
      expect(job.error).not.toContain('AccessDenied');
      // Three attempts and the on-failure destination's error record, each refused by the role's policy.
      expect(denials.map((d) => [d.role, d.action, d.resource])).toEqual(
        Array.from({ length: 4 }, () => [
          'infer-shared',
          's3:PutObject',
          'arn:aws:s3:::models/async/double/outputs/x.json',
        ]),
      );
      const next = await call(local, 'POST', '/v2/models/double/infer', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [1, 2] }],
      });
      expect(next.status).toBe(200);
    } finally {
      await stopAsyncStack(local);
    }
  }, 60_000);
});
