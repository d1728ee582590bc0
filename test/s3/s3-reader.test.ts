/**
 * The read contract of `BlobStore` on the real embedded S3 server, run through both S3 adapters: the SDK's
 * (`S3BlobStore`, registration) and the serving functions' GET-only `S3Reader`. Then what only the reader does:
 * refuse writes, retry 5xx and throttling, and map S3's errors (a loopback server answers canned errors).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { S3Reader, S3ReadError } from '../../functions/adapters/s3-reader.js';
import type { BlobStore } from '../../functions/core/blob-store.js';
import { StorageAccessDeniedError } from '../../functions/core/errors.js';
import { ENV } from '../../functions/core/contract.js';
import { credentialsFromEnvironment } from '../../functions/wiring/config.js';
import { startS3Fixture, type S3Fixture } from './fixture.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

let s3: S3Fixture;
let writer: S3BlobStore;
let work: string;
/** Keys whose escaping differs between the URL, the signature and the XML listing. */
const AWKWARD_KEYS = ['read/odd/a b+c.json', "read/odd/x&y<z>'q'(1)*!.json", 'read/odd/ü-é~.json'];
const LARGE = randomBytes(6 * 1024 * 1024);

beforeAll(async () => {
  s3 = await startS3Fixture();
  writer = new S3BlobStore(s3.client, s3.server.bucket);
  work = await mkdtemp(join(tmpdir(), 'onnx-serverless-reader-'));
  await writer.put('read/manifest.json', text('{"latest":"1"}'));
  await writer.put('read/empty.bin', new Uint8Array(0));
  await writer.put('read/large.bin', LARGE);
  for (const key of AWKWARD_KEYS) await writer.put(key, text(key));
  for (const key of ['read/list/m/2', 'read/list/m/1', 'read/list/m.json', 'read/list/m-1/1', 'read/list/z']) {
    await writer.put(key, text(key));
  }
});

afterAll(async () => {
  await s3.stop();
  await rm(work, { recursive: true, force: true });
});

const adapters: [string, (bucket?: string, listPageSize?: number) => BlobStore][] = [
  [
    'S3BlobStore (SDK)',
    (bucket = s3.server.bucket, listPageSize) => new S3BlobStore(s3.client, bucket, { listPageSize }),
  ],
  [
    'S3Reader (GET-only)',
    (bucket = s3.server.bucket, listPageSize) =>
      new S3Reader({
        bucket,
        endpoint: s3.server.endpoint,
        region: s3.server.region,
        credentials: s3.server.credentials,
        ...(listPageSize === undefined ? {} : { listPageSize }),
      }),
  ],
];

describe.each(adapters)('the read contract: %s', (name, storeOf) => {
  const tag = name.startsWith('S3Reader') ? 'reader' : 'sdk';

  it('reads an object with the etag its write returned, and answers undefined for an absent key', async () => {
    // Prepare
    const store = storeOf();
    const { etag } = await writer.put(`read/${tag}.json`, text('{"v":1}'));

    // Act
    const read = await store.get(`read/${tag}.json`);
    const absent = await store.get('read/absent.json');

    // Assess
    expect(new TextDecoder().decode(read?.body)).toBe('{"v":1}');
    expect(read?.etag).toBe(etag);
    expect(absent).toBeUndefined();
  });

  it('reads keys with spaces, plus signs, XML and URL specials, and non-ASCII characters', async () => {
    // Act
    const store = storeOf();
    const bodies = await Promise.all(AWKWARD_KEYS.map((key) => store.get(key)));

    // Assess
    expect(bodies.map((b) => new TextDecoder().decode(b?.body))).toEqual(AWKWARD_KEYS);
    expect(await store.list('read/odd/')).toEqual(
      [...AWKWARD_KEYS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
  });

  it('reads an empty object and a 6 MB one intact', async () => {
    // Act
    const store = storeOf();
    const empty = await store.get('read/empty.bin');
    const large = await store.get('read/large.bin');

    // Assess
    expect(empty?.body.byteLength).toBe(0);
    expect(Buffer.from(large?.body ?? []).equals(LARGE)).toBe(true);
  });

  it('lists every key under a prefix across pages, in S3 byte order', async () => {
    // Act
    const listed = await storeOf(undefined, 2).list('read/list/');

    // Assess
    expect(listed).toEqual(['read/list/m-1/1', 'read/list/m.json', 'read/list/m/1', 'read/list/m/2', 'read/list/z']);
  });

  it('downloads in parallel ranged parts the same bytes and sha256, an empty object, and undefined for none', async () => {
    // Prepare
    const store = storeOf();
    const options = { partBytes: 512 * 1024, concurrency: 4 };

    // Act
    const large = await store.download('read/large.bin', join(work, `${tag}-large.bin`), options);
    const empty = await store.download('read/empty.bin', join(work, `${tag}-empty.bin`), options);
    const missing = await store.download('read/none.bin', join(work, `${tag}-none.bin`), options);

    // Assess
    expect(large).toMatchObject({ size: LARGE.byteLength, sha256: sha256(LARGE) });
    expect((await readFile(join(work, `${tag}-large.bin`))).equals(LARGE)).toBe(true);
    expect(empty).toMatchObject({ size: 0, sha256: sha256(new Uint8Array(0)) });
    expect(missing).toBeUndefined();
    await expect(stat(join(work, `${tag}-none.bin`))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lets a missing bucket fail loudly instead of answering undefined', async () => {
    // Act
    const reading = storeOf('no-such-bucket').get('any/key');

    // Assess
    await expect(reading).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });
});

describe('S3Reader', () => {
  let server: Server | undefined;
  let requests: { method: string; url: string; authorization: string }[] = [];

  /** A loopback server answering each request with the next of `answers` (the last one repeats). */
  async function readerAnswering(answers: { status: number; body: string }[], maxAttempts = 3): Promise<S3Reader> {
    requests = [];
    server = createServer((request, response) => {
      requests.push({
        method: request.method ?? '',
        url: request.url ?? '',
        authorization: String(request.headers.authorization ?? ''),
      });
      const answer = answers[Math.min(requests.length - 1, answers.length - 1)]!;
      response.writeHead(answer.status, { 'content-type': 'application/xml', etag: '"e"' });
      response.end(answer.body);
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new S3Reader({
      bucket: 'models',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' },
      maxAttempts,
    });
  }
  const s3Error = (code: string): string =>
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;

  afterEach(async () => {
    await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
    server = undefined;
  });

  it('refuses to write or delete, naming the key', async () => {
    // Prepare
    const reader = adapters[1]![1]();

    // Act and assess
    await expect(reader.put('read/x.json', text('{}'))).rejects.toThrow(/only reads; refusing to write "read\/x.json"/);
    await expect(reader.putFile('read/x.onnx', '/dev/null')).rejects.toThrow(/refusing to write "read\/x.onnx"/);
    await expect(reader.delete('read/manifest.json')).rejects.toThrow(/refusing to delete/);
    expect(await reader.get('read/manifest.json')).toBeDefined();
  });

  it('retries a 500 and a 503 SlowDown, then answers what the third attempt got', async () => {
    // Prepare
    const reader = await readerAnswering([
      { status: 500, body: s3Error('InternalError') },
      { status: 503, body: s3Error('SlowDown') },
      { status: 200, body: '{"ok":true}' },
    ]);

    // Act
    const read = await reader.get('models/m/manifest.json');

    // Assess
    expect(new TextDecoder().decode(read?.body)).toBe('{"ok":true}');
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatchObject({ method: 'GET', url: '/models/models/m/manifest.json' });
    expect(requests[0]?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/s3\/aws4_request/);
  });

  it('gives up after its attempts with the server error, named as S3 names it (a 503 for the core)', async () => {
    // Prepare
    const reader = await readerAnswering([{ status: 500, body: s3Error('InternalError') }], 2);

    // Act
    const read = reader.get('models/m/manifest.json');

    // Assess
    await expect(read).rejects.toBeInstanceOf(S3ReadError);
    await expect(read).rejects.toMatchObject({ name: 'InternalError', statusCode: 500, retryable: true });
    expect(requests).toHaveLength(2);
  });

  it('maps AccessDenied to StorageAccessDeniedError at once, without retrying', async () => {
    // Prepare
    const reader = await readerAnswering([{ status: 403, body: s3Error('AccessDenied') }]);

    // Act
    const read = reader.get('models/m/manifest.json');
    const listing = reader.list('models/');

    // Assess
    await expect(read).rejects.toBeInstanceOf(StorageAccessDeniedError);
    await expect(read).rejects.toMatchObject({ cause: { name: 'AccessDenied' } });
    await expect(listing).rejects.toMatchObject({
      name: 'StorageAccessDeniedError',
      operation: expect.stringMatching(/ListObjectsV2/),
    });
    expect(requests).toHaveLength(2);
  });

  it('retries a refused connection and fails with a retryable error', async () => {
    // Prepare: a port nobody listens on.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const reader = new S3Reader({
      bucket: 'models',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
      maxAttempts: 2,
    });

    // Act
    const read = reader.get('models/m/manifest.json');

    // Assess
    await expect(read).rejects.toMatchObject({ name: 'ECONNREFUSED', retryable: true });
  });
});

describe('the role credentials the reader signs with', () => {
  it('come from a container credential endpoint when no key pair is set, and are fetched again before expiry', async () => {
    // Prepare: a loopback endpoint serving the embedded server's key pair as a container credential endpoint does
    // (with the authorization token it must check), first with credentials that expire in 2 minutes.
    const served: string[] = [];
    let expiresInMs = 2 * 60_000;
    const endpoint = createServer((request, response) => {
      served.push(String(request.headers['authorization']));
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          AccessKeyId: s3.server.credentials.accessKeyId,
          SecretAccessKey: s3.server.credentials.secretAccessKey,
          Token: 'session-token',
          Expiration: new Date(Date.now() + expiresInMs).toISOString(),
        }),
      );
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const { port } = endpoint.address() as AddressInfo;
    const env = {
      [ENV.containerCredentialsFullUri]: `http://127.0.0.1:${port}/credentials`,
      [ENV.containerAuthorizationToken]: 'container-token',
    };
    try {
      const credentials = credentialsFromEnvironment(env);
      const reader = new S3Reader({
        bucket: s3.server.bucket,
        endpoint: s3.server.endpoint,
        region: s3.server.region,
        credentials,
      });

      // Act: two reads with credentials close to expiry, then two with fresh ones.
      const first = await reader.get('read/manifest.json');
      await reader.get('read/manifest.json');
      const fetchedNearExpiry = served.length;
      expiresInMs = 60 * 60_000;
      await reader.get('read/manifest.json');
      await reader.get('read/manifest.json');

      // Assess: each near-expiry read fetched anew, the fresh credentials were kept; every fetch carried the token.
      expect(new TextDecoder().decode(first?.body)).toBe('{"latest":"1"}');
      expect(fetchedNearExpiry).toBe(2);
      expect(served).toHaveLength(3);
      expect(new Set(served)).toEqual(new Set(['container-token']));
    } finally {
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it("send the token file's token, and refuse an answer without credentials, naming the endpoint", async () => {
    // Prepare: an endpoint that answers 403 with no credentials, and the token in a file (as Lambda may give it).
    const tokens: string[] = [];
    const endpoint = createServer((request, response) => {
      tokens.push(String(request.headers['authorization']));
      response.statusCode = 403;
      response.end('{"message":"no"}');
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const { port } = endpoint.address() as AddressInfo;
    const tokenFile = join(work, 'container-token');
    await writeFile(tokenFile, 'file-token\n');
    try {
      // Act
      const credentials = credentialsFromEnvironment({
        [ENV.containerCredentialsFullUri]: `http://127.0.0.1:${port}/creds`,
        [ENV.containerAuthorizationTokenFile]: tokenFile,
      });
      const fetched = typeof credentials === 'function' ? credentials() : Promise.resolve(credentials);

      // Assess
      await expect(fetched).rejects.toThrow(`http://127.0.0.1:${port}/creds answered 403 without credentials`);
      expect(tokens).toEqual(['file-token']);
    } finally {
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it('are refused at start with what to set when there is neither a key pair nor an endpoint', () => {
    expect(() => credentialsFromEnvironment({})).toThrow(/AWS_ACCESS_KEY_ID.*AWS_CONTAINER_CREDENTIALS_FULL_URI/);
  });
});
