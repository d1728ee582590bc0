/**
 * The embedded S3-compatible server behind `npm start` and the tests: the local stand-in for the model bucket, a
 * `node:http` server speaking the subset of the S3 REST protocol that the product, the AWS SDKs and `aws s3` use
 * (operations in `s3-operations.ts`, storage in `s3-filesystem-store.ts`), with what the product relies on:
 *
 * - conditional writes: `If-Match` / `If-None-Match` on PutObject, CopyObject and CompleteMultipartUpload answer
 *   412 PreconditionFailed (and `If-Match` on a missing key 404 NoSuchKey) as S3 does; each key's check and write
 *   run under one lock, so of two racing conditional writers exactly one wins;
 * - `aws-chunked` request bodies (what current SDKs and CLIs send for streamed uploads) are decoded before storing;
 * - atomic, consistent, byte-ordered storage (see `s3-filesystem-store.ts`);
 * - object-created notifications in the exact shape S3 sends to Lambda (key URL-encoded, the right `eventName` for
 *   multipart and copy, increasing sequencers), delivered after the write and never able to crash the server;
 * - authentication and authorization as S3 does them: every request must carry a valid SigV4 signature (header or
 *   presigned query; chunk signatures of streamed bodies too) made with the owner's printed key pair (full access)
 *   or a function's own pair, whose requests are evaluated against that function's deployed IAM policy; denials
 *   are S3's 403 AccessDenied and are logged with action, resource and role. Browser requests are refused.
 *
 * Addressing is path-style only (`http://127.0.0.1:9000/<bucket>/<key>`), which is what SDKs and the AWS CLI use
 * for an endpoint given as an IP address.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream';
import type { Readable, Transform } from 'node:stream';
import type { S3Event } from 'aws-lambda';
import { AccessControl, OWNER_CREDENTIALS, describeDenial, iamRequestsOf, isBrowserRequest } from './s3-access.js';
import type { AccessDenial, Credentials, RolePolicy } from './s3-access.js';
import { AwsChunkedDecoder, isAwsChunked, stripAwsChunkedHeaders } from './s3-aws-chunked.js';
import { S3Error } from './s3-error.js';
import { Sequencer, objectCreatedEvent } from './s3-event.js';
import { ConsistentFilesystemStore } from './s3-filesystem-store.js';
import { KeyedMutex } from './s3-keyed-mutex.js';
import { checkBucketName, checkKey, isValidBucketName, parseCopySource } from './s3-names.js';
import { send, serveS3Call, unquote } from './s3-operations.js';
import type { S3Backend } from './s3-operations.js';
import { PayloadSha256Check, SignatureError, verifySigV4 } from './s3-sigv4.js';
import type { VerifiedRequest } from './s3-sigv4.js';
import { xmlDocument } from './s3-xml.js';
import type { XmlChild } from './s3-xml.js';

/** Defaults of {@link startEmbeddedS3}, as constants so the README can quote them. */
export const EMBEDDED_S3_DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  bucket: 'models',
  /** The region the server reports (bucket location, events); clients may sign for any region. */
  region: 'us-east-1',
  /** S3's smallest part but the last in CompleteMultipartUpload (5 MiB); see {@link EmbeddedS3Options.minPartBytes}. */
  minPartBytes: 5 * 1024 * 1024,
} as const;

/** Which created objects trigger `onObjectCreated`, as an S3 notification configuration's key filter. */
export interface ObjectCreatedFilter {
  /** e.g. `uploads/` */
  readonly prefix?: string;
  /** e.g. `.onnx` */
  readonly suffix?: string;
}

/** Options of {@link startEmbeddedS3}. */
export interface EmbeddedS3Options {
  /**
   * TCP port; 0 picks a free one (tests).
   * @default 9000
   */
  readonly port?: number;
  /**
   * Interface to listen on. Keep the loopback default: the owner's key pair is fixed and printed, not a secret.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /** Folder holding the objects (created if absent); data persists across restarts. */
  readonly dataDir: string;
  /**
   * The bucket, created if absent.
   * @default 'models'
   */
  readonly bucket?: string;
  /**
   * Receives one S3 notification per created object, after the write is complete, like a Lambda subscribed to
   * `s3:ObjectCreated:*`. Deliveries run concurrently (as Lambda invocations do); a rejection or throw is passed to
   * `onEventError` and never reaches the client or the server.
   */
  readonly onObjectCreated?: (event: S3Event) => void | Promise<void>;
  /**
   * Only objects whose keys match this filter are notified.
   * @default every object
   */
  readonly eventFilter?: ObjectCreatedFilter;
  /**
   * Where a failed `onObjectCreated` is reported.
   * @default a line on stderr naming the key and the error
   */
  readonly onEventError?: (error: unknown, event: S3Event) => void;
  /**
   * No request log and no server-side error log.
   * @default false
   */
  readonly silent?: boolean;
  /**
   * The functions' roles: each gets its own key pair ({@link EmbeddedS3.credentialsFor}), and every request signed
   * with it is evaluated against its statements. The owner's pair always has full access.
   * @default no roles
   */
  readonly roles?: readonly RolePolicy[];
  /**
   * Where a request refused by a role's policy is reported (the client gets 403 AccessDenied either way).
   * @default a line on stderr naming the role, the action and the resource
   */
  readonly onAccessDenied?: (denial: AccessDenial) => void;
  /**
   * The smallest size of every part but the last that CompleteMultipartUpload accepts (S3's 400 EntityTooSmall
   * below it). Lower it in tests and benches that upload small parts; S3 itself does not.
   * @default 5 MiB, as S3
   */
  readonly minPartBytes?: number;
}

/** A running embedded S3 server. */
export interface EmbeddedS3 {
  /** e.g. `http://127.0.0.1:9000`; use with path-style addressing. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The owner's fixed key pair (`S3RVER` / `S3RVER`); not a secret, the server only listens on loopback. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly region: string;
  /** The key pair of a role given in {@link EmbeddedS3Options.roles}; throws for an unknown role. */
  credentialsFor(role: string): Credentials;
  /** Adds a role after the start (a model uploaded while running gets its infer role); returns its key pair. */
  addRole(policy: RolePolicy): Credentials;
  /** Waits for pending notifications to be handled, then stops the server. */
  close(): Promise<void>;
}

/**
 * Starts the embedded S3 server and creates its bucket.
 *
 * @example
 * ```ts
 * const s3 = await startEmbeddedS3({ dataDir: '.data', onObjectCreated: (event) => register(event) });
 * const client = createS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
 * ```
 */
export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  const host = options.host ?? EMBEDDED_S3_DEFAULTS.host;
  const port = options.port ?? EMBEDDED_S3_DEFAULTS.port;
  const bucket = options.bucket ?? EMBEDDED_S3_DEFAULTS.bucket;
  const region = EMBEDDED_S3_DEFAULTS.region;
  const silent = options.silent ?? false;
  const dataDir = resolve(options.dataDir);
  if (!isValidBucketName(bucket)) {
    throw new Error(`"${bucket}" is not an S3 bucket name (3 to 63 characters of a-z, 0-9, "." and "-")`);
  }

  const locks = new KeyedMutex();
  const store = new ConsistentFilesystemStore(dataDir, locks);
  await mkdir(dataDir, { recursive: true });
  // Every bucket folder, so that one written in an earlier layout is migrated before it is served.
  for (const existing of await store.listBuckets()) await store.putBucket(existing.name);
  await store.putBucket(bucket);

  const access = new AccessControl(OWNER_CREDENTIALS);
  for (const policy of options.roles ?? []) access.addRole(policy);
  const onAccessDenied =
    options.onAccessDenied ?? ((denial: AccessDenial) => console.error(`embedded S3: ${describeDenial(denial)}`));

  const deliveries = new EventDelivery(options, region);
  const sequencer = new Sequencer();
  const backend: S3Backend = {
    store,
    locks,
    region,
    minPartBytes: options.minPartBytes ?? EMBEDDED_S3_DEFAULTS.minPartBytes,
    created: (eventName, createdIn, object, sourceIp) =>
      deliveries.notify({
        eventName,
        region,
        bucket: createdIn,
        key: object.key,
        size: object.size,
        eTag: unquote(object.etag),
        sequencer: sequencer.next(),
        sourceIp,
      }),
  };
  const server = createServer((request, response) => {
    serve(request, response, backend, access, onAccessDenied, silent).catch((error: unknown) => {
      // serve() answers every failure itself; this is a failure to answer, which only the socket can tell.
      if (!silent) console.error(`embedded S3: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
      response.destroy();
    });
  });
  // Longer than the SDK's idle sockets live, so the server never closes a connection the client is about to reuse.
  server.keepAliveTimeout = 65_000;
  const address = await new Promise<AddressInfo>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(port, host, () => {
      server.off('error', rejectListen);
      resolveListen(server.address() as AddressInfo);
    });
  });
  const endpointHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    endpoint: `http://${endpointHost}:${address.port}`,
    bucket,
    credentials: OWNER_CREDENTIALS,
    region,
    credentialsFor: (role) => access.credentialsFor(role),
    addRole: (policy) => access.addRole(policy),
    close: async () => {
      // Notifications first: a handler still running may read and write objects through this server.
      await deliveries.drain();
      const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      // Idle keep-alive sockets and requests still in flight: close() alone would wait for their timeouts.
      server.closeAllConnections();
      await closed;
    },
  };
}

/** One request: names checked, signature and policy checked, operation served, any failure answered as S3 does. */
async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  backend: S3Backend,
  access: AccessControl,
  onAccessDenied: (denial: AccessDenial) => void,
  silent: boolean,
): Promise<void> {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const method = request.method ?? 'GET';
  if (!silent) {
    response.on('finish', () => console.log(`embedded S3: ${method} ${request.url} ${response.statusCode}`));
  }
  try {
    const target = targetOf(request.url ?? '/');
    checkNames(target, request.headers['x-amz-copy-source']);
    const verified = await authorize(request, target, backend, access, onAccessDenied);
    if (target.bucket === undefined) {
      if (method !== 'GET')
        throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
      const buckets = await backend.store.listBuckets();
      send({ response, requestId, method }, 200, listBucketsXml(buckets));
      return;
    }
    await serveS3Call(
      {
        method,
        bucket: target.bucket,
        key: target.key,
        query: target.query,
        headers: request.headers,
        // Lazily: an operation refused before it reads the body leaves the request to Node, which discards it and
        // keeps the connection usable; a decoder started early would hold the unread body.
        get body() {
          return bodyOf(request, verified);
        },
        response,
        requestId,
        sourceIp: request.socket.remoteAddress ?? '',
      },
      backend,
    );
  } catch (error) {
    answerError(error, request, response, requestId, silent);
  }
}

/** What a request addresses, path-style: `/<bucket>/<key>?<query>`, decoded. */
interface Target {
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly query: Readonly<Record<string, string>>;
}

function targetOf(url: string): Target {
  const questionMark = url.indexOf('?');
  const path = questionMark === -1 ? url : url.slice(0, questionMark);
  const query: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of new URLSearchParams(questionMark === -1 ? '' : url.slice(questionMark + 1))) {
    query[name] ??= value;
  }
  const match = /^\/([^/]*)(?:\/(.*))?$/s.exec(path);
  try {
    const bucket = match?.[1] === undefined || match[1] === '' ? undefined : decodeURIComponent(match[1]);
    const key = match?.[2] === undefined || match[2] === '' ? undefined : decodeURIComponent(match[2]);
    return { bucket, key, query };
  } catch {
    throw new S3Error('InvalidURI', `Couldn't parse the specified URI: ${path.slice(0, 200)}`);
  }
}

/**
 * The body as the operations read it: checked against its signed SHA-256 (of the bytes as sent) while it streams,
 * and the decoded bytes of a streamed `aws-chunked` upload.
 */
function bodyOf(request: IncomingMessage, verified: VerifiedRequest): Readable {
  const stages: Transform[] = [];
  if (verified.payloadSha256 !== undefined) stages.push(new PayloadSha256Check(verified.payloadSha256));
  if (isAwsChunked(request.headers)) {
    stages.push(new AwsChunkedDecoder(stripAwsChunkedHeaders(request.headers), verified.chunkSigner));
  }
  const last = stages.at(-1);
  if (last === undefined) return request;
  // pipeline: an aborted request fails the stages, which fail the store's write, which removes its temp file.
  pipeline([request, ...stages], () => undefined);
  return last;
}

/** Answers a failure: S3's XML error for an {@link S3Error}, a logged 500 InternalError for anything else. */
function answerError(
  error: unknown,
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
  silent: boolean,
): void {
  let s3Error: S3Error;
  if (error instanceof S3Error) {
    s3Error = error;
  } else if (error instanceof SignatureError) {
    s3Error = new S3Error(error.code, error.message);
  } else {
    if (!silent) console.error(`embedded S3: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    s3Error = new S3Error('InternalError', 'We encountered an internal error. Please try again.');
  }
  if (response.headersSent) {
    // Failed mid-body (a GET whose file became unreadable): only a cut connection tells the client.
    response.destroy();
    return;
  }
  for (const name of response.getHeaderNames()) response.removeHeader(name);
  send({ response, requestId, method: request.method ?? 'GET' }, s3Error.status, s3Error.toXml(requestId));
}

function listBucketsXml(buckets: readonly { name: string; created: Date }[]): string {
  return xmlDocument('ListAllMyBucketsResult', [
    [
      'Owner',
      [
        ['ID', LOCAL_OWNER_ID],
        ['DisplayName', 'local'],
      ],
    ],
    [
      'Buckets',
      buckets.map(
        ({ name, created }): XmlChild => [
          'Bucket',
          [
            ['Name', name],
            ['CreationDate', created.toISOString()],
          ],
        ],
      ),
    ],
  ]);
}

/** The canonical user id of the bucket owner (the printed key pair), as listings show it. */
const LOCAL_OWNER_ID = '0'.repeat(64);

/**
 * Checks the names a request carries, wherever they come from (the path, `x-amz-copy-source`; DeleteObjects checks
 * the keys of its body itself), with S3's errors (see `s3-names.ts`).
 */
function checkNames(target: Target, copySource: string | string[] | undefined): void {
  if (target.bucket !== undefined) checkBucketName(target.bucket);
  if (target.key !== undefined) checkKey(target.key);
  if (typeof copySource === 'string') parseCopySource(copySource);
}

/**
 * Authenticates the request (SigV4), then authorizes it against the signer's policy. Returns what the signature
 * covers of the body (its SHA-256, or the chunk signer of a streamed body). S3's order: a bad signature is answered before any permission is looked at.
 */
async function authorize(
  request: IncomingMessage,
  target: Target,
  backend: S3Backend,
  access: AccessControl,
  onAccessDenied: (denial: AccessDenial) => void,
): Promise<VerifiedRequest> {
  const method = request.method ?? 'GET';
  if (isBrowserRequest(method, request.headers)) {
    throw new S3Error(
      'AccessDenied',
      'Requests from web browsers (Origin, Sec-Fetch-*, CORS preflights, form posts) are refused.',
    );
  }
  const verified = verifySigV4(request, (id) => access.secretFor(id));
  const { bucket, key } = target;
  if (bucket === undefined) {
    // The service root (ListBuckets): the owner's only.
    const denial = access.check(verified.accessKeyId, [{ action: 's3:ListAllMyBuckets', resource: '*' }]);
    if (denial !== undefined) deny(denial, onAccessDenied);
    return verified;
  }
  const requests = iamRequestsOf({ method, bucket, key, query: target.query, headers: request.headers });
  const denial = access.check(verified.accessKeyId, requests);
  if (denial !== undefined) deny(denial, onAccessDenied);
  if (key !== undefined && (method === 'GET' || method === 'HEAD') && requests[0]?.action === 's3:GetObject') {
    // S3 answers a missing key with 404 only to callers that may list the bucket (checked without a prefix), and
    // with 403 to the others, so as not to reveal which keys exist.
    const listing = access.check(verified.accessKeyId, [
      { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` },
    ]);
    if (listing !== undefined && (await backend.store.getMetadata(bucket, key)) === undefined) {
      deny(listing, onAccessDenied);
    }
  }
  return verified;
}

function deny(denial: AccessDenial, onAccessDenied: (denial: AccessDenial) => void): never {
  try {
    onAccessDenied(denial);
  } catch {
    // A failing reporter must not turn a 403 into a 500.
  }
  throw new S3Error('AccessDenied', 'Access Denied');
}

/** Delivers notifications off the request path and keeps track of them so that `close()` can wait. */
class EventDelivery {
  private readonly pending = new Set<Promise<void>>();

  public constructor(
    private readonly options: EmbeddedS3Options,
    public readonly region: string,
  ) {}

  public notify(created: Parameters<typeof objectCreatedEvent>[0]): void {
    const { onObjectCreated, eventFilter } = this.options;
    if (onObjectCreated === undefined) {
      return;
    }
    if (!created.key.startsWith(eventFilter?.prefix ?? '') || !created.key.endsWith(eventFilter?.suffix ?? '')) {
      return;
    }
    const event = objectCreatedEvent(created);
    // setImmediate: the handler starts after this request's response is on its way, as with S3.
    const delivery = new Promise<void>((resolveDelivery) => setImmediate(resolveDelivery))
      .then(() => onObjectCreated(event))
      .catch((error: unknown) => this.report(error, event))
      .finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  /** Resolves once no delivery is pending, including those started by handlers of earlier ones. */
  public async drain(): Promise<void> {
    while (this.pending.size > 0) {
      await Promise.allSettled([...this.pending]);
    }
  }

  private report(error: unknown, event: S3Event): void {
    try {
      if (this.options.onEventError !== undefined) {
        this.options.onEventError(error, event);
        return;
      }
      const key = event.Records[0]?.s3.object.key ?? '';
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`embedded S3: the object-created handler failed for "${key}": ${message}`);
    } catch {
      // A failing error reporter must not turn into an unhandled rejection that stops the process.
    }
  }
}
