/**
 * `BlobStore.putFile`, the streamed write of a local file, on both stores: the S3 store against the real embedded S3
 * server (single PutObject below the part size, multipart above it) and the folder store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ServiceException, UploadPartCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import type { BlobStore } from '../../functions/core/blob-store.js';
import { PreconditionFailedError } from '../../functions/core/errors.js';
import { startS3Fixture, type S3Fixture } from './fixture.js';

const MiB = 1024 * 1024;
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

let s3: S3Fixture;
let work: string;
/** 11 MiB and a bit: three 5 MiB parts, the last one short. */
let large: { file: string; bytes: Buffer };
let small: { file: string; bytes: Buffer };

beforeAll(async () => {
  s3 = await startS3Fixture();
  work = await mkdtemp(join(tmpdir(), 'onnx-serverless-put-file-'));
  large = { file: join(work, 'large.bin'), bytes: randomBytes(11 * MiB + 12_345) };
  small = { file: join(work, 'small.bin'), bytes: randomBytes(70_000) };
  await writeFile(large.file, large.bytes);
  await writeFile(small.file, small.bytes);
});

afterAll(async () => {
  await s3.stop();
  await rm(work, { recursive: true, force: true });
});

interface Call {
  readonly command: string;
  readonly part?: number;
  uploadId?: string;
  ok: boolean;
}

/**
 * A client of the same server that records each command and its outcome, and answers 503 to UploadPart `failing`
 * (an injected fault; 0 fails none).
 */
function recordingClient(failing = 0): { client: S3Client; calls: Call[] } {
  const client = createS3Client({
    endpoint: s3.server.endpoint,
    credentials: s3.server.credentials,
    region: s3.server.region,
    maxAttempts: 1,
  });
  const calls: Call[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { PartNumber?: number; UploadId?: string };
      const call: Call = {
        command: context.commandName ?? '',
        ...(input.PartNumber === undefined ? {} : { part: input.PartNumber }),
        ...(input.UploadId === undefined ? {} : { uploadId: input.UploadId }),
        ok: false,
      };
      calls.push(call);
      const part = input.PartNumber;
      if (context.commandName === 'UploadPartCommand' && part === failing) {
        throw new S3ServiceException({
          name: 'ServiceUnavailable',
          $fault: 'server',
          $metadata: { httpStatusCode: 503 },
          message: 'injected: the part could not be stored',
        });
      }
      const result = await next(args);
      call.ok = true;
      const created = (result.output as { UploadId?: string }).UploadId;
      if (created !== undefined) call.uploadId = created;
      return result;
    },
    { step: 'initialize', name: 'recordCalls' },
  );
  return { client, calls };
}

const stores: [string, () => Promise<BlobStore>][] = [
  [
    'S3BlobStore (embedded S3 server)',
    async () => new S3BlobStore(s3.client, s3.server.bucket, { upload: { partBytes: 5 * MiB, concurrency: 2 } }),
  ],
  ['FsBlobStore', async () => new FsBlobStore(await mkdtemp(join(work, 'repo-')))],
];

describe.each(stores)('%s.putFile', (_name, makeStore) => {
  let store: BlobStore;

  beforeAll(async () => {
    store = await makeStore();
  });

  it.each([
    ['a file above the part size', () => large],
    ['a file below it', () => small],
  ])('stores %s byte for byte, with the etag a read returns', async (_what, which) => {
    // Prepare
    const { file, bytes } = which();
    const key = `models/put-file/${bytes.byteLength}/model.onnx`;

    // Act
    const { etag } = await store.putFile(key, file, { ifNoneMatch: '*' });
    const read = await store.get(key);

    // Assess
    expect(read?.body.byteLength).toBe(bytes.byteLength);
    expect(sha256(read?.body ?? new Uint8Array())).toBe(sha256(bytes));
    expect(read?.etag).toBe(etag);
  });

  it('refuses to replace an existing object under If-None-Match, and keeps it as it was', async () => {
    // Prepare
    const key = 'models/put-file/taken/model.onnx';
    await store.put(key, new TextEncoder().encode('the first version'));

    // Act
    const writing = store.putFile(key, large.file, { ifNoneMatch: '*' });

    // Assess
    await expect(writing).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(new TextDecoder().decode((await store.get(key))?.body)).toBe('the first version');
  });

  it('replaces an object only while its etag is the one given (If-Match)', async () => {
    // Prepare
    const key = 'models/put-file/replaced/model.onnx';
    const { etag } = await store.put(key, new TextEncoder().encode('old'));

    // Act
    await store.putFile(key, large.file, { ifMatch: etag });
    const stale = store.putFile(key, small.file, { ifMatch: etag });

    // Assess
    await expect(stale).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(sha256((await store.get(key))?.body ?? new Uint8Array())).toBe(sha256(large.bytes));
  });

  it('leaves no object when the source file cannot be read', async () => {
    // Act
    const writing = store.putFile('models/put-file/missing/model.onnx', join(work, 'absent.bin'));

    // Assess
    await expect(writing).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await store.list('models/put-file/missing/')).toEqual([]);
  });
});

describe('S3BlobStore.putFile multipart failures', () => {
  it('aborts the multipart upload when a part fails: no object, and the upload is gone', async () => {
    // Prepare
    const { client, calls } = recordingClient(2);
    const store = new S3BlobStore(client, s3.server.bucket, { upload: { partBytes: 5 * MiB, concurrency: 1 } });
    const key = 'models/put-file/failed/model.onnx';

    // Act
    const writing = store.putFile(key, large.file, { ifNoneMatch: '*' });

    // Assess: one part at a time, so the failure stopped the third from being sent; the upload was aborted, and
    // the server knows it no more.
    await expect(writing).rejects.toThrow(/injected/);
    const id = calls[0]?.uploadId;
    expect(id).toEqual(expect.any(String));
    expect(calls.map(({ ok: _ok, ...call }) => call)).toEqual([
      { command: 'CreateMultipartUploadCommand', uploadId: id },
      { command: 'UploadPartCommand', part: 1, uploadId: id },
      { command: 'UploadPartCommand', part: 2, uploadId: id },
      { command: 'AbortMultipartUploadCommand', uploadId: id },
    ]);
    expect(calls.map((call) => call.ok)).toEqual([true, true, false, true]);
    expect(await store.get(key)).toBeUndefined();
    await expect(
      s3.client.send(
        new UploadPartCommand({ Bucket: s3.server.bucket, Key: key, UploadId: id, PartNumber: 3, Body: 'late' }),
      ),
    ).rejects.toMatchObject({ name: 'NoSuchUpload' });
    client.destroy();
  });

  it('aborts the multipart upload when the condition fails at completion', async () => {
    // Prepare
    const { client, calls } = recordingClient();
    const store = new S3BlobStore(client, s3.server.bucket, { upload: { partBytes: 5 * MiB } });
    const key = 'models/put-file/raced/model.onnx';
    await store.put(key, new TextEncoder().encode('won the race'));

    // Act
    const writing = store.putFile(key, large.file, { ifNoneMatch: '*' });

    // Assess
    await expect(writing).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(calls.filter((c) => c.command === 'UploadPartCommand' && c.ok)).toHaveLength(3);
    const id = calls.find((call) => call.command === 'CreateMultipartUploadCommand')?.uploadId;
    expect(calls.slice(-2).map(({ command, uploadId }) => ({ command, uploadId }))).toEqual([
      { command: 'CompleteMultipartUploadCommand', uploadId: id },
      { command: 'AbortMultipartUploadCommand', uploadId: id },
    ]);
    expect(calls.slice(-2).map((c) => c.ok)).toEqual([false, true]);
    expect(new TextDecoder().decode((await store.get(key))?.body)).toBe('won the race');
    client.destroy();
  });

  it('refuses a part size S3 would refuse', () => {
    // Act and assess
    expect(() => new S3BlobStore(s3.client, 'models', { upload: { partBytes: 4 * MiB } })).toThrow(/at least 5242880/);
  });
});

describe('FsBlobStore.putFile', () => {
  it('leaves no temporary file behind, written or refused', async () => {
    // Prepare
    const root = await mkdtemp(join(work, 'repo-'));
    const store = new FsBlobStore(root);
    await store.putFile('models/m/1/model.onnx', small.file, { ifNoneMatch: '*' });

    // Act
    const refused = await store.putFile('models/m/1/model.onnx', large.file, { ifNoneMatch: '*' }).catch((e) => e);

    // Assess
    expect(refused).toBeInstanceOf(PreconditionFailedError);
    expect(await readdir(join(root, 'models', 'm', '1'))).toEqual(['model.onnx']);
  });
});
