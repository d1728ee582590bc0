import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Event } from 'aws-lambda';
import { rawRequest, signRaw, startS3Fixture } from './fixture.js';
import type { S3Fixture } from './fixture.js';

async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from((await response.Body?.transformToByteArray()) ?? []);
}

function keysOf(events: readonly S3Event[]): string[] {
  return events.flatMap((event) => event.Records.map((record) => record.s3.object.key));
}

describe('embedded S3 server', () => {
  describe('object-created notifications', () => {
    let s3: S3Fixture;
    const failures: { error: unknown; key: string }[] = [];

    beforeAll(async () => {
      s3 = await startS3Fixture({
        onObjectCreated: (event) => {
          if (event.Records[0]?.s3.object.key.includes('explode')) {
            throw new Error('handler failed on purpose');
          }
        },
        onEventError: (error, event) => failures.push({ error, key: event.Records[0]?.s3.object.key ?? '' }),
      });
    });

    afterAll(async () => {
      await s3.stop();
    });

    it('delivers exactly one ObjectCreated:Put record, shaped as S3 sends it, per PutObject', async () => {
      // Prepare
      const before = s3.events.length;
      const body = Buffer.from('not really a model');

      // Act
      const put = await s3.client.send(
        new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/m/x.onnx', Body: body }),
      );
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'marker/1', Body: 'm' }));
      const events = (await s3.waitForEvents(before + 2)).slice(before);

      // Assess
      expect(keysOf(events)).toEqual(['uploads/m/x.onnx', 'marker/1']);
      const event = events[0];
      expect(event?.Records).toHaveLength(1);
      expect(event?.Records[0]).toMatchObject({
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventName: 'ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          bucket: { name: 'models', arn: 'arn:aws:s3:::models' },
          object: { key: 'uploads/m/x.onnx', size: body.byteLength, eTag: put.ETag?.replace(/"/g, '') },
        },
      });
      expect(Date.parse(event?.Records[0]?.eventTime ?? '')).not.toBeNaN();
    });

    it('URL-encodes keys as S3 does, spaces as "+"', async () => {
      // Prepare
      const before = s3.events.length;
      const key = 'uploads/my model/v (1)+ü.onnx';

      // Act
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: key, Body: 'x' }));
      const [event] = (await s3.waitForEvents(before + 1)).slice(before);

      // Assess
      const encoded = event?.Records[0]?.s3.object.key ?? '';
      expect(encoded).toBe('uploads/my+model/v+%281%29%2B%C3%BC.onnx');
      expect(decodeURIComponent(encoded.replace(/\+/g, ' '))).toBe(key);
    });

    it('gives later writes greater sequencers', async () => {
      // Prepare
      const before = s3.events.length;

      // Act
      for (const index of [1, 2, 3]) {
        await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: `sequence/${index}`, Body: 'x' }));
      }
      const events = (await s3.waitForEvents(before + 3)).slice(before);

      // Assess
      const sequencers = events.map((event) => event.Records[0]?.s3.object.sequencer ?? '');
      expect(sequencers).toHaveLength(3);
      expect([...sequencers].sort()).toEqual(sequencers);
      expect(new Set(sequencers).size).toBe(3);
    });

    it('stores a multipart upload (as lib-storage and aws s3 cp send it) and notifies CompleteMultipartUpload', async () => {
      // Prepare
      const before = s3.events.length;
      const body = randomBytes(12 * 1024 * 1024);

      // Act
      await new Upload({
        client: s3.client,
        params: { Bucket: s3.server.bucket, Key: 'uploads/big/model.onnx', Body: body },
        partSize: 5 * 1024 * 1024,
        queueSize: 2,
      }).done();
      const [event] = (await s3.waitForEvents(before + 1)).slice(before);

      // Assess
      expect(event?.Records[0]?.eventName).toBe('ObjectCreated:CompleteMultipartUpload');
      expect(event?.Records[0]?.s3.object).toMatchObject({ key: 'uploads/big/model.onnx', size: body.byteLength });
      expect((await getBytes(s3.client, s3.server.bucket, 'uploads/big/model.onnx')).equals(body)).toBe(true);
    });

    it('decodes a streamed upload sent with the SDK default aws-chunked encoding and trailing checksum', async () => {
      // Prepare: a stream body makes the SDK frame the payload and append x-amz-checksum-crc32 as a trailer.
      const before = s3.events.length;
      const parts = [randomBytes(70_000), randomBytes(3), randomBytes(100_000)];
      const body = Buffer.concat(parts);

      // Act
      await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.server.bucket,
          Key: 'uploads/streamed/model.onnx',
          Body: Readable.from(parts),
          ContentLength: body.byteLength,
        }),
      );
      const response = await s3.client.send(
        new GetObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/streamed/model.onnx' }),
      );
      const stored = Buffer.from((await response.Body?.transformToByteArray()) ?? []);
      const [event] = (await s3.waitForEvents(before + 1)).slice(before);

      // Assess
      expect(stored.equals(body)).toBe(true);
      expect(response.ContentEncoding).toBeUndefined();
      expect(event?.Records[0]?.s3.object.size).toBe(body.byteLength);
    });

    it('notifies a copy as ObjectCreated:Copy', async () => {
      // Prepare
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'copy/source', Body: 'copied' }));
      const before = s3.events.length;

      // Act
      await s3.client.send(
        new CopyObjectCommand({
          Bucket: s3.server.bucket,
          Key: 'copy/target',
          CopySource: `${s3.server.bucket}/copy/source`,
        }),
      );
      const [event] = (await s3.waitForEvents(before + 1)).slice(before);

      // Assess
      expect(event?.Records[0]).toMatchObject({
        eventName: 'ObjectCreated:Copy',
        s3: { object: { key: 'copy/target', size: 6 } },
      });
      expect(event?.Records[0]?.s3.object.eTag).toMatch(/^[0-9a-f]{32}$/);
    });

    it('survives a handler that throws: the error is reported, the write stands, the server keeps serving', async () => {
      // Prepare
      const before = s3.events.length;

      // Act
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/explode.onnx', Body: 'a' }));
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/after.onnx', Body: 'b' }));
      const events = (await s3.waitForEvents(before + 2)).slice(before);

      // Assess
      expect(keysOf(events)).toEqual(['uploads/explode.onnx', 'uploads/after.onnx']);
      expect(failures).toEqual([{ error: new Error('handler failed on purpose'), key: 'uploads/explode.onnx' }]);
      expect((await getBytes(s3.client, s3.server.bucket, 'uploads/explode.onnx')).toString()).toBe('a');
      expect((await getBytes(s3.client, s3.server.bucket, 'uploads/after.onnx')).toString()).toBe('b');
    });
  });

  describe('options and lifecycle', () => {
    it('notifies only keys that pass the prefix and suffix filter', async () => {
      // Prepare
      const s3 = await startS3Fixture({ eventFilter: { prefix: 'uploads/', suffix: '.onnx' } });
      try {
        // Act
        for (const key of ['models/m/1/model.onnx', 'uploads/m/x.onnx.json', 'uploads/m/x.onnx']) {
          await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: key, Body: 'x' }));
        }
        await s3.waitForEvents(1);

        // Assess: notifications go out in write order, so earlier matches would have arrived first.
        expect(keysOf(s3.events)).toEqual(['uploads/m/x.onnx']);
      } finally {
        await s3.stop();
      }
    });

    it('waits for running handlers before closing', async () => {
      // Prepare
      let handled = false;
      const s3 = await startS3Fixture({
        onObjectCreated: async () => {
          await sleep(50);
          handled = true;
        },
      });
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/slow.onnx', Body: 'x' }));

      // Act
      await s3.stop();

      // Assess
      expect(handled).toBe(true);
    });

    it('keeps objects in its data folder across restarts, in a bucket named as configured', async () => {
      // Prepare
      const first = await startS3Fixture({ bucket: 'repository' });
      await first.client.send(
        new PutObjectCommand({ Bucket: 'repository', Key: 'models/m/manifest.json', Body: '{}' }),
      );
      await first.server.close();
      first.client.destroy();

      // Act
      const second = await startS3Fixture({ bucket: 'repository', dataDir: first.dataDir });
      try {
        const stored = await getBytes(second.client, 'repository', 'models/m/manifest.json');

        // Assess
        expect(second.server.bucket).toBe('repository');
        expect(stored.toString()).toBe('{}');
      } finally {
        await second.stop();
        await first.stop().catch(() => undefined);
      }
    });
  });

  describe('protocol details', () => {
    let s3: S3Fixture;

    beforeAll(async () => {
      s3 = await startS3Fixture();
    });

    afterAll(async () => {
      await s3.stop();
    });

    it('exposes a loopback endpoint, the fixed local credentials and the region', () => {
      // Assess
      expect(s3.server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(s3.server.credentials).toEqual({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
      expect(s3.server.region).toBe('us-east-1');
    });

    it('refuses CompleteMultipartUpload with If-None-Match when the key exists', async () => {
      // Prepare
      const key = 'conditional/multipart.onnx';
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: key, Body: 'original' }));
      const { UploadId } = await s3.client.send(
        new CreateMultipartUploadCommand({ Bucket: s3.server.bucket, Key: key }),
      );
      const part = await s3.client.send(
        new UploadPartCommand({ Bucket: s3.server.bucket, Key: key, UploadId, PartNumber: 1, Body: 'replacement' }),
      );

      // Act
      const completing = s3.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: s3.server.bucket,
          Key: key,
          UploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
        }),
      );

      // Assess
      await expect(completing).rejects.toMatchObject({
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      });
      expect((await getBytes(s3.client, s3.server.bucket, key)).toString()).toBe('original');
    });

    it('answers 400 IncompleteBody to a malformed aws-chunked body and stores nothing', async () => {
      // Prepare
      const url = `${s3.server.endpoint}/${s3.server.bucket}/uploads/malformed.onnx`;
      const body = Buffer.from('5\r\nhello\r\nzz\r\n');

      // Act
      const response = await rawRequest(
        url,
        'PUT',
        {
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': '5',
          'content-length': String(body.length),
        },
        body,
      );
      const after = await rawRequest(url, 'GET', {}, Buffer.alloc(0));

      // Assess
      expect(response.status).toBe(400);
      expect(response.body).toContain('<Code>IncompleteBody</Code>');
      expect(after.status).toBe(404);
    });

    it('keeps the previous object when an upload is cut off midway', async () => {
      // Prepare
      const key = 'uploads/aborted/model.onnx';
      await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: key, Body: 'previous' }));
      // Writes stage their bytes in the bucket's staging folder (same file system, renamed into place).
      const folder = `${s3.dataDir}/${s3.server.bucket}/staging`;
      const partialFiles = async (): Promise<string[]> =>
        (await readdir(folder)).filter((name) => name.endsWith('.partial'));

      // Act: announce 1 MB, send 64 KB, wait until the server is writing it, then drop the connection.
      const path = `/${s3.server.bucket}/${key}`;
      const outgoing = request(`${s3.server.endpoint}${path}`, {
        method: 'PUT',
        headers: await signRaw(
          s3.server.endpoint,
          'PUT',
          path,
          { 'content-length': String(1024 * 1024) },
          s3.server.credentials,
        ),
      });
      outgoing.on('error', () => undefined);
      outgoing.write(randomBytes(64 * 1024));
      while ((await partialFiles()).length === 0) {
        await sleep(10);
      }
      outgoing.destroy();
      while ((await partialFiles()).length > 0) {
        await sleep(10);
      }

      // Assess
      expect((await getBytes(s3.client, s3.server.bucket, key)).toString()).toBe('previous');
    });
  });
  describe('keys that would leave the data folder', () => {
    let s3: S3Fixture;
    beforeAll(async () => {
      s3 = await startS3Fixture();
    });
    afterAll(() => s3.stop());

    it.each(['uploads/../../../escape.onnx', 'uploads/%2e%2e/%2E%2E/%2e%2e/escape.onnx', './escape.onnx'])(
      'refuses PUT %s with 400 and writes nothing outside the data folder',
      async (key) => {
        // The path exactly as written: a URL (fetch, the SDK, http.request with a URL) would resolve the dot segments.
        const { hostname, port } = new URL(s3.server.endpoint);
        const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const outgoing = request({ hostname, port, method: 'PUT', path: `/${s3.server.bucket}/${key}` }, (answer) => {
            const chunks: Buffer[] = [];
            answer.on('data', (chunk: Buffer) => chunks.push(chunk));
            answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          });
          outgoing.on('error', reject);
          outgoing.end('x');
        });

        expect(response.status).toBe(400);
        expect(response.body).toContain('InvalidArgument');
        expect(await readdir(join(s3.dataDir, '..'))).not.toContain('escape.onnx');
        expect((await readdir(s3.dataDir, { recursive: true })).filter((f) => String(f).includes('escape'))).toEqual(
          [],
        );
      },
    );
  });
});
