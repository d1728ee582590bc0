/**
 * The streamed serving load: parallel ranged GETs from the real embedded S3 server into a file, hashed while they
 * stream. A loopback proxy (tools/s3-proxy.ts) counts the GETs and injects faults into single parts.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import type { BlobStore, DownloadOptions } from '../../functions/core/blob-store.js';
import { ServiceUnavailableError } from '../../functions/core/errors.js';
import { ModelRepository } from '../../functions/core/model-repository.js';
import { ModelService } from '../../functions/core/model-service.js';
import { registerUpload } from '../../functions/core/registration.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import type { InferenceRequest } from '../../functions/core/types.js';
import { readConfig } from '../../functions/wiring/config.js';
import { buildLargeModel } from '../../tools/onnx/sample-models.js';
import { startS3Proxy, type ProxyFault, type ProxiedRequest, type S3Proxy } from '../../tools/s3-proxy.js';
import { startS3Fixture, type S3Fixture } from './fixture.js';

const PART = 256 * 1024;
const OPTIONS: DownloadOptions = { partBytes: PART, concurrency: 4 };
const sessionOptions = { intraOpNumThreads: 1, graphOptimizationLevel: 'all' } as const;
/** About 3 MB of weights: a dozen parts of {@link PART}. */
const model = buildLargeModel(3 * 1024 * 1024);
const MODEL_KEY = 'models/big/1/model.onnx';

let s3: S3Fixture;
let proxy: S3Proxy;
let fault: ((request: ProxiedRequest) => ProxyFault | undefined) | undefined;
let store: S3BlobStore;
let work: string;

beforeAll(async () => {
  s3 = await startS3Fixture();
  proxy = await startS3Proxy({ target: s3.server.endpoint, fault: (request) => fault?.(request) });
  const client = createS3Client({
    endpoint: proxy.endpoint,
    credentials: s3.server.credentials,
    region: s3.server.region,
    maxAttempts: 1,
  });
  store = new S3BlobStore(client, s3.server.bucket);
  work = await mkdtemp(join(tmpdir(), 'onnx-serverless-download-'));
  await store.put('uploads/big/big.onnx', model);
  const registered = await registerUpload('uploads/big/big.onnx', {
    store,
    repository: new ModelRepository(store),
    sessionFactory: onnxruntimeSessionFactory,
    sessionOptions,
    maxModelBytes: 1024 ** 3,
    limits: DEFAULT_LIMITS,
  });
  if (registered.kind !== 'registered') throw new Error(`setup: ${JSON.stringify(registered)}`);
});
afterEach(() => {
  fault = undefined;
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

const modelGets = (): ProxiedRequest[] =>
  proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(MODEL_KEY));
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('S3BlobStore.download', () => {
  it('writes the same bytes and sha256 as a plain GET, in parallel ranged parts', async () => {
    // Prepare
    const file = join(work, 'same.onnx');
    const before = modelGets().length;

    // Act
    const downloaded = await store.download(MODEL_KEY, file, OPTIONS);
    const plain = await store.get(MODEL_KEY);

    // Assess
    const written = await readFile(file);
    expect(Buffer.compare(written, Buffer.from(plain!.body))).toBe(0);
    expect(downloaded).toEqual({ size: plain!.body.byteLength, sha256: sha256(plain!.body), etag: plain!.etag });
    const ranges = modelGets()
      .slice(before)
      .map((r) => r.range);
    expect(ranges).toHaveLength(Math.ceil(plain!.body.byteLength / PART) + 1);
    expect(ranges[0]).toBe(`bytes=0-${PART - 1}`);
    expect(ranges.at(-1)).toBeUndefined();
  });

  it('handles an object smaller than one part, an empty one, and a missing key', async () => {
    // Prepare
    await store.put('misc/small.bin', new Uint8Array([1, 2, 3]));
    await store.put('misc/empty.bin', new Uint8Array(0));

    // Act
    const small = await store.download('misc/small.bin', join(work, 'small.bin'), OPTIONS);
    // Straight to the server: it answers an empty object's range with a 206 that announces one byte, which the
    // store handles but the proxy would wait for.
    const direct = new S3BlobStore(s3.client, s3.server.bucket);
    const empty = await direct.download('misc/empty.bin', join(work, 'empty.bin'), OPTIONS);
    const missing = await store.download('misc/none.bin', join(work, 'none.bin'), OPTIONS);

    // Assess
    expect(small).toMatchObject({ size: 3, sha256: sha256(new Uint8Array([1, 2, 3])) });
    expect([...(await readFile(join(work, 'small.bin')))]).toEqual([1, 2, 3]);
    expect(empty).toMatchObject({ size: 0, sha256: sha256(new Uint8Array(0)) });
    expect(missing).toBeUndefined();
    await expect(stat(join(work, 'none.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails when one part fails, and leaves no partial file', async () => {
    // Prepare: the fourth part answers 500 (the client has one attempt per call).
    fault = (request) => (request.range === `bytes=${3 * PART}-${4 * PART - 1}` ? { status: 500 } : undefined);
    const file = join(work, 'failed.onnx');

    // Act
    const attempt = store.download(MODEL_KEY, file, OPTIONS);

    // Assess
    await expect(attempt).rejects.toThrow();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('serving from the streamed file', () => {
  const request: InferenceRequest = {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Float32Array(256).fill(0.5) }],
    parameters: {},
    binaryOutputByDefault: false,
  };

  async function service(over: BlobStore = store): Promise<{ service: ModelService; scratch: string }> {
    const scratch = await mkdtemp(join(work, 'scratch-'));
    return {
      service: new ModelService({
        repository: new ModelRepository(over),
        sessionFactory: onnxruntimeSessionFactory,
        sessionOptions,
        scratchDir: scratch,
        downloadPartBytes: PART,
        downloadConcurrency: 4,
      }),
      scratch,
    };
  }

  it('shares one download between two concurrent first requests, and serves what onnxruntime computes', async () => {
    // Prepare
    const { service: serving, scratch } = await service();
    const target = await serving.resolve('big');
    const before = modelGets().length;

    // Act
    const [first, second] = await Promise.all([serving.infer(target, request), serving.infer(target, request)]);

    // Assess: one download (as many GETs as parts), the same answer, and the scratch file gone after loading.
    expect(modelGets().length - before).toBe(Math.ceil(model.byteLength / PART));
    const reference = await onnxruntimeSessionFactory.create(model, sessionOptions);
    const [expected] = await reference.run(request.inputs, ['y']);
    await reference.release();
    expect(Array.from(first.outputs[0]!.data as Float32Array)).toEqual(Array.from(expected!.data as Float32Array));
    expect(second.outputs[0]!.data).toEqual(first.outputs[0]!.data);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('refuses a corrupted part with 503 and Retry-After, caches nothing, and loads on the next request', async () => {
    // Prepare: one byte of the third part flipped in transit.
    fault = (r) =>
      r.range === `bytes=${2 * PART}-${3 * PART - 1}`
        ? {
            mutate: (chunk, offset) =>
              offset === 0 ? Buffer.concat([Buffer.from([chunk[0]! ^ 0xff]), chunk.subarray(1)]) : chunk,
          }
        : undefined;
    const { service: serving, scratch } = await service();
    const target = await serving.resolve('big');

    // Act
    const refused = await serving.infer(target, request).catch((error: unknown) => error);
    fault = undefined;
    const healed = await serving.infer(target, request);

    // Assess
    expect(refused).toBeInstanceOf(ServiceUnavailableError);
    expect((refused as ServiceUnavailableError).message).toBe(
      'version 1 of "big" could not be loaded: the stored file does not match its checksum; retry',
    );
    expect((refused as ServiceUnavailableError).retryAfterSeconds).toBe(1);
    expect(healed.outputs[0]!.shape).toEqual([1, 16]);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('says what to change when the temporary storage is full (ENOSPC injected), and recovers', async () => {
    // Prepare: a store whose disk fills up on the first download.
    let full = true;
    const filling: BlobStore = {
      get: (key) => store.get(key),
      put: (key, body, condition) => store.put(key, body, condition),
      putFile: (key, file, condition) => store.putFile(key, file, condition),
      list: (prefix) => store.list(prefix),
      delete: (key) => store.delete(key),
      download: async (key, file, options) => {
        if (!full) return store.download(key, file, options);
        throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
      },
    };
    const { service: serving } = await service(filling);
    const target = await serving.resolve('big');

    // Act
    const refused = await serving.infer(target, request).catch((error: unknown) => error);
    full = false;
    const served = await serving.infer(target, request);

    // Assess
    expect(refused).toBeInstanceOf(ServiceUnavailableError);
    expect((refused as Error).message).toMatch(
      /^version 1 of "big" \(3 MB\) does not fit in the function's temporary storage \(it ran out\): give the function at least 19 MB of ephemeral storage/,
    );
    expect(served.outputs[0]!.shape).toEqual([1, 16]);
  });
});

describe('download settings', () => {
  it('reads part size, concurrency and scratch folder from the environment, and names a bad value', () => {
    // Act
    const defaults = readConfig({});
    const set = readConfig({
      MODEL_DOWNLOAD_PART_MB: '0.25',
      MODEL_DOWNLOAD_CONCURRENCY: '3',
      MODEL_SCRATCH_DIR: '/mnt/scratch',
    });

    // Assess
    expect(defaults.download).toEqual({ partBytes: 8 * 1024 * 1024, concurrency: 8 });
    expect(defaults.scratchDir).toBeUndefined();
    expect(set.download).toEqual({ partBytes: 256 * 1024, concurrency: 3 });
    expect(set.scratchDir).toBe('/mnt/scratch');
    expect(() => readConfig({ MODEL_DOWNLOAD_CONCURRENCY: '-1' })).toThrow(
      'MODEL_DOWNLOAD_CONCURRENCY must be a positive number, got "-1"',
    );
  });
});
