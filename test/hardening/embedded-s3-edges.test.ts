/**
 * Edge cases of the embedded S3 server's file layout: keys whose last segment is long (temporary file names used
 * to exceed 255 bytes: a 500 from 189 bytes on), and keys or leftovers shaped like the server's own files (a stray
 * `<key>._S3rver_object/` folder used to fail every listing around it).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { MAX_KEY_SEGMENT_BYTES } from '../../functions/local/s3-filesystem-store.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';

let s3: S3Fixture;
beforeAll(async () => {
  s3 = await startS3Fixture();
});
afterAll(() => s3.stop());

const put = (Key: string, Body = 'x') => s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key, Body }));
const text = async (Key: string) =>
  (await (await s3.client.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key }))).Body?.transformToString()) ??
  '';

describe('long key segments', () => {
  it.each([189, 200, MAX_KEY_SEGMENT_BYTES])(
    'stores and reads back a key whose last segment has %i bytes',
    async (length) => {
      const key = `uploads/long/${'k'.repeat(length)}`;
      await put(key, `body ${length}`);
      expect(await text(key)).toBe(`body ${length}`);
    },
  );

  it('refuses a segment too long to be a file with 400 KeyTooLongError that says the limit, not a 500', async () => {
    const refused = put(`uploads/long/${'é'.repeat(200)}`);
    await expect(refused).rejects.toMatchObject({ name: 'KeyTooLongError', $metadata: { httpStatusCode: 400 } });
    await expect(refused).rejects.toThrow(new RegExp(`at most ${MAX_KEY_SEGMENT_BYTES} bytes`));
  });
});

describe("keys shaped like the server's own files", () => {
  it('refuses a key under "<key>._S3rver_object/" with 400, and the object beside it stays writable', async () => {
    await expect(put('models/c/manifest.json._S3rver_object/stray')).rejects.toMatchObject({
      $metadata: { httpStatusCode: 400 },
    });
    await put('models/c/manifest.json', '{"c":1}');
    expect(await text('models/c/manifest.json')).toBe('{"c":1}');
  });

  it('lists models/ despite a stray folder an older server left on disk', async () => {
    await put('models/d/manifest.json', '{"d":1}');
    const stray = join(s3.dataDir, s3.server.bucket, 'models', 'e', 'manifest.json._S3rver_object');
    await mkdir(stray, { recursive: true });
    await writeFile(join(stray, 'stray._S3rver_object'), 'x');
    await writeFile(join(stray, 'stray._S3rver_metadata.json'), '{}');

    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'models/' }));

    expect(listed.Contents?.map((c) => c.Key)).toEqual(['models/c/manifest.json', 'models/d/manifest.json']);
  });
});
