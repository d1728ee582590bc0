/**
 * The S3 protocol as the embedded server speaks it to the real AWS SDK v3: listings and their pagination, ranged
 * and conditional reads, S3's XML errors, multi-object deletes, copies, the multipart rules, bucket calls, strict
 * XML request bodies, and a close() that leaves no socket open.
 */
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { parseXml } from '../../functions/local/s3-xml.js';
import { rawRequest, signRaw, startS3Fixture } from './fixture.js';
import type { S3Fixture } from './fixture.js';

let s3: S3Fixture;
beforeAll(async () => {
  s3 = await startS3Fixture();
});
afterAll(() => s3.stop());

const put = (Key: string, Body: string | Buffer = 'x', extra: Record<string, unknown> = {}) =>
  s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key, Body, ...extra }));
const get = (Key: string, extra: Record<string, unknown> = {}) =>
  s3.client.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key, ...extra }));
const text = async (Key: string, extra: Record<string, unknown> = {}) =>
  (await (await get(Key, extra)).Body?.transformToString()) ?? '';

describe('listings', () => {
  const keys = ['list/a b.txt', 'list/b/1', 'list/b/2', 'list/c', 'list/d/x', 'list/\u{1F600}', 'list/\uFFFD'];
  beforeAll(async () => {
    for (const key of keys) await put(key);
  });

  it('pages by max-keys with continuation tokens, counting common prefixes, in UTF-8 byte order', async () => {
    const first = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'list/', Delimiter: '/', MaxKeys: 2 }),
    );
    expect(first).toMatchObject({ KeyCount: 2, IsTruncated: true, MaxKeys: 2, Delimiter: '/', Prefix: 'list/' });
    expect(first.Contents?.map((c) => c.Key)).toEqual(['list/a b.txt']);
    expect(first.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['list/b/']);

    const contents: string[] = [];
    const prefixes: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: s3.client, pageSize: 2 },
      { Bucket: s3.server.bucket, Prefix: 'list/', Delimiter: '/' },
    )) {
      contents.push(...(page.Contents ?? []).map((c) => c.Key ?? ''));
      prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix ?? ''));
    }
    // U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    expect(contents).toEqual(['list/a b.txt', 'list/c', 'list/\uFFFD', 'list/\u{1F600}']);
    expect(prefixes).toEqual(['list/b/', 'list/d/']);
  });

  it('starts after a key, reports sizes and etags, and URL-encodes keys when asked (as aws s3 ls asks)', async () => {
    const after = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'list/', StartAfter: 'list/b/1', MaxKeys: 1 }),
    );
    expect(after.Contents).toEqual([
      expect.objectContaining({ Key: 'list/b/2', Size: 1, ETag: '"9dd4e461268c8034f5c8564e155c67a6"' }),
    ]);
    expect(after.StartAfter).toBe('list/b/1');

    const encoded = await rawRequest(
      `${s3.server.endpoint}/${s3.server.bucket}?list-type=2&prefix=list%2Fa&encoding-type=url`,
      'GET',
      {},
      Buffer.alloc(0),
    );
    expect(encoded.status).toBe(200);
    expect(encoded.body).toContain('<Key>list/a+b.txt</Key>');
    expect(encoded.body).toContain('<EncodingType>url</EncodingType>');
  });

  it('refuses a foreign continuation token and a bad max-keys with 400 InvalidArgument', async () => {
    await expect(
      s3.client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket, ContinuationToken: 'bm9wZQ==' })),
    ).rejects.toMatchObject({ name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
    const bad = await rawRequest(
      `${s3.server.endpoint}/${s3.server.bucket}?list-type=2&max-keys=many`,
      'GET',
      {},
      Buffer.alloc(0),
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('<ArgumentName>max-keys</ArgumentName>');
  });
});

describe('reads', () => {
  beforeAll(async () => {
    await put('read/digits', '0123456789');
    await put('read/empty', '');
  });

  it.each([
    ['bytes=2-4', '234', 'bytes 2-4/10'],
    ['bytes=7-', '789', 'bytes 7-9/10'],
    ['bytes=-3', '789', 'bytes 7-9/10'],
    ['bytes=8-100', '89', 'bytes 8-9/10'],
  ])('answers Range %s with 206 and the bytes', async (Range, expected, contentRange) => {
    const response = await get('read/digits', { Range });
    expect(response.$metadata.httpStatusCode).toBe(206);
    expect(response.ContentRange).toBe(contentRange);
    expect(response.ContentLength).toBe(expected.length);
    expect(await response.Body?.transformToString()).toBe(expected);
  });

  it('answers 416 InvalidRange past the end and for any range of an empty object; ignores a malformed range', async () => {
    await expect(get('read/digits', { Range: 'bytes=10-' })).rejects.toMatchObject({
      name: 'InvalidRange',
      $metadata: { httpStatusCode: 416 },
    });
    await expect(get('read/empty', { Range: 'bytes=0-99' })).rejects.toMatchObject({ name: 'InvalidRange' });
    const whole = await get('read/digits', { Range: 'bytes=5-2' });
    expect(whole.$metadata.httpStatusCode).toBe(200);
    expect(await whole.Body?.transformToString()).toBe('0123456789');
  });

  it('evaluates If-Match (412), If-None-Match and If-Modified-Since (304) on GET and HEAD', async () => {
    const { ETag, LastModified } = await s3.client.send(
      new HeadObjectCommand({ Bucket: s3.server.bucket, Key: 'read/digits' }),
    );
    expect(await text('read/digits', { IfMatch: ETag })).toBe('0123456789');
    await expect(get('read/digits', { IfMatch: '"0000"' })).rejects.toMatchObject({
      name: 'PreconditionFailed',
      $metadata: { httpStatusCode: 412 },
    });
    await expect(get('read/digits', { IfNoneMatch: ETag })).rejects.toMatchObject({
      $metadata: { httpStatusCode: 304 },
    });
    await expect(
      s3.client.send(
        new HeadObjectCommand({ Bucket: s3.server.bucket, Key: 'read/digits', IfModifiedSince: LastModified }),
      ),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 304 } });
    const older = new Date((LastModified?.getTime() ?? 0) - 60_000);
    expect(await text('read/digits', { IfModifiedSince: older })).toBe('0123456789');
  });

  it('sends stored headers and user metadata back, and presigned-style response overrides', async () => {
    await put('read/meta.json', '{}', { ContentType: 'application/json', Metadata: { origin: 'test' } });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.server.bucket, Key: 'read/meta.json' }));
    expect(head).toMatchObject({ ContentType: 'application/json', Metadata: { origin: 'test' }, ContentLength: 2 });
    const overridden = await get('read/meta.json', { ResponseContentType: 'text/plain' });
    expect(overridden.ContentType).toBe('text/plain');
  });

  it("answers S3's XML error with code, message, key and request id", async () => {
    const missing = await rawRequest(
      `${s3.server.endpoint}/${s3.server.bucket}/read/missing`,
      'GET',
      {},
      Buffer.alloc(0),
    );
    expect(missing.status).toBe(404);
    expect(missing.body).toMatch(
      /<Error[^>]*><Code>NoSuchKey<\/Code><Message>The specified key does not exist\.<\/Message><Key>read\/missing<\/Key><RequestId>[0-9A-F]{16}<\/RequestId><\/Error>$/,
    );
    await expect(s3.client.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'x' }))).rejects.toMatchObject({
      name: 'NoSuchBucket',
      $metadata: { httpStatusCode: 404 },
    });
  });
});

describe('writes', () => {
  it('deletes several objects in one DeleteObjects, and reports only errors when quiet', async () => {
    await put('delete/a');
    await put('delete/b');
    const loud = await s3.client.send(
      new DeleteObjectsCommand({
        Bucket: s3.server.bucket,
        Delete: { Objects: [{ Key: 'delete/a' }, { Key: 'delete/never-existed' }] },
      }),
    );
    expect(loud.Deleted?.map((d) => d.Key)).toEqual(['delete/a', 'delete/never-existed']);
    const quiet = await s3.client.send(
      new DeleteObjectsCommand({ Bucket: s3.server.bucket, Delete: { Objects: [{ Key: 'delete/b' }], Quiet: true } }),
    );
    expect(quiet.Deleted ?? []).toEqual([]);
    const left = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'delete/' }));
    expect(left.KeyCount).toBe(0);
  });

  it('copies with the source metadata or replaced metadata, and refuses a copy onto itself that changes nothing', async () => {
    await put('copy/source', 'payload', { ContentType: 'text/plain', Metadata: { kind: 'source' } });
    const copied = await s3.client.send(
      new CopyObjectCommand({
        Bucket: s3.server.bucket,
        Key: 'copy/kept',
        CopySource: `${s3.server.bucket}/copy/source`,
      }),
    );
    expect(copied.CopyObjectResult?.ETag).toBe('"321c3cf486ed509164edec1e1981fec8"');
    await s3.client.send(
      new CopyObjectCommand({
        Bucket: s3.server.bucket,
        Key: 'copy/replaced',
        CopySource: `/${s3.server.bucket}/copy/source`,
        MetadataDirective: 'REPLACE',
        ContentType: 'application/octet-stream',
      }),
    );
    const kept = await s3.client.send(new HeadObjectCommand({ Bucket: s3.server.bucket, Key: 'copy/kept' }));
    const replaced = await s3.client.send(new HeadObjectCommand({ Bucket: s3.server.bucket, Key: 'copy/replaced' }));
    expect(kept).toMatchObject({ ContentType: 'text/plain', Metadata: { kind: 'source' } });
    expect(replaced).toMatchObject({ ContentType: 'application/octet-stream', Metadata: {} });
    expect(await text('copy/replaced')).toBe('payload');

    const copy = (Key: string, source: string) =>
      s3.client.send(
        new CopyObjectCommand({ Bucket: s3.server.bucket, Key, CopySource: `${s3.server.bucket}/${source}` }),
      );
    await expect(copy('copy/source', 'copy/source')).rejects.toMatchObject({
      name: 'InvalidRequest',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(copy('copy/x', 'copy/missing')).rejects.toMatchObject({
      name: 'NoSuchKey',
      $metadata: { httpStatusCode: 404 },
    });
  });
});

describe('multipart uploads', () => {
  const MiB = 1024 * 1024;
  const start = async (Key: string, client = s3) =>
    (await client.client.send(new CreateMultipartUploadCommand({ Bucket: client.server.bucket, Key }))).UploadId ?? '';
  const part = async (Key: string, UploadId: string, PartNumber: number, Body: Buffer, client = s3) => ({
    PartNumber,
    ETag: (
      await client.client.send(new UploadPartCommand({ Bucket: client.server.bucket, Key, UploadId, PartNumber, Body }))
    ).ETag,
  });
  const complete = (Key: string, UploadId: string, Parts: { PartNumber: number; ETag?: string }[], client = s3) =>
    client.client.send(
      new CompleteMultipartUploadCommand({ Bucket: client.server.bucket, Key, UploadId, MultipartUpload: { Parts } }),
    );

  it('refuses small parts but the last (EntityTooSmall), unknown etags (InvalidPart) and disorder (InvalidPartOrder)', async () => {
    const key = 'multipart/rules';
    const uploadId = await start(key);
    const small = await part(key, uploadId, 1, Buffer.from('tiny'));
    const last = await part(key, uploadId, 2, Buffer.from('end'));
    await expect(complete(key, uploadId, [small, last])).rejects.toMatchObject({
      name: 'EntityTooSmall',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(complete(key, uploadId, [{ PartNumber: 1, ETag: '"0123"' }])).rejects.toMatchObject({
      name: 'InvalidPart',
    });
    await expect(complete(key, uploadId, [last, small])).rejects.toMatchObject({ name: 'InvalidPartOrder' });
    // The upload survives refused completions: a single (last) part completes it.
    await complete(key, uploadId, [small]);
    expect(await text(key)).toBe('tiny');
    await expect(complete(key, uploadId, [small])).rejects.toMatchObject({
      name: 'NoSuchUpload',
      $metadata: { httpStatusCode: 404 },
    });
  });

  it("stores 5 MiB parts with S3's multipart etag, and forgets an aborted upload", async () => {
    const key = 'multipart/etag';
    const bodies = [randomBytes(5 * MiB), randomBytes(1000)];
    const uploadId = await start(key);
    const parts = [
      await part(key, uploadId, 1, bodies[0] as Buffer),
      await part(key, uploadId, 2, bodies[1] as Buffer),
    ];
    const done = await complete(key, uploadId, parts);
    expect(done.ETag).toMatch(/^"[0-9a-f]{32}-2"$/);
    const [event] = (await s3.waitForEvents(s3.events.length)).filter((e) => e.Records[0]?.s3.object.key === key);
    expect(event?.Records[0]?.s3.object).toMatchObject({ size: 5 * MiB + 1000, eTag: done.ETag?.slice(1, -1) });

    const aborted = await start('multipart/aborted');
    await part('multipart/aborted', aborted, 1, Buffer.from('x'));
    await s3.client.send(
      new AbortMultipartUploadCommand({ Bucket: s3.server.bucket, Key: 'multipart/aborted', UploadId: aborted }),
    );
    await expect(part('multipart/aborted', aborted, 2, Buffer.from('y'))).rejects.toMatchObject({
      name: 'NoSuchUpload',
    });
    await expect(
      s3.client.send(
        new UploadPartCommand({ Bucket: s3.server.bucket, Key: 'k', UploadId: '../../x', PartNumber: 1, Body: 'x' }),
      ),
    ).rejects.toMatchObject({ name: 'NoSuchUpload' });
  });

  it('accepts small parts when minPartBytes is lowered (the knob tests and benches use)', async () => {
    const lenient = await startS3Fixture({ minPartBytes: 1 });
    try {
      const key = 'multipart/small';
      const uploadId = await start(key, lenient);
      const parts = [
        await part(key, uploadId, 1, Buffer.from('ab'), lenient),
        await part(key, uploadId, 3, Buffer.from('c'), lenient),
      ];
      await complete(key, uploadId, parts, lenient);
      const body = await lenient.client.send(new GetObjectCommand({ Bucket: lenient.server.bucket, Key: key }));
      expect(await body.Body?.transformToString()).toBe('abc');
    } finally {
      await lenient.stop();
    }
  });
});

describe('XML request bodies', () => {
  const deleteUrl = () => `${s3.server.endpoint}/${s3.server.bucket}?delete`;

  it.each([
    [
      'a DOCTYPE with an entity',
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Delete><Object><Key>&x;</Key></Object></Delete>',
    ],
    ['an unknown entity', '<Delete><Object><Key>&x;</Key></Object></Delete>'],
    ['mismatched tags', '<Delete><Object><Key>k</Object></Key></Delete>'],
    ['CDATA', '<Delete><Object><Key><![CDATA[k]]></Key></Object></Delete>'],
    ['no keys, only a __proto__ element', '<Delete><__proto__><polluted>yes</polluted></__proto__></Delete>'],
    ['a body over 2 MiB', `<Delete>${'<Object><Key>k</Key></Object>'.repeat(80_000)}</Delete>`],
  ])('answers %s with 400 MalformedXML and keeps serving', async (_what, xml) => {
    const answer = await rawRequest(deleteUrl(), 'POST', {}, Buffer.from(xml));
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('<Code>MalformedXML</Code>');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await put('xml/after', 'still here');
    expect(await text('xml/after')).toBe('still here');
  });

  it('parses elements, namespaces and the predefined entities into arrays, never into keyed objects', () => {
    const parsed = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><s3:Delete xmlns:s3="x"><Object><Key>a &amp; b &#x263A;&#65;</Key></Object><constructor/></s3:Delete>',
    );
    expect(parsed.name).toBe('Delete');
    expect(parsed.children.map((child) => child.name)).toEqual(['Object', 'constructor']);
    expect(parsed.children[0]?.children[0]).toEqual({ name: 'Key', text: 'a & b \u263AA', children: [] });
    expect(() => parseXml('<a></a><b/>')).toThrow(/after the root/);
    expect(() => parseXml('<a>&#0;</a>')).toThrow(/invalid character reference/);
  });
});

describe('buckets', () => {
  it('heads, creates and lists buckets as the SDK and aws s3 ls do', async () => {
    await s3.client.send(new HeadBucketCommand({ Bucket: s3.server.bucket }));
    await expect(s3.client.send(new HeadBucketCommand({ Bucket: 'other' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
    await s3.client.send(new CreateBucketCommand({ Bucket: 'other' }));
    await s3.client.send(new HeadBucketCommand({ Bucket: 'other' }));
    const { Buckets } = await s3.client.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toEqual([s3.server.bucket, 'other'].sort());
  });

  it('answers an operation it does not implement with 501 NotImplemented, naming it', async () => {
    const answer = await rawRequest(`${s3.server.endpoint}/${s3.server.bucket}?versioning`, 'GET', {}, Buffer.alloc(0));
    expect(answer.status).toBe(501);
    expect(answer.body).toContain('<Code>NotImplemented</Code>');
    expect(answer.body).toContain('?versioning');
  });
});

describe('close()', () => {
  it('closes idle keep-alive connections instead of waiting for their timeout', async () => {
    const server = await startS3Fixture();
    const agent = new Agent({ keepAlive: true });
    const path = `/${server.server.bucket}/anything`;
    const headers = await signRaw(server.server.endpoint, 'GET', path, {}, server.server.credentials);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const outgoing = request(`${server.server.endpoint}${path}`, { agent, headers }, (response) => {
        response.resume();
        response.on('end', () => resolve(outgoing.socket as Socket));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
    const closed = once(socket, 'close');
    await server.stop();
    await closed;
    expect(socket.destroyed).toBe(true);
    agent.destroy();
  });
});

describe('connections', () => {
  it('keeps a keep-alive connection usable after refusing a streamed aws-chunked upload unread', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = async (method: string, path: string, headers: Record<string, string>, body: string) => {
      const signed = await signRaw(s3.server.endpoint, method, path, headers, s3.server.credentials);
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        const outgoing = request(`${s3.server.endpoint}${path}`, { method, agent, headers: signed }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        });
        outgoing.on('error', reject);
        outgoing.end(body);
      });
    };
    try {
      // Larger than every stream buffer between the socket and a decoder, so an unread body would stay unread.
      const payload = 'x'.repeat(4 * 1024 * 1024);
      const chunked = `${payload.length.toString(16)}\r\n${payload}\r\n0\r\n\r\n`;
      const refused = await send(
        'PUT',
        '/no-such-bucket/k',
        {
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(payload.length),
          'content-length': String(chunked.length),
        },
        chunked,
      );
      // One socket only: the next request waits for the first one's connection to be reusable.
      const next = await send('GET', `/${s3.server.bucket}/connections/missing`, {}, '');

      expect(refused.status).toBe(404);
      expect(refused.body).toContain('<Code>NoSuchBucket</Code>');
      expect(next.status).toBe(404);
      expect(next.body).toContain('<Code>NoSuchKey</Code>');
    } finally {
      agent.destroy();
    }
  });
});
