/**
 * The embedded S3 server refuses what S3 refuses and keeps keys apart as S3 does, each case against the real server
 * on loopback: keys as opaque strings (`a//b`, `/a/b`, `a/b` are three objects; keys shaped like the store's own
 * files are ordinary keys), S3's 1,024-byte key limit, dot segments refused wherever a key comes from, S3's bucket
 * name rules, every `x-amz-*` header signed, bodies checked against their signed SHA-256, nothing after the final
 * aws-chunked frame, strictly decimal integers, NoSuchUpload (never a 500) when multipart calls race, and a data
 * folder of the earlier layout migrated on start.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { MAX_KEY_BYTES } from '../../functions/local/s3-names.js';
import { NodeSha256, signRaw, startS3Fixture, type S3Fixture } from '../s3/fixture.js';

let parent: string;
let s3: S3Fixture;
beforeAll(async () => {
  // The data folder inside a folder of the test's own, so that "outside the data folder" can be watched.
  parent = await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-edges-'));
  s3 = await startS3Fixture({ dataDir: join(parent, 'data'), minPartBytes: 1 });
});
afterAll(async () => {
  await s3.stop();
  await rm(parent, { recursive: true, force: true });
});

const bucket = (): string => s3.server.bucket;
const put = (Key: string, Body = 'x') => s3.client.send(new PutObjectCommand({ Bucket: bucket(), Key, Body }));
const text = async (Key: string) =>
  (await (await s3.client.send(new GetObjectCommand({ Bucket: bucket(), Key }))).Body?.transformToString()) ?? '';
const exists = (Key: string) =>
  s3.client.send(new GetObjectCommand({ Bucket: bucket(), Key })).then(
    () => true,
    (error: { name?: string }) => {
      if (error.name === 'NoSuchKey') return false;
      throw error;
    },
  );

/** Sends a request exactly as given (no URL normalisation) and returns status and body. */
function send(
  path: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | string = '',
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(s3.server.endpoint);
  return new Promise((resolve, reject) => {
    const outgoing = request({ hostname, port, method, path, headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Signs with the owner's pair (the SDK's own signer) and sends. */
async function sendSigned(
  path: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | string = '',
): Promise<{ status: number; body: string }> {
  return send(path, method, await signRaw(s3.server.endpoint, method, path, headers, s3.server.credentials), body);
}

describe('keys are opaque strings', () => {
  it('keeps a//b, /a/b, a/b and a/b/ apart: four objects, each read back as written', async () => {
    const keys = ['dist/a//b', '/dist/a/b', 'dist/a/b', 'dist/a/b/'];
    for (const key of keys) await put(key, `body of ${key}`);

    for (const key of keys) expect(await text(key)).toBe(`body of ${key}`);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: '/dist/' }));
    const listedAll = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: 'dist/' }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(['/dist/a/b']);
    expect(listedAll.Contents?.map((c) => c.Key)).toEqual(['dist/a//b', 'dist/a/b', 'dist/a/b/']);
  });

  it("stores keys shaped like the store's own files (and s3rver's) as ordinary keys, apart from their neighbours", async () => {
    const keys = [
      'models/c/manifest.json',
      'models/c/manifest.json._S3rver_object',
      'models/c/manifest.json._S3rver_object/stray',
      'models/c/manifest.json._S3rver_metadata.json',
      'layout.json',
      'objects',
      'staging/x.partial',
      'uploads',
    ];
    for (const key of keys) await put(key, `body of ${key}`);

    for (const key of keys) expect(await text(key)).toBe(`body of ${key}`);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: 'models/c/' }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(keys.slice(0, 4).sort());
  });

  it(`stores a key of exactly ${MAX_KEY_BYTES} bytes in one segment, and refuses one more byte with KeyTooLongError`, async () => {
    const longest = `longs/${'é'.repeat((MAX_KEY_BYTES - 6) / 2)}`;
    expect(Buffer.byteLength(longest)).toBe(MAX_KEY_BYTES);
    await put(longest, 'longest');
    expect(await text(longest)).toBe('longest');

    const refused = put(`${longest}k`);
    await expect(refused).rejects.toMatchObject({ name: 'KeyTooLongError', $metadata: { httpStatusCode: 400 } });
  });

  it('answers a key longer than PATH_MAX with 400 KeyTooLongError, not a 500', async () => {
    await expect(put(`p/${'k'.repeat(5000)}`)).rejects.toMatchObject({
      name: 'KeyTooLongError',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      s3.client.send(new GetObjectCommand({ Bucket: bucket(), Key: 'g/'.repeat(3000) })),
    ).rejects.toMatchObject({ name: 'KeyTooLongError', $metadata: { httpStatusCode: 400 } });
  });
});

describe('dot segments, wherever a key comes from', () => {
  it('refuses DeleteObjects keys with ".." segments one by one, and deletes nothing outside the data folder', async () => {
    // What the s3rver layout would have turned these keys into, outside the data folder.
    await writeFile(join(parent, 'victim._S3rver_object'), 'keep me');
    await mkdir(join(parent, 'data', 'empty'), { recursive: true });
    await put('kept/one', '1');
    const keys = ['../../victim', '../victim', 'kept/../../../victim', './kept/one', 'kept/.'];

    const answer = await s3.client.send(
      new DeleteObjectsCommand({
        Bucket: bucket(),
        Delete: { Objects: [...keys.map((Key) => ({ Key })), { Key: 'kept/one' }] },
      }),
    );

    expect(answer.Errors?.map((e) => [e.Key, e.Code])).toEqual(keys.map((key) => [key, 'InvalidArgument']));
    expect(answer.Errors?.[0]?.Message).toMatch(/"\." or "\.\." segments/);
    expect(answer.Deleted?.map((d) => d.Key)).toEqual(['kept/one']);
    expect(await readFile(join(parent, 'victim._S3rver_object'), 'utf8')).toBe('keep me');
    expect((await readdir(parent)).sort()).toEqual(['data', 'victim._S3rver_object']);
    expect(await readdir(join(parent, 'data'))).toContain('empty');
  });

  it('refuses a copy source with a ".." segment with 400 InvalidArgument, and copies nothing', async () => {
    await put('copy/source', 'source');
    await expect(
      s3.client.send(
        new CopyObjectCommand({ Bucket: bucket(), Key: 'copy/target', CopySource: `${bucket()}/copy/../copy/source` }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
    expect(await exists('copy/target')).toBe(false);
  });

  it('refuses "." and ".." segments in the request path, percent-encoded or not', async () => {
    for (const key of ['a/%2e%2e/b', 'a/./b', '..', 'a/%2E']) {
      const answer = await sendSigned(`/${bucket()}/${key}`, 'PUT', {}, 'x');
      expect(answer.status, key).toBe(400);
      expect(answer.body).toContain('<Code>InvalidArgument</Code>');
    }
  });
});

describe('bucket names', () => {
  it.each(['models%2Fx', 'models%2F..', 'Models', 'a_b', 'ab', '192.168.0.1', 'a..b', '-ab'])(
    'refuses the bucket name %s with 400 InvalidBucketName, in the path and in a copy source',
    async (name) => {
      await put('models/x/manifest.json', '{}');
      const inPath = await sendSigned(`/${name}/manifest.json`, 'GET', {});
      // A copy source is decoded whole before it is split at its first "/" (as S3 does), so `%2F` is a separator
      // there: the name is sent as the decoded characters.
      const asSource = await sendSigned(`/${bucket()}/copied`, 'PUT', {
        'x-amz-copy-source': `/${encodeURIComponent(name)}/models/x/manifest.json`,
      });

      expect(inPath.status).toBe(400);
      expect(inPath.body).toContain('<Code>InvalidBucketName</Code>');
      if (!name.includes('%')) {
        expect(asSource.status).toBe(400);
        expect(asSource.body).toContain('<Code>InvalidBucketName</Code>');
      } else {
        // `models/x/...` read as bucket `models`, key `x/models/x/manifest.json`: absent, never a folder inside.
        expect([404, 400]).toContain(asSource.status);
      }
      expect(await exists('copied')).toBe(false);
    },
  );
});

describe('signatures cover the request', () => {
  it('refuses a signed PUT carrying an unsigned x-amz-copy-source with 403, and copies nothing', async () => {
    await put('signed/source', 'secret');
    const path = `/${bucket()}/signed/target`;
    const signed = await signRaw(s3.server.endpoint, 'PUT', path, {}, s3.server.credentials);

    const answer = await send(path, 'PUT', { ...signed, 'x-amz-copy-source': `/${bucket()}/signed/source` }, '');

    expect(answer.status).toBe(403);
    expect(answer.body).toContain('<Code>AccessDenied</Code>');
    expect(answer.body).toContain('not signed: x-amz-copy-source');
    expect(await exists('signed/target')).toBe(false);
  });

  it('refuses a body whose SHA-256 is not the signed one with XAmzContentSHA256Mismatch, and keeps the object as it was', async () => {
    const key = 'hashed/model.onnx';
    await put(key, 'previous');
    const path = `/${bucket()}/${key}`;
    const sha256 = (body: string): string => createHash('sha256').update(body).digest('hex');

    const mismatch = await sendSigned(path, 'PUT', { 'x-amz-content-sha256': sha256('announced') }, 'different');
    const afterMismatch = await text(key);
    const matching = await sendSigned(path, 'PUT', { 'x-amz-content-sha256': sha256('announced') }, 'announced');

    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    expect(afterMismatch).toBe('previous');
    expect(await readdir(join(s3.dataDir, bucket(), 'staging'))).toEqual([]);
    expect(matching.status).toBe(200);
    expect(await text(key)).toBe('announced');
  });

  it('refuses an x-amz-content-sha256 that is neither a hash nor a known token', async () => {
    const answer = await sendSigned(`/${bucket()}/hashed/other`, 'PUT', { 'x-amz-content-sha256': '1234' }, 'x');
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('<Code>InvalidArgument</Code>');
  });

  it('refuses bytes after the final aws-chunked frame with 400 IncompleteBody, and stores nothing', async () => {
    const key = 'chunked/trailing';
    for (const tail of ['EXTRA', '0\r\n\r\n']) {
      const body = Buffer.from(`5\r\nhello\r\n0\r\n\r\n${tail}`);
      const answer = await sendSigned(
        `/${bucket()}/${key}`,
        'PUT',
        {
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': '5',
          'content-length': String(body.length),
        },
        body,
      );
      expect(answer.status).toBe(400);
      expect(answer.body).toContain('<Code>IncompleteBody</Code>');
    }
    expect(await exists(key)).toBe(false);
  });

  it('refuses a presigned URL whose X-Amz-Expires is not a decimal integer (1e3, 0x10)', async () => {
    await put('presigned/object', 'p');
    const url = new URL(s3.server.endpoint);
    const signer = new SignatureV4({
      service: 's3',
      region: s3.server.region,
      credentials: s3.server.credentials,
      sha256: NodeSha256,
      uriEscapePath: false,
    });
    const presignedWith = async (expires: string): Promise<string> => {
      // The signer writes `expiresIn.toString(10)` into the query: a number that prints as `expires` signs it as is.
      const expiresIn = { valueOf: () => 1000, toString: () => expires } as unknown as number;
      const presigned = await signer.presign(
        {
          method: 'GET',
          protocol: url.protocol,
          hostname: url.hostname,
          port: Number(url.port),
          path: `/${bucket()}/presigned/object`,
          query: {},
          // As @aws-sdk/s3-request-presigner does: the payload is unsigned, the header hoisted into the query.
          headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
        },
        { expiresIn },
      );
      return `${presigned.path}?${new URLSearchParams(presigned.query as Record<string, string>).toString()}`;
    };

    expect((await send(await presignedWith('1000'), 'GET', {})).status).toBe(200);
    for (const expires of ['1e3', '0x10']) {
      const answer = await send(await presignedWith(expires), 'GET', {});
      expect(answer.status, expires).toBe(400);
      expect(answer.body).toContain('X-Amz-Expires');
    }
  });
});

describe('multipart uploads', () => {
  const createUpload = async (Key: string): Promise<string> =>
    (await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket(), Key }))).UploadId ?? '';

  it('refuses partNumber=1e3, 0x10, +1 and 1.0 (400 InvalidArgument), and such a PartNumber in Complete (400 MalformedXML)', async () => {
    const key = 'parts/strict';
    const uploadId = await createUpload(key);
    for (const partNumber of ['1e3', '0x10', '+1', '1.0']) {
      const answer = await sendSigned(
        `/${bucket()}/${key}?partNumber=${encodeURIComponent(partNumber)}&uploadId=${uploadId}`,
        'PUT',
        {},
        'part',
      );
      expect(answer.status, partNumber).toBe(400);
      expect(answer.body).toContain('<Code>InvalidArgument</Code>');
    }
    const accepted = await sendSigned(`/${bucket()}/${key}?partNumber=16&uploadId=${uploadId}`, 'PUT', {}, 'part');
    expect(accepted.status).toBe(200);
    const etag = JSON.stringify(createHash('md5').update('part').digest('hex'));
    const complete = (partNumber: string) =>
      sendSigned(
        `/${bucket()}/${key}?uploadId=${uploadId}`,
        'POST',
        {},
        `<CompleteMultipartUpload><Part><PartNumber>${partNumber}</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`,
      );
    for (const partNumber of ['1.6e1', '0x10']) {
      const refused = await complete(partNumber);
      expect(refused.status, partNumber).toBe(400);
      expect(refused.body).toContain('<Code>MalformedXML</Code>');
    }
    expect((await complete('16')).status).toBe(200);
    expect(await text(key)).toBe('part');
  });

  it('answers NoSuchUpload, never a 500, when Abort races Complete or UploadPart (30 rounds)', async () => {
    // One attempt: a retried 500 would hide the race behind the retry's NoSuchUpload.
    const client = createS3Client({ endpoint: s3.server.endpoint, credentials: s3.server.credentials, maxAttempts: 1 });
    const outcomes = new Map<string, number>();
    const count = (outcome: string): void => {
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    };
    const outcomeOf = (settled: PromiseSettledResult<unknown>): string =>
      settled.status === 'fulfilled' ? 'ok' : String((settled.reason as { name?: string }).name);
    try {
      for (let round = 0; round < 30; round++) {
        const Key = `race/${round}`;
        const UploadId = await createUpload(Key);
        const part = await client.send(
          new UploadPartCommand({ Bucket: bucket(), Key, UploadId, PartNumber: 1, Body: Buffer.alloc(64 * 1024, 1) }),
        );
        const [complete, abort, late] = await Promise.allSettled([
          client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket(),
              Key,
              UploadId,
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag ?? '' }] },
            }),
          ),
          client.send(new AbortMultipartUploadCommand({ Bucket: bucket(), Key, UploadId })),
          client.send(new UploadPartCommand({ Bucket: bucket(), Key, UploadId, PartNumber: 2, Body: 'late' })),
        ]);
        count(`complete:${outcomeOf(complete)}`);
        count(`abort:${outcomeOf(abort)}`);
        count(`part:${outcomeOf(late)}`);
        // Exactly one of Complete and Abort wins; the object exists exactly when Complete did.
        expect([outcomeOf(complete), outcomeOf(abort)].sort()).toEqual(['NoSuchUpload', 'ok']);
        expect(['ok', 'NoSuchUpload']).toContain(outcomeOf(late));
        expect(await exists(Key)).toBe(outcomeOf(complete) === 'ok');
      }
    } finally {
      client.destroy();
    }
    expect([...outcomes.keys()].every((outcome) => /:(ok|NoSuchUpload)$/.test(outcome))).toBe(true);
  });
});

describe('a data folder of the earlier layout', () => {
  it('is migrated from where an interrupted migration left it, other buckets included', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-legacy-'));
    // Stopped between its two renames: the original sits under its legacy name, the bucket folder is gone.
    await mkdir(join(dataDir, '.legacy-models', 'uploads', 'm'), { recursive: true });
    await writeFile(join(dataDir, '.legacy-models', 'uploads', 'm', 'a.onnx._S3rver_object'), 'a');
    await mkdir(join(dataDir, 'other', 'x'), { recursive: true });
    await writeFile(join(dataDir, 'other', 'x', 'y._S3rver_object'), 'y');
    await mkdir(join(dataDir, '.migrating-models', 'objects'), { recursive: true });
    const migrated = await startS3Fixture({ dataDir });
    try {
      expect(
        await (
          await migrated.client.send(new GetObjectCommand({ Bucket: 'models', Key: 'uploads/m/a.onnx' }))
        ).Body?.transformToString(),
      ).toBe('a');
      expect(
        await (
          await migrated.client.send(new GetObjectCommand({ Bucket: 'other', Key: 'x/y' }))
        ).Body?.transformToString(),
      ).toBe('y');
      expect((await readdir(dataDir)).sort()).toEqual(['models', 'other']);
    } finally {
      await migrated.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('is migrated on start: every object readable and listed under its key, nothing of the old layout left', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-legacy-'));
    const old = join(dataDir, 'models');
    await mkdir(join(old, 'models', 'iris', '1'), { recursive: true });
    await writeFile(join(old, 'models', 'iris', 'manifest.json._S3rver_object'), '{"latest":"1"}');
    await writeFile(
      join(old, 'models', 'iris', 'manifest.json._S3rver_metadata.json'),
      JSON.stringify({ 'content-type': 'application/json' }),
    );
    await writeFile(join(old, 'models', 'iris', '1', 'model.onnx._S3rver_object'), 'onnx bytes');
    await writeFile(join(old, 'models', 'iris', '1', 'model.onnx._S3rver_object.md5'), 'not-an-md5-but-kept');
    await mkdir(join(old, '._S3rver_uploads', '.partial'), { recursive: true });
    await writeFile(join(old, '._S3rver_uploads', '.partial', 'x.partial'), 'half');
    const migrated = await startS3Fixture({ dataDir });
    try {
      const listed = await migrated.client.send(new ListObjectsV2Command({ Bucket: 'models' }));
      const manifest = await migrated.client.send(
        new GetObjectCommand({ Bucket: 'models', Key: 'models/iris/manifest.json' }),
      );

      expect(listed.Contents?.map((c) => [c.Key, c.ETag])).toEqual([
        ['models/iris/1/model.onnx', '"not-an-md5-but-kept"'],
        ['models/iris/manifest.json', `"${createHash('md5').update('{"latest":"1"}').digest('hex')}"`],
      ]);
      expect(manifest.ContentType).toBe('application/json');
      expect(await manifest.Body?.transformToString()).toBe('{"latest":"1"}');
      expect((await readdir(dataDir)).sort()).toEqual(['models']);
      expect((await readdir(old)).sort()).toEqual(['layout.json', 'objects', 'staging', 'uploads']);
    } finally {
      await migrated.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
