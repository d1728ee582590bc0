/**
 * Keys are opaque strings on the embedded S3 server, as on S3: a property test with the AWS SDK v3 against the real
 * server. Random keys (any Unicode, slashes, dots, percent signs, the store's own file names, up to 1,024 bytes)
 * round-trip through PutObject, ListObjectsV2, GetObject, CopyObject, DeleteObject and DeleteObjects distinct and
 * exact; keys with `.` or `..` segments are refused wherever they come from; and no file ever appears outside the
 * data folder or outside the store's layout inside it.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { MAX_KEY_BYTES } from '../../functions/local/s3-names.js';
import { startS3Fixture, type S3Fixture } from './fixture.js';

let parent: string;
let s3: S3Fixture;
beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-keys-'));
  s3 = await startS3Fixture({ dataDir: join(parent, 'data') });
});
afterAll(async () => {
  await s3.stop();
  await rm(parent, { recursive: true, force: true });
});

const hasDotSegment = (key: string): boolean => key.split('/').some((segment) => segment === '.' || segment === '..');

/** `text` cut to at most `bytes` UTF-8 bytes, on a code point boundary. */
function truncateUtf8(text: string, bytes: number): string {
  let kept = '';
  let size = 0;
  for (const character of text) {
    size += Buffer.byteLength(character, 'utf8');
    if (size > bytes) break;
    kept += character;
  }
  return kept;
}

/** Pieces keys are made of: what breaks naive mappings to files and URLs, and any Unicode. */
const piece = fc.oneof(
  fc.constantFrom('/', '//', '.', '..', '...', '%', '%2F', '%2e', '%25', '%%', ' ', '+', '?', '#', '&', ';', '\\', '~'),
  fc.constantFrom('._S3rver_object', '._S3rver_metadata.json', 'objects', 'key', 'object', 'layout.json', 'staging'),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  fc.string({ unit: 'binary', minLength: 200, maxLength: 700 }),
);
const anyKey = fc
  .array(piece, { minLength: 1, maxLength: 10 })
  .map((pieces) => truncateUtf8(pieces.join(''), MAX_KEY_BYTES))
  .filter((key) => key !== '');
const storableKey = anyKey.filter((key) => !hasDotSegment(key));

/** ListObjectsV2 of a whole bucket, two keys a page, keys URL-encoded by the server (as aws s3 ls asks). */
async function listKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.client.send(
      new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 2, EncodingType: 'url', ContinuationToken }),
    );
    for (const object of page.Contents ?? []) {
      keys.push(decodeURIComponent((object.Key ?? '').replace(/\+/g, ' ')));
    }
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken !== undefined);
  return keys;
}

const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const bodyOf = (key: string, tag: string): string => `${tag}:${key}`;

async function getText(bucket: string, key: string): Promise<string> {
  const answer = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await answer.Body?.transformToString('utf8')) ?? '';
}

/** Every file under `folder`, relative to it. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)));
}

describe('keys round-trip distinct and exact', () => {
  let run = 0;
  it('through Put, List, Get, Copy, Delete and DeleteObjects, with the AWS SDK v3 (60 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(storableKey, { minLength: 1, maxLength: 5 }), async (keys) => {
        run += 1;
        const source = `keys-${run}`;
        const target = `keys-${run}-copy`;
        await s3.client.send(new CreateBucketCommand({ Bucket: source }));
        await s3.client.send(new CreateBucketCommand({ Bucket: target }));

        for (const key of keys) {
          await s3.client.send(new PutObjectCommand({ Bucket: source, Key: key, Body: bodyOf(key, 'put') }));
        }
        expect(await listKeys(source)).toEqual([...keys].sort(byUtf8));
        for (const key of keys) expect(await getText(source, key)).toBe(bodyOf(key, 'put'));

        for (const key of keys) {
          await s3.client.send(
            new CopyObjectCommand({ Bucket: target, Key: key, CopySource: `${source}/${encodeURIComponent(key)}` }),
          );
        }
        expect(await listKeys(target)).toEqual([...keys].sort(byUtf8));
        for (const key of keys) expect(await getText(target, key)).toBe(bodyOf(key, 'put'));

        // Half deleted one by one, the rest in one DeleteObjects; the copies stay.
        const half = Math.ceil(keys.length / 2);
        for (const key of keys.slice(0, half)) {
          await s3.client.send(new DeleteObjectCommand({ Bucket: source, Key: key }));
        }
        expect(await listKeys(source)).toEqual(keys.slice(half).sort(byUtf8));
        if (half < keys.length) {
          const deleted = await s3.client.send(
            new DeleteObjectsCommand({
              Bucket: source,
              Delete: { Objects: keys.slice(half).map((Key) => ({ Key })) },
            }),
          );
          expect(deleted.Errors ?? []).toEqual([]);
          expect(deleted.Deleted?.map((d) => d.Key ?? '').sort(byUtf8)).toEqual(keys.slice(half).sort(byUtf8));
        }
        expect(await listKeys(source)).toEqual([]);
        expect(await listKeys(target)).toEqual([...keys].sort(byUtf8));
      }),
      { numRuns: 60 },
    );

    // Nothing outside the data folder; inside, only the layout's files.
    expect(await readdir(parent)).toEqual(['data']);
    const files = await filesUnder(join(parent, 'data'));
    const unexpected = files.filter(
      (file) =>
        !/^[a-z0-9.-]+\/(layout\.json|objects\/[0-9a-f]{64}\/(key|object|object\.md5|metadata\.json))$/.test(file),
    );
    expect(unexpected).toEqual([]);
    expect(files.filter((file) => file.endsWith('/key')).length).toBeGreaterThan(0);
  }, 240_000);
});

describe('keys with "." or ".." segments', () => {
  it('are refused by PutObject, CopyObject (as the source) and DeleteObjects, and nothing is written', async () => {
    const bucket = s3.server.bucket;
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dots/source', Body: 's' }));
    const before = await filesUnder(join(parent, 'data'));
    await fc.assert(
      fc.asyncProperty(anyKey, fc.constantFrom('.', '..'), fc.nat(), async (key, dots, at) => {
        const segments = key.split('/');
        segments.splice(at % (segments.length + 1), 0, dots);
        const dotted = segments.join('/');
        await expect(
          s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: dotted, Body: 'x' })),
        ).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
        await expect(
          s3.client.send(
            new CopyObjectCommand({
              Bucket: bucket,
              Key: 'dots/target',
              CopySource: `${bucket}/${encodeURIComponent(dotted)}`,
            }),
          ),
        ).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
        const deleted = await s3.client.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: dotted }] } }),
        );
        expect(deleted.Errors?.map((e) => e.Code)).toEqual([
          Buffer.byteLength(dotted) > MAX_KEY_BYTES ? 'KeyTooLongError' : 'InvalidArgument',
        ]);
      }),
      { numRuns: 50 },
    );
    expect(await filesUnder(join(parent, 'data'))).toEqual(before);
  }, 120_000);
});
