/**
 * The embedded S3-compatible server behind `npm start` and the tests: the local stand-in for the model bucket.
 *
 * It is s3rver (a Koa app speaking the S3 REST protocol, storing objects as files) with what this project relies on
 * and s3rver 3.7 lacks, added around it rather than patched into it:
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
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream';
import type { S3Event } from 'aws-lambda';
import { AwsChunkedDecoder, isAwsChunked, stripAwsChunkedHeaders } from './s3-aws-chunked.js';
import { Sequencer, objectCreatedEvent } from './s3-event.js';
import type { ObjectCreatedEventName } from './s3-event.js';
import {
  ConsistentFilesystemStore,
  LAYOUT_MARKER,
  MAX_KEY_SEGMENT_BYTES,
  listingPages,
  objectLockKey,
} from './s3-filesystem-store.js';
import type { ListingPage } from './s3-filesystem-store.js';
import { KeyedMutex } from './s3-keyed-mutex.js';
import { AccessControl, describeDenial, iamRequestsOf, isBrowserRequest } from './s3-access.js';
import type { AccessDenial, Credentials, RolePolicy } from './s3-access.js';
import { SignatureError, verifySigV4 } from './s3-sigv4.js';
import type { ChunkSigner } from './s3-sigv4.js';
import { S3Error, S3RVER_CREDENTIALS, S3rver, addS3rverKeyPair } from './s3-vendor.js';
import type { KoaContext, KoaMiddleware, S3rverFilesystemStore } from './s3-vendor.js';

/** Defaults of {@link startEmbeddedS3}, as constants so the README can quote them. */
export const EMBEDDED_S3_DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  bucket: 'models',
  /** s3rver answers continuation tokens for this region only; clients may sign for any region. */
  region: 'us-east-1',
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
}

/** A running embedded S3 server. */
export interface EmbeddedS3 {
  /** e.g. `http://127.0.0.1:9000`; use with path-style addressing. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The fixed local key pair (`S3RVER` / `S3RVER`); not a secret, the server only listens on loopback. */
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

  const locks = new KeyedMutex();
  const store = new ConsistentFilesystemStore(dataDir, locks);
  await mkdir(dataDir, { recursive: true });
  await store.putBucket(bucket);

  const app = new S3rver({ address: host, port, silent, directory: dataDir, configureBuckets: [] });
  app.store = app.context.store = store;

  const access = new AccessControl(S3RVER_CREDENTIALS);
  const revocations: (() => void)[] = [];
  const addRole = (policy: RolePolicy): Credentials => {
    const credentials = access.addRole(policy);
    revocations.push(addS3rverKeyPair(credentials.accessKeyId, credentials.secretAccessKey));
    return credentials;
  };
  for (const policy of options.roles ?? []) addRole(policy);
  const onAccessDenied =
    options.onAccessDenied ?? ((denial: AccessDenial) => console.error(`embedded S3: ${describeDenial(denial)}`));

  const deliveries = new EventDelivery(options, region);
  // Before s3rver's router (the last middleware), after its logging, XML rendering and virtual-host rewriting.
  app.middleware.splice(app.middleware.length - 1, 0, s3Extensions(store, locks, deliveries, access, onAccessDenied));
  app.on('error', (error) => {
    // Koa reports every failed request here; 4xx answers (NoSuchKey, PreconditionFailed) are normal traffic.
    if (!silent && (error.status ?? 500) >= 500) {
      console.error(`embedded S3: ${error.stack ?? error.message}`);
    }
  });

  const address = await app.run();
  // Longer than the SDK's idle sockets live, so the server never closes a connection the client is about to reuse.
  if (app.httpServer !== undefined) {
    app.httpServer.keepAliveTimeout = 65_000;
  }
  const endpointHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    endpoint: `http://${endpointHost}:${address.port}`,
    bucket,
    credentials: S3RVER_CREDENTIALS,
    region,
    credentialsFor: (role) => access.credentialsFor(role),
    addRole,
    close: async () => {
      // Notifications first: a handler still running may read and write objects through this server.
      await deliveries.drain();
      await app.close();
      for (const revoke of revocations) revoke();
    },
  };
}

/** The S3 operations the middleware treats specially, from method, query and headers. */
type Operation =
  | { readonly kind: 'create'; readonly eventName: ObjectCreatedEventName }
  | { readonly kind: 'upload-part' }
  | { readonly kind: 'delete' }
  | { readonly kind: 'other' };

function classify(ctx: KoaContext): Operation {
  // Sub-resources (`?uploadId`, `?tagging`...) select the operation; the SDK's `x-id` and presigned `X-Amz-*`
  // parameters do not.
  const subresources = Object.keys(ctx.query).filter(
    (name) => name !== 'x-id' && !name.toLowerCase().startsWith('x-amz-'),
  );
  const has = (name: string): boolean => subresources.includes(name);
  switch (ctx.method) {
    case 'PUT':
      if (subresources.length === 0) {
        return 'x-amz-copy-source' in ctx.headers
          ? { kind: 'create', eventName: 'ObjectCreated:Copy' }
          : { kind: 'create', eventName: 'ObjectCreated:Put' };
      }
      return has('uploadId') && has('partNumber') ? { kind: 'upload-part' } : { kind: 'other' };
    case 'POST':
      return subresources.length === 1 && has('uploadId')
        ? { kind: 'create', eventName: 'ObjectCreated:CompleteMultipartUpload' }
        : { kind: 'other' };
    case 'DELETE':
      return subresources.length === 0 ? { kind: 'delete' } : { kind: 'other' };
    default:
      return { kind: 'other' };
  }
}

/** Bucket and key of an object request (`/<bucket>/<key>`), decoded as s3rver's router decodes them. */
function objectTarget(ctx: KoaContext): { bucket: string; key: string } | undefined {
  const match = /^\/([^/]+)\/(.+)$/s.exec(ctx.path);
  if (match === null) {
    return undefined;
  }
  try {
    return { bucket: decodeURIComponent(match[1] ?? ''), key: decodeURIComponent(match[2] ?? '') };
  } catch {
    // Malformed escapes: let s3rver's router answer as it does.
    return undefined;
  }
}

/**
 * s3rver maps keys to files with `path.join`, so a `.` or `..` segment (or a backslash, a separator on Windows)
 * would reach outside the data folder. S3 allows such keys; this local server refuses them, for the object key, the
 * bucket and a copy source alike.
 */
export function escapesDataFolder(bucketOrKey: string): boolean {
  return (
    bucketOrKey.split(/[/\\]/).some((segment) => segment === '.' || segment === '..') || bucketOrKey.includes('\0')
  );
}

function refuseEscapes(ctx: KoaContext): void {
  const segments = /^\/([^/]*)(?:\/(.*))?$/s.exec(ctx.path);
  let names: string[];
  try {
    names = [decodeURIComponent(segments?.[1] ?? ''), decodeURIComponent(segments?.[2] ?? '')];
    const copySource = ctx.headers['x-amz-copy-source'];
    if (typeof copySource === 'string') names.push(decodeURIComponent(copySource.split('?')[0] ?? ''));
  } catch {
    return; // malformed escapes: s3rver's router refuses them itself
  }
  if (names.some(escapesDataFolder)) {
    throw new S3Error(
      'InvalidArgument',
      'This local server refuses bucket names and keys with "." or ".." segments',
      {},
    );
  }
  // Keys are files here: a segment must fit a file name, and must not look like the server's own file layout
  // (a key `a._S3rver_object/b` would turn the object file of `a` into a folder).
  const parts = names.flatMap((name) => name.split('/'));
  if (parts.some((segment) => segment.includes(LAYOUT_MARKER))) {
    throw new S3Error(
      'InvalidArgument',
      `This local server reserves "${LAYOUT_MARKER}" in keys for its own files; rename the key`,
      {},
    );
  }
  const tooLong = parts.find((segment) => Buffer.byteLength(segment, 'utf8') > MAX_KEY_SEGMENT_BYTES);
  if (tooLong !== undefined) {
    throw new S3Error(
      'KeyTooLongError',
      `This local server stores keys as files: each "/"-separated part of a key may have at most ${MAX_KEY_SEGMENT_BYTES} bytes (one has ${Buffer.byteLength(tooLong, 'utf8')}); S3 itself allows 1,024 bytes per key`,
      {},
    );
  }
}

/**
 * Authenticates the request (SigV4), then authorizes it against the signer's policy. Returns the chunk signer of a
 * streamed signed body. S3's order: a bad signature is answered before any permission is looked at.
 */
async function authorize(
  ctx: KoaContext,
  store: S3rverFilesystemStore,
  access: AccessControl,
  onAccessDenied: (denial: AccessDenial) => void,
): Promise<ChunkSigner | undefined> {
  if (isBrowserRequest(ctx.method, ctx.headers)) {
    throw new S3Error(
      'AccessDenied',
      'Requests from web browsers (Origin, Sec-Fetch-*, CORS preflights, form posts) are refused.',
    );
  }
  let verified;
  try {
    verified = verifySigV4(
      { method: ctx.method, url: ctx.originalUrl, rawHeaders: 'rawHeaders' in ctx.req ? ctx.req.rawHeaders : [] },
      (id) => access.secretFor(id),
    );
  } catch (error) {
    if (error instanceof SignatureError) throw new S3Error(error.code, error.message);
    throw error;
  }
  const path = /^\/([^/]+)(?:\/(.*))?$/s.exec(ctx.path);
  if (path === null) {
    // The service root (ListBuckets): the owner's only.
    const denial = access.check(verified.accessKeyId, [{ action: 's3:ListAllMyBuckets', resource: '*' }]);
    if (denial !== undefined) deny(denial, onAccessDenied);
    return verified.chunkSigner;
  }
  const bucket = decodeURIComponent(path[1] ?? '');
  const key = path[2] === undefined || path[2] === '' ? undefined : decodeURIComponent(path[2]);
  const requests = iamRequestsOf({ method: ctx.method, bucket, key, query: ctx.query, headers: ctx.headers });
  const denial = access.check(verified.accessKeyId, requests);
  if (denial !== undefined) deny(denial, onAccessDenied);
  if (key !== undefined && (ctx.method === 'GET' || ctx.method === 'HEAD') && requests[0]?.action === 's3:GetObject') {
    // S3 answers a missing key with 404 only to callers that may list the bucket (checked without a prefix), and
    // with 403 to the others, so as not to reveal which keys exist.
    const listing = access.check(verified.accessKeyId, [
      { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` },
    ]);
    if (listing !== undefined && (await currentEtag(store, bucket, key)) === undefined) deny(listing, onAccessDenied);
  }
  return verified.chunkSigner;
}

function deny(denial: AccessDenial, onAccessDenied: (denial: AccessDenial) => void): never {
  try {
    onAccessDenied(denial);
  } catch {
    // A failing reporter must not turn a 403 into a 500.
  }
  throw new S3Error('AccessDenied', 'Access Denied');
}

function s3Extensions(
  store: S3rverFilesystemStore,
  locks: KeyedMutex,
  deliveries: EventDelivery,
  access: AccessControl,
  onAccessDenied: (denial: AccessDenial) => void,
): KoaMiddleware {
  const sequencer = new Sequencer();
  return async (ctx, next) => {
    refuseEscapes(ctx);
    const chunkSigner = await authorize(ctx, store, access, onAccessDenied);
    if (isListObjectsV2(ctx)) {
      await listObjectsV2(ctx, next);
      return;
    }
    const target = objectTarget(ctx);
    const operation = classify(ctx);
    if (target === undefined || operation.kind === 'other') {
      await next();
      return;
    }
    if ((operation.kind === 'upload-part' || operation.kind === 'create') && isAwsChunked(ctx.headers)) {
      decodeAwsChunkedBody(ctx, chunkSigner);
    }
    if (operation.kind === 'upload-part') {
      await next();
      return;
    }
    await locks.run(objectLockKey(target.bucket, target.key), async () => {
      if (operation.kind === 'create') {
        checkWriteConditions(ctx.headers, await currentEtag(store, target.bucket, target.key));
      }
      await next();
      if (operation.kind === 'create' && ctx.status >= 200 && ctx.status < 300) {
        // Read back under the lock: size and etag of exactly the object this request wrote.
        const metadata = await store.getMetadata(target.bucket, target.key);
        deliveries.notify({
          eventName: operation.eventName,
          region: deliveries.region,
          bucket: target.bucket,
          key: target.key,
          size: Number(metadata['content-length']),
          eTag: unquote(String(metadata['etag'])),
          sequencer: sequencer.next(),
          sourceIp: ctx.ip,
        });
      }
    });
  };
}

function isListObjectsV2(ctx: KoaContext): boolean {
  return ctx.method === 'GET' && /^\/[^/]+\/?$/.test(ctx.path) && ctx.query['list-type'] === '2';
}

/**
 * Serves ListObjectsV2 through s3rver's controller with this server's own continuation tokens (s3rver's need DES,
 * which Node 17+ lacks): a token is turned into `start-after` on the way in, and a truncated page gets a token for
 * the key it ended after on the way out.
 */
async function listObjectsV2(ctx: KoaContext, next: () => Promise<void>): Promise<void> {
  const token = ctx.query['continuation-token'];
  if (typeof token === 'string' && token !== '') {
    const { 'continuation-token': _token, ...query } = ctx.query;
    ctx.query = { ...query, 'start-after': decodeContinuationToken(token) };
  }
  const page: ListingPage = {};
  await listingPages.run(page, next);
  const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult;
  if (result === undefined) {
    return;
  }
  if (typeof token === 'string' && token !== '') {
    result['StartAfter'] = undefined;
    result['ContinuationToken'] = token;
  }
  if (page.resumeAfter !== undefined) {
    result['IsTruncated'] = true;
    result['NextContinuationToken'] = encodeContinuationToken(page.resumeAfter);
  }
}

const CONTINUATION_TOKEN_PREFIX = 'embedded-s3:';

function encodeContinuationToken(resumeAfter: string): string {
  return Buffer.from(CONTINUATION_TOKEN_PREFIX + resumeAfter, 'utf8').toString('base64');
}

function decodeContinuationToken(token: string): string {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  if (!decoded.startsWith(CONTINUATION_TOKEN_PREFIX)) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      ArgumentName: 'continuation-token',
    });
  }
  return decoded.slice(CONTINUATION_TOKEN_PREFIX.length);
}

/** Makes s3rver's controllers read the decoded payload instead of the `aws-chunked` framed request stream. */
function decodeAwsChunkedBody(ctx: KoaContext, chunkSigner: ChunkSigner | undefined): void {
  const expectedLength = stripAwsChunkedHeaders(ctx.headers);
  const decoder = new AwsChunkedDecoder(expectedLength, chunkSigner);
  // pipeline: an aborted request fails the decoder, which fails the store's write, which removes its temp file.
  pipeline(ctx.req, decoder, () => undefined);
  ctx.req = decoder;
}

async function currentEtag(store: S3rverFilesystemStore, bucket: string, key: string): Promise<string | undefined> {
  try {
    return String((await store.getMetadata(bucket, key))['etag']);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw error;
  }
}

/**
 * S3's conditional write rules: `If-None-Match: *` fails if the key exists; `If-Match: <etag>` fails if the
 * object's etag differs, and answers NoSuchKey if there is no object.
 */
function checkWriteConditions(headers: KoaContext['headers'], etag: string | undefined): void {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  if (ifMatch !== undefined) {
    if (etag === undefined) {
      throw new S3Error('NoSuchKey', 'The specified key does not exist.');
    }
    if (!etagListMatches(ifMatch, etag)) {
      throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
        Condition: 'If-Match',
      });
    }
  }
  if (ifNoneMatch !== undefined && etag !== undefined && etagListMatches(ifNoneMatch, etag)) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
      Condition: 'If-None-Match',
    });
  }
}

/** RFC 9110 entity-tag list matching (`*`, or a comma-separated list, quoted or not, weak prefix ignored). */
function etagListMatches(header: string, etag: string): boolean {
  const current = unquote(etag);
  return header.split(',').some((candidate) => {
    const trimmed = candidate.trim();
    return trimmed === '*' || unquote(trimmed.replace(/^W\//, '')) === current;
  });
}

function unquote(etag: string): string {
  return etag.replace(/^"(.*)"$/s, '$1');
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
