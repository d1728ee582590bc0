/**
 * Authentication and authorization on the embedded S3 server: SigV4 in every form clients send (header, presigned
 * query, chunk-signed streaming bodies), refusal of anonymous and browser requests (a cross-site form POST must
 * not rewrite a manifest), and each role's policy enforced with S3's answers (403 AccessDenied; 404 for a missing
 * key only to a role that may list). Signatures are made by the SDK's own signer, not by the server's code.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import type { AccessDenial } from '../../functions/local/s3-access.js';
import { bucketArn, bucketStatements, inferAccess } from '../../infra/function-grants.js';
import { NodeSha256, signRaw, startS3Fixture, type S3Fixture } from './fixture.js';

let s3: S3Fixture;
const denials: AccessDenial[] = [];
const MANIFEST = 'models/iris/manifest.json';

beforeAll(async () => {
  s3 = await startS3Fixture({
    roles: [
      { role: 'infer-iris', statements: bucketStatements(inferAccess('iris'), bucketArn('models')) },
      // GetObject without any ListBucket: S3 answers it 403, not 404, for a missing key.
      {
        role: 'no-list',
        statements: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`${bucketArn('models')}/*`] }],
      },
    ],
    onAccessDenied: (denial) => denials.push(denial),
  });
  await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST, Body: '{"latest":"1"}' }));
});
afterAll(() => s3.stop());

/** Sends a request exactly as given and returns status and body. */
function send(
  path: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | string = '',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${s3.server.endpoint}${path}`, { method, headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

const manifestText = async (): Promise<string> =>
  (await (
    await s3.client.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST }))
  ).Body?.transformToString()) ?? '';

const signer = (secretAccessKey = s3.server.credentials.secretAccessKey) =>
  new SignatureV4({
    service: 's3',
    region: s3.server.region,
    credentials: { accessKeyId: s3.server.credentials.accessKeyId, secretAccessKey },
    sha256: NodeSha256,
    uriEscapePath: false,
  });

describe('authentication', () => {
  it('refuses an unsigned request with 403 AccessDenied', async () => {
    const answer = await send(`/${s3.server.bucket}/${MANIFEST}`, 'GET', {});
    expect(answer.status).toBe(403);
    expect(answer.body).toContain('<Code>AccessDenied</Code>');
  });

  it('refuses a signature made with the wrong secret, and an unknown key id', async () => {
    const wrong = createS3Client({
      endpoint: s3.server.endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'guess' },
      maxAttempts: 1,
    });
    const unknown = createS3Client({
      endpoint: s3.server.endpoint,
      credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    await expect(wrong.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST }))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
    });
    await expect(unknown.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST }))).rejects.toMatchObject(
      { name: 'InvalidAccessKeyId' },
    );
    wrong.destroy();
    unknown.destroy();
  });

  it('refuses a cross-site form POST, and the manifest stays as it was', async () => {
    const before = await manifestText();
    const boundary = 'xyz';
    const form =
      `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${MANIFEST}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.json"\r\n\r\n{"latest":"666"}\r\n--${boundary}--\r\n`;
    const answer = await send(
      `/${s3.server.bucket}`,
      'POST',
      {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
      form,
    );
    expect(answer.status).toBe(403);
    expect(await manifestText()).toBe(before);
  });

  it('refuses browser requests even when signed (Origin, CORS preflight)', async () => {
    const path = `/${s3.server.bucket}/${MANIFEST}`;
    const signed = await signRaw(s3.server.endpoint, 'GET', path, {}, s3.server.credentials);
    expect((await send(path, 'GET', { ...signed, origin: 'https://evil.example' })).status).toBe(403);
    expect(
      (await send(path, 'OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'PUT' })).status,
    ).toBe(403);
  });

  it('accepts a presigned GET, and refuses it once expired or altered', async () => {
    const url = new URL(s3.server.endpoint);
    const base = {
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: `/${s3.server.bucket}/${MANIFEST}`,
      // As @aws-sdk/s3-request-presigner does: the payload is unsigned, and the header is hoisted into the query.
      headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    };
    const target = (presigned: { path: string; query?: Record<string, unknown> }): string =>
      `${presigned.path}?${new URLSearchParams(presigned.query as Record<string, string>).toString()}`;
    const fresh = await signer().presign({ ...base, query: {} }, { expiresIn: 60 });
    const old = await signer().presign(
      { ...base, query: {} },
      { expiresIn: 60, signingDate: new Date(Date.now() - 3_600_000) },
    );

    expect(await send(target(fresh), 'GET', {})).toMatchObject({ status: 200, body: await manifestText() });
    expect((await send(target(old), 'GET', {})).status).toBe(403);
    expect((await send(target(fresh).replace('manifest.json', 'other.json'), 'GET', {})).status).toBe(403);
  });

  it('stores a chunk-signed streaming upload, and refuses one whose chunk was altered', async () => {
    const key = 'uploads/iris/streamed.onnx';
    const path = `/${s3.server.bucket}/${key}`;
    const chunks = [Buffer.alloc(8192, 1), Buffer.from('tail')];
    const payload = Buffer.concat(chunks);
    const frame = async (tamper: boolean): Promise<{ headers: Record<string, string>; body: Buffer }> => {
      const date = new Date();
      const lengths = [...chunks.map((c) => c.length), 0];
      const framed = lengths.reduce(
        (n, len) => n + len.toString(16).length + ';chunk-signature='.length + 64 + 4 + len,
        0,
      );
      const headers = await signRaw(
        s3.server.endpoint,
        'PUT',
        path,
        {
          'content-encoding': 'aws-chunked',
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'x-amz-decoded-content-length': String(payload.length),
          'content-length': String(framed),
        },
        s3.server.credentials,
      );
      const authorization = headers['authorization'] ?? '';
      let previous = /Signature=([0-9a-f]{64})/.exec(authorization)?.[1] ?? '';
      const amzDate = headers['x-amz-date'] ?? '';
      const scope = `${amzDate.slice(0, 8)}/${s3.server.region}/s3/aws4_request`;
      const parts: Buffer[] = [];
      for (const chunk of [...chunks, Buffer.alloc(0)]) {
        const toSign = [
          'AWS4-HMAC-SHA256-PAYLOAD',
          amzDate,
          scope,
          previous,
          sha256(Buffer.alloc(0)),
          sha256(chunk),
        ].join('\n');
        previous = await signer().sign(toSign, { signingDate: date });
        const data = tamper && chunk.length === 4 ? Buffer.from('TAIL') : chunk;
        parts.push(
          Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previous}\r\n`),
          data,
          Buffer.from('\r\n'),
        );
      }
      return { headers, body: Buffer.concat(parts) };
    };

    const good = await frame(false);
    const stored = await send(path, 'PUT', good.headers, good.body);
    const bad = await frame(true);
    const refused = await send(path.replace('streamed', 'tampered'), 'PUT', bad.headers, bad.body);

    expect(stored.status).toBe(200);
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: key }));
    expect(Buffer.from(await object.Body!.transformToByteArray()).equals(payload)).toBe(true);
    expect(refused.status).toBe(403);
  });
});

describe("a role's policy", () => {
  const asRole = (role: string) =>
    createS3Client({
      endpoint: s3.server.endpoint,
      credentials: s3.server.credentialsFor(role),
      region: s3.server.region,
      maxAttempts: 1,
    });

  it('allows what the policy grants and answers the rest with 403 AccessDenied, logged with action, resource and role', async () => {
    const client = asRole('infer-iris');
    denials.length = 0;

    await expect(client.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST }))).resolves.toBeDefined();
    await expect(
      client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'rejected/iris/' })),
    ).resolves.toBeDefined();
    await expect(
      client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket, Prefix: 'models/' })),
    ).rejects.toMatchObject({
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    await expect(
      client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST, Body: '{}' })),
    ).rejects.toMatchObject({
      name: 'AccessDenied',
    });

    expect(denials).toEqual([
      {
        role: 'infer-iris',
        action: 's3:ListBucket',
        resource: 'arn:aws:s3:::models',
        context: { 's3:prefix': 'models/' },
        reason: 'implicit-deny',
      },
      {
        role: 'infer-iris',
        action: 's3:PutObject',
        resource: `arn:aws:s3:::models/${MANIFEST}`,
        context: {},
        reason: 'implicit-deny',
      },
    ]);
    client.destroy();
  });

  it('answers a missing key with 404 to a role that may list, and 403 to one that may not', async () => {
    const lister = asRole('infer-iris');
    const blind = asRole('no-list');
    const missing = new GetObjectCommand({ Bucket: s3.server.bucket, Key: 'models/iris/9/model.onnx' });

    await expect(lister.send(missing)).rejects.toMatchObject({ name: 'NoSuchKey' });
    await expect(blind.send(missing)).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(blind.send(new GetObjectCommand({ Bucket: s3.server.bucket, Key: MANIFEST }))).resolves.toBeDefined();
    lister.destroy();
    blind.destroy();
  });

  it('keeps full access for the owner key pair (CLI, aws s3 cp)', async () => {
    await expect(s3.client.send(new ListObjectsV2Command({ Bucket: s3.server.bucket }))).resolves.toBeDefined();
    await expect(
      s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'anything/at/all', Body: 'x' })),
    ).resolves.toBeDefined();
  });
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
