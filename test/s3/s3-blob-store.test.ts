import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { PreconditionFailedError } from '../../functions/core/errors.js';
import { startS3Fixture } from './fixture.js';
import type { S3Fixture } from './fixture.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

describe('S3BlobStore on the embedded S3 server', () => {
  let s3: S3Fixture;
  let store: S3BlobStore;

  beforeAll(async () => {
    s3 = await startS3Fixture();
    store = new S3BlobStore(s3.client, s3.server.bucket);
  });

  afterAll(async () => {
    await s3.stop();
  });

  describe('get, put, list, delete', () => {
    it('reads back what it wrote, with the etag the write returned', async () => {
      // Prepare
      const body = text('{"latest":"1"}');

      // Act
      const { etag } = await store.put('roundtrip/manifest.json', body);
      const read = await store.get('roundtrip/manifest.json');

      // Assess
      expect(decode(read?.body)).toBe('{"latest":"1"}');
      expect(read?.etag).toBe(etag);
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    });

    it('answers undefined for a key that does not exist', async () => {
      // Act
      const read = await store.get('roundtrip/absent.json');

      // Assess
      expect(read).toBeUndefined();
    });

    it('lets a missing bucket fail loudly instead of answering undefined', async () => {
      // Prepare
      const wrongBucket = new S3BlobStore(s3.client, 'no-such-bucket');

      // Act
      const reading = wrongBucket.get('any/key');

      // Assess
      await expect(reading).rejects.toBeInstanceOf(S3ServiceException);
      await expect(reading).rejects.toMatchObject({ name: 'NoSuchBucket' });
    });

    it('stores an empty object', async () => {
      // Act
      await store.put('roundtrip/empty.bin', new Uint8Array(0));
      const read = await store.get('roundtrip/empty.bin');

      // Assess
      expect(read?.body.byteLength).toBe(0);
    });

    it('removes an object, and deleting an absent key is not an error', async () => {
      // Prepare
      await store.put('roundtrip/doomed.json', text('{}'));

      // Act
      await store.delete('roundtrip/doomed.json');
      await store.delete('roundtrip/doomed.json');

      // Assess
      expect(await store.get('roundtrip/doomed.json')).toBeUndefined();
      expect(await store.list('roundtrip/doomed')).toEqual([]);
    });

    it('lists every key under a prefix across pages, in S3 byte order', async () => {
      // Prepare: names whose directory walk order differs from key order ('m-1/' < 'm.json' < 'm/' in bytes).
      const paged = new S3BlobStore(s3.client, s3.server.bucket, { listPageSize: 2 });
      const keys = [
        'listing/m/2/model.onnx',
        'listing/m/1/model.onnx',
        'listing/m/manifest.json',
        'listing/m-1/1/model.onnx',
        'listing/m.json',
        'listing/m/10/model.onnx',
        'listing/z',
      ];
      for (const key of keys) {
        await store.put(key, text(key));
      }
      await store.put('listing-elsewhere/m/1/model.onnx', text('not under the prefix'));

      // Act
      const listed = await paged.list('listing/');

      // Assess
      expect(listed).toEqual([
        'listing/m-1/1/model.onnx',
        'listing/m.json',
        'listing/m/1/model.onnx',
        'listing/m/10/model.onnx',
        'listing/m/2/model.onnx',
        'listing/m/manifest.json',
        'listing/z',
      ]);
    });

    it('reads a 30 MB object intact', async () => {
      // Prepare
      const body = randomBytes(30 * 1024 * 1024);
      await store.put('large/model.onnx', body);

      // Act
      const read = await store.get('large/model.onnx');

      // Assess
      expect(read?.body.byteLength).toBe(body.byteLength);
      expect(Buffer.from(read?.body ?? []).equals(body)).toBe(true);
    });

    it('refuses an out-of-range list page size', () => {
      // Act and assess
      expect(() => new S3BlobStore(s3.client, 'models', { listPageSize: 1001 })).toThrow(/1 to 1000/);
    });
  });

  describe('conditional writes', () => {
    it('creates with ifNoneMatch when the key is free, and refuses a second create', async () => {
      // Prepare
      const first = await store.put('conditional/create.json', text('first'), { ifNoneMatch: '*' });

      // Act
      const second = store.put('conditional/create.json', text('second'), { ifNoneMatch: '*' });

      // Assess
      await expect(second).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(second).rejects.toThrow(/already exists/);
      const read = await store.get('conditional/create.json');
      expect(decode(read?.body)).toBe('first');
      expect(read?.etag).toBe(first.etag);
    });

    it('replaces with ifMatch on the current etag', async () => {
      // Prepare
      const { etag } = await store.put('conditional/update.json', text('v1'));

      // Act
      const updated = await store.put('conditional/update.json', text('v2'), { ifMatch: etag });

      // Assess
      expect(updated.etag).not.toBe(etag);
      expect(decode((await store.get('conditional/update.json'))?.body)).toBe('v2');
    });

    it('refuses ifMatch with a stale etag and keeps the newer content', async () => {
      // Prepare
      const stale = await store.put('conditional/stale.json', text('v1'));
      await store.put('conditional/stale.json', text('v2'), { ifMatch: stale.etag });

      // Act
      const write = store.put('conditional/stale.json', text('v3'), { ifMatch: stale.etag });

      // Assess
      await expect(write).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(write).rejects.toMatchObject({ cause: { name: 'PreconditionFailed' } });
      expect(decode((await store.get('conditional/stale.json'))?.body)).toBe('v2');
    });

    it('refuses ifMatch on a key that no longer exists', async () => {
      // Prepare
      const { etag } = await store.put('conditional/gone.json', text('v1'));
      await store.delete('conditional/gone.json');

      // Act
      const write = store.put('conditional/gone.json', text('v2'), { ifMatch: etag });

      // Assess
      await expect(write).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await store.get('conditional/gone.json')).toBeUndefined();
    });

    it('lets exactly one of 20 concurrent writers holding the same etag win', async () => {
      // Prepare
      const { etag } = await store.put('conditional/race.json', text('base'));
      const writers = Array.from({ length: 20 }, (_, index) => `writer-${index}`);

      // Act
      const outcomes = await Promise.allSettled(
        writers.map((writer) => store.put('conditional/race.json', text(writer), { ifMatch: etag })),
      );

      // Assess
      const winners = writers.filter((_, index) => outcomes[index]?.status === 'fulfilled');
      const losers = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(19);
      for (const loser of losers) {
        expect((loser as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError);
      }
      expect(decode((await store.get('conditional/race.json'))?.body)).toBe(winners[0]);
    });

    it('lets exactly one of 20 concurrent creators win', async () => {
      // Prepare
      const writers = Array.from({ length: 20 }, (_, index) => `creator-${index}`);

      // Act
      const outcomes = await Promise.allSettled(
        writers.map((writer) => store.put('conditional/race-create.json', text(writer), { ifNoneMatch: '*' })),
      );

      // Assess
      const winners = writers.filter((_, index) => outcomes[index]?.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      expect(decode((await store.get('conditional/race-create.json'))?.body)).toBe(winners[0]);
    });
  });
});
