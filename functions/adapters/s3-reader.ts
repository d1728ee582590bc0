/**
 * A GET-only {@link BlobStore} on S3 for the serving functions (infer, control): `GetObject` (whole or ranged) and
 * `ListObjectsV2`, plus one unconditional `PutObject` for data capture's batch files ({@link S3Reader.writeObject}:
 * the serving roles may write under `capture/` only), signed with SigV4 by the SDK's own signer (`@smithy/signature-v4`) and sent over `node:http(s)`
 * with keep-alive. The serving path never writes, and the full S3 client costs every cold start about 50 ms of
 * module initialisation and first-call setup (README, "Performance"); registration keeps the SDK
 * (`s3-blob-store.ts`).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SignatureV4 } from '@smithy/signature-v4';
import type { BlobStore, DownloadedObject, DownloadOptions, PutCondition, StoredObject } from '../core/blob-store.js';
import type { CaptureStore } from '../core/capture.js';
import { StorageAccessDeniedError } from '../core/errors.js';
import { createSigner, escapeUri, type CredentialsSource } from './aws-signing.js';
import { downloadInParts, readBody, totalOf } from './file-download.js';
import { S3_CLIENT_DEFAULTS } from './s3-settings.js';

/** Options of {@link S3Reader}. */
export interface S3ReaderOptions {
  readonly bucket: string;
  /**
   * A custom endpoint such as the embedded server's `http://127.0.0.1:9000`, addressed path-style.
   * @default `https://<bucket>.s3.<region>.amazonaws.com` (virtual-hosted style)
   */
  readonly endpoint?: string;
  /** The region requests are signed for. */
  readonly region: string;
  /**
   * The key pair (and session token, for a role's temporary credentials) requests are signed with, or a provider
   * read before each request (credentials that expire).
   */
  readonly credentials: CredentialsSource;
  /**
   * Attempts per request, retries included (5xx, throttling, timeouts and connection errors are retried).
   * @default 3, as the SDK client
   */
  readonly maxAttempts?: number;
  /**
   * Keys per `ListObjectsV2` page (S3 caps it at 1000).
   * @default 1000
   */
  readonly listPageSize?: number;
}

/**
 * An S3 error answer (`<Error><Code>...`) or a failed exchange, named after S3's code (`NoSuchBucket`,
 * `InternalError`, ...) as the SDK names its exceptions. The serving core answers it with a 503.
 */
export class S3ReadError extends Error {
  public constructor(
    /** S3's error code, or `Http<status>` when the answer had none (a HEAD, a proxy's page). */
    code: string,
    /** The HTTP status, or `undefined` for a connection failure or a timeout. */
    public readonly statusCode: number | undefined,
    message: string,
    /** Whether another attempt may succeed. */
    public readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = code;
  }
}

/** S3 error codes that mean "slow down and retry", whatever their status (the SDK's standard retry list). */
const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** Connection failures worth another attempt (the SDK's transient network errors). */
const TRANSIENT_NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/** Full-jitter exponential backoff of the SDK's standard mode: base 100 ms, capped at 20 s. */
const BACKOFF = { baseMs: 100, maxMs: 20_000 } as const;

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, entity: string) =>
    entity.startsWith('#x')
      ? String.fromCodePoint(Number.parseInt(entity.slice(2), 16))
      : entity.startsWith('#')
        ? String.fromCodePoint(Number(entity.slice(1)))
        : (XML_ENTITIES[entity] ?? ''),
  );
}

/** The text of each `<tag>` element of `xml`, unescaped. */
function elements(xml: string, tag: string): string[] {
  const values: string[] = [];
  const pattern = new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g');
  for (let match = pattern.exec(xml); match !== null; match = pattern.exec(xml))
    values.push(unescapeXml(match[1] ?? ''));
  return values;
}

/** What one signed request asks: a GET unless `method` says otherwise (the async store's HEAD and PUT). */
export interface SignedRequest {
  /** @default 'GET' */
  readonly method?: 'GET' | 'HEAD' | 'PUT';
  readonly key?: string;
  /** The body of a PUT. */
  readonly body?: Uint8Array;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/**
 * The serving functions' {@link BlobStore}: reads only. `put`, `putFile` and `delete` throw: the serving roles have no write
 * grant to write the repository, and registration uses the SDK store. `writeObject` writes capture files. Errors map as `S3BlobStore`'s do: a missing key is `undefined`,
 * `AccessDenied` is {@link StorageAccessDeniedError}, everything else (after the retries) an {@link S3ReadError}.
 *
 * @example
 * ```ts
 * const store = new S3Reader({ bucket: 'models', region: 'eu-west-1', credentials: fromEnvironment() });
 * const manifest = await store.get('models/iris/manifest.json');
 * ```
 */
export class S3Reader implements BlobStore, CaptureStore {
  private readonly signer: SignatureV4;
  private readonly base: URL;
  private readonly pathStyle: boolean;
  private readonly agent: HttpAgent;
  private readonly maxAttempts: number;
  private readonly listPageSize: number;

  public constructor(private readonly options: S3ReaderOptions) {
    const pageSize = options.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new RangeError(`listPageSize must be an integer from 1 to 1000, got ${pageSize}`);
    }
    this.listPageSize = pageSize;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? S3_CLIENT_DEFAULTS.maxAttempts);
    this.pathStyle = options.endpoint !== undefined;
    this.base = new URL(options.endpoint ?? `https://${options.bucket}.s3.${options.region}.amazonaws.com`);
    const agentOptions = { keepAlive: true, maxSockets: S3_CLIENT_DEFAULTS.maxSockets };
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.signer = createSigner('s3', options.region, options.credentials);
  }

  public async get(key: string): Promise<StoredObject | undefined> {
    let response: IncomingMessage;
    try {
      response = await this.send({ key });
    } catch (error) {
      if (isNoSuchKey(error)) return undefined;
      throw denied(error, 'GetObject', key);
    }
    const length = response.headers['content-length'];
    const body = await readBody(response, length === undefined ? undefined : Number(length), key);
    return { body, etag: String(response.headers.etag ?? '') };
  }

  /** Parallel ranged GETs into `file` ({@link downloadInParts}), as `S3BlobStore.download`. */
  public async download(key: string, file: string, options: DownloadOptions): Promise<DownloadedObject | undefined> {
    return downloadInParts(file, options, {
      first: async (range, signal) => {
        let response: IncomingMessage;
        try {
          response = await this.send({ key, headers: { range }, signal });
        } catch (error) {
          if (isNoSuchKey(error)) return 'missing';
          // An empty object has no byte 0: S3 answers 416 to any range.
          if (error instanceof S3ReadError && error.name === 'InvalidRange') return 'empty';
          throw denied(error, 'GetObject', key);
        }
        const ranged = response.statusCode === 206;
        return {
          ranged,
          size: ranged ? totalOf(response.headers['content-range'], key) : Number(response.headers['content-length']),
          etag: String(response.headers.etag ?? ''),
          body: response,
        };
      },
      part: async (range, etag, signal) => {
        const headers: Record<string, string> = etag === '' ? { range } : { range, 'if-match': etag };
        return await this.send({ key, headers, signal }).catch((error: unknown) => {
          throw denied(error, 'GetObject', key);
        });
      },
      whole: () => this.get(key),
    });
  }

  public async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const query: Record<string, string> = {
          'list-type': '2',
          prefix,
          'max-keys': String(this.listPageSize),
          ...(token === undefined ? {} : { 'continuation-token': token }),
        };
        const xml = (await readBody(await this.send({ query }), undefined, prefix)).toString();
        keys.push(...elements(xml, 'Key'));
        token = elements(xml, 'IsTruncated')[0] === 'true' ? elements(xml, 'NextContinuationToken')[0] : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw denied(error, 'ListObjectsV2 (s3:ListBucket) under', prefix);
    }
    // S3 lists in UTF-8 byte order already; pages are concatenated in that order.
    return keys;
  }

  /**
   * Writes `body` under `key`, unconditionally, with the standard retries: data capture's batch files, the one
   * thing the serving functions write (their roles allow `s3:PutObject` under `capture/` only). Repository writes
   * ({@link put}) stay refused.
   * @throws StorageAccessDeniedError when the role may not write there; S3ReadError for other failures.
   */
  public async writeObject(key: string, body: Uint8Array, contentType: string): Promise<void> {
    try {
      const response = await this.send({ method: 'PUT', key, body, headers: { 'content-type': contentType } });
      response.resume();
    } catch (error) {
      throw denied(error, 'PutObject', key);
    }
  }

  /** Refused: the serving functions never write the repository (their roles have no grant for it). */
  public put(key: string, _body?: Uint8Array, _condition?: PutCondition): Promise<{ etag: string }> {
    return Promise.reject(new Error(`the serving store only reads; refusing to write "${key}"`));
  }

  public putFile(key: string): Promise<{ etag: string }> {
    return Promise.reject(new Error(`the serving store only reads; refusing to write "${key}"`));
  }

  public delete(key: string): Promise<void> {
    return Promise.reject(new Error(`the serving store only reads; refusing to delete "${key}"`));
  }

  /** One signed request with the standard retries; resolves with a 2xx response whose body is still to be read. */
  protected async send(request: SignedRequest): Promise<IncomingMessage> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(request);
      } catch (error) {
        const retryable = error instanceof S3ReadError && error.retryable;
        if (!retryable || attempt >= this.maxAttempts || request.signal?.aborted === true) throw error;
        const delayMs = Math.random() * Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private async once(request: SignedRequest): Promise<IncomingMessage> {
    const keyPath = request.key === undefined ? '' : `/${request.key.split('/').map(escapeUri).join('/')}`;
    const basePath = this.base.pathname.replace(/\/$/, '');
    const path = this.pathStyle
      ? `${basePath}/${escapeUri(this.options.bucket)}${keyPath}`
      : `${basePath}${keyPath || '/'}`;
    const query = request.query ?? {};
    const method = request.method ?? 'GET';
    const bodyHeaders: Record<string, string> =
      request.body === undefined ? {} : { 'content-length': String(request.body.byteLength) };
    const signed = await this.signer.sign({
      method,
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      ...(this.base.port === '' ? {} : { port: Number(this.base.port) }),
      path,
      query: { ...query },
      headers: {
        host: this.base.host,
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        ...bodyHeaders,
        ...request.headers,
      },
    });
    const search = Object.entries(query)
      .map(([name, value]) => `${escapeUri(name)}=${escapeUri(value)}`)
      .join('&');
    const send = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    return await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = send(
        {
          method,
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path: search === '' ? path : `${path}?${search}`,
          headers: signed.headers,
          agent: this.agent,
          ...(request.signal === undefined ? {} : { signal: request.signal }),
        },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            // From here the caller reads the body; its own idle timeout still applies (a stalled stream errors).
            resolve(response);
            return;
          }
          readBody(response, undefined, request.key ?? '').then(
            (bytes) => reject(errorOf(status, bytes.toString())),
            (error: unknown) => reject(transient(error)),
          );
        },
      );
      // An idle timeout, not a total one: a 100+ MB model may take longer as a whole, but never stalls this long.
      outgoing.setTimeout(S3_CLIENT_DEFAULTS.socketTimeoutMs, () =>
        outgoing.destroy(
          new S3ReadError('TimeoutError', undefined, 'S3 stayed silent too long', true, {
            cause: new Error(`no data for ${S3_CLIENT_DEFAULTS.socketTimeoutMs} ms`),
          }),
        ),
      );
      const connectTimer = setTimeout(
        () =>
          outgoing.destroy(
            new S3ReadError(
              'TimeoutError',
              undefined,
              `no connection to S3 within ${S3_CLIENT_DEFAULTS.connectionTimeoutMs} ms`,
              true,
            ),
          ),
        S3_CLIENT_DEFAULTS.connectionTimeoutMs,
      );
      outgoing.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => clearTimeout(connectTimer));
        else clearTimeout(connectTimer);
      });
      outgoing.on('close', () => clearTimeout(connectTimer));
      outgoing.on('error', (error) => reject(transient(error)));
      outgoing.end(request.body);
    });
  }
}

/** An S3 error answer as an {@link S3ReadError}. */
function errorOf(status: number, xml: string): S3ReadError {
  const code = elements(xml, 'Code')[0] ?? (status === 404 ? 'NotFound' : `Http${status}`);
  const message = elements(xml, 'Message')[0] ?? `S3 answered ${status}`;
  const retryable = status >= 500 || status === 429 || THROTTLING_CODES.has(code);
  return new S3ReadError(code, status, message, retryable);
}

/** A failed exchange (connection reset, timeout, abort) as a retryable {@link S3ReadError}, unless aborted. */
function transient(error: unknown): unknown {
  if (error instanceof S3ReadError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if ((error as Error | undefined)?.name === 'AbortError') return error;
  return new S3ReadError(
    code ?? 'NetworkError',
    undefined,
    `S3 request failed: ${(error as Error | undefined)?.message ?? String(error)}`,
    code === undefined || TRANSIENT_NETWORK_CODES.has(code),
    { cause: error },
  );
}

/** Only a missing key: a missing bucket (NoSuchBucket, also 404) is a configuration error and must propagate. */
function isNoSuchKey(error: unknown): boolean {
  return error instanceof S3ReadError && error.name === 'NoSuchKey';
}

/** S3's 403 AccessDenied as the core's {@link StorageAccessDeniedError}; any other error as it is. */
export function denied(error: unknown, operation: string, key: string): unknown {
  return error instanceof S3ReadError && error.name === 'AccessDenied'
    ? new StorageAccessDeniedError(operation, key, { cause: error })
    : error;
}
