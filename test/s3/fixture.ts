/**
 * A real embedded S3 server on an ephemeral loopback port, in a fresh temporary folder, with an SDK client on it.
 */
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Event } from 'aws-lambda';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { OWNER_CREDENTIALS } from '../../functions/local/s3-access.js';
import { startEmbeddedS3 } from '../../functions/local/s3-server.js';
import type { EmbeddedS3, EmbeddedS3Options } from '../../functions/local/s3-server.js';

/** A running server, its client, and the events it delivered. */
export interface S3Fixture {
  readonly server: EmbeddedS3;
  readonly client: S3Client;
  readonly dataDir: string;
  readonly events: S3Event[];
  /** Resolves with the first `count` events delivered (counting from the server's start). */
  waitForEvents(count: number): Promise<S3Event[]>;
  stop(): Promise<void>;
}

/** Starts a server in a new temporary folder; `options` may override everything but the port and folder. */
export async function startS3Fixture(options: Partial<EmbeddedS3Options> = {}): Promise<S3Fixture> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-')));
  const events: S3Event[] = [];
  const waiters: { count: number; resolve: (events: S3Event[]) => void }[] = [];
  const server = await startEmbeddedS3({
    silent: true,
    ...options,
    port: 0,
    dataDir,
    onObjectCreated: async (event) => {
      events.push(event);
      for (const waiter of waiters.filter((candidate) => events.length >= candidate.count)) {
        waiter.resolve(events.slice(0, waiter.count));
      }
      await options.onObjectCreated?.(event);
    },
  });
  const client = createS3Client({ endpoint: server.endpoint, credentials: server.credentials, region: server.region });
  return {
    server,
    client,
    dataDir,
    events,
    waitForEvents: (count) =>
      events.length >= count
        ? Promise.resolve(events.slice(0, count))
        : new Promise((resolve) => waiters.push({ count, resolve })),
    stop: async () => {
      client.destroy();
      await server.close();
      if (options.dataDir === undefined) {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** SHA-256 in the shape `@smithy/signature-v4` expects (the SDK's own signer, an implementation independent of ours). */
export class NodeSha256 {
  private readonly hash;
  public constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(secret as ArrayBuffer));
  }
  public update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer));
  }
  public digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

/**
 * The headers that sign a raw request to the embedded server with `credentials` (SigV4, by the SDK's own signer),
 * for tests that must send what no SDK command sends (malformed bodies, cut-off uploads). The payload is
 * `UNSIGNED-PAYLOAD` unless `headers` sets `x-amz-content-sha256`.
 */
export async function signRaw(
  endpoint: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  credentials: { accessKeyId: string; secretAccessKey: string },
  region = 'us-east-1',
): Promise<Record<string, string>> {
  const url = new URL(endpoint);
  const signer = new SignatureV4({
    service: 's3',
    region,
    credentials,
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const [pathname, search = ''] = path.split('?');
  const query = Object.fromEntries(new URLSearchParams(search));
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: pathname ?? '/',
    query,
    headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers },
  });
  return signed.headers;
}

/** Sends a raw HTTP request to the embedded server, signed with the owner's key pair, and returns status and body. */
export async function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  credentials: { accessKeyId: string; secretAccessKey: string } = OWNER_CREDENTIALS,
): Promise<{ status: number; body: string }> {
  const { origin, pathname, search } = new URL(url);
  const signed = await signRaw(origin, method, `${pathname}${search}`, headers, credentials);
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method, headers: signed }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
