/**
 * Verification of AWS Signature Version 4 on the embedded S3 server, in both forms S3 accepts: the `Authorization`
 * header and the presigned query string (`X-Amz-Algorithm`, `X-Amz-Signature`...). Streamed `aws-chunked` bodies
 * signed chunk by chunk are checked by {@link ChunkSigner} from the seed signature this module returns.
 *
 * Why verify at all on loopback: any web page can make the browser send requests to 127.0.0.1; without
 * verification an unsigned form POST could rewrite a manifest. With it, only holders of a key pair (the printed
 * owner pair, or a function's own) can act, and each only as far as its policy allows.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { S3Error } from './s3-error.js';

/** How far a request's `X-Amz-Date` may be from the server's clock, as S3 allows. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** The longest validity S3 accepts for a presigned URL (7 days). */
const MAX_PRESIGNED_EXPIRES_SECONDS = 7 * 24 * 3600;

/** The values of `x-amz-content-sha256` that are not a payload's hash. */
const PAYLOAD_HASH_TOKENS = new Set([
  'UNSIGNED-PAYLOAD',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER',
]);

/** The empty payload's SHA-256, used in chunk signatures. */
const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** A request failing verification: S3's error code and message. */
export class SignatureError extends Error {
  public constructor(
    public readonly code:
      | 'AccessDenied'
      | 'InvalidAccessKeyId'
      | 'SignatureDoesNotMatch'
      | 'RequestTimeTooSkewed'
      | 'AuthorizationHeaderMalformed'
      | 'InvalidArgument',
    message: string,
  ) {
    super(message);
    this.name = 'SignatureError';
  }
}

/** Who signed a request, and what chunk signatures (if any) must chain from. */
export interface VerifiedRequest {
  readonly accessKeyId: string;
  /** Present when the body is `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: verifies each chunk's signature. */
  readonly chunkSigner?: ChunkSigner;
  /** The signed SHA-256 (lower-case hex) the body must have, when `x-amz-content-sha256` gave one. */
  readonly payloadSha256?: string;
}

/**
 * What a signature must be for: S3 (the embedded server; the default), or another service whose requests the local
 * gateway verifies as its front would (`execute-api` for API Gateway, `lambda` for function URLs).
 */
export interface SigV4Service {
  /** The service of the credential scope. */
  readonly service: string;
  /**
   * The SHA-256 (hex) of the body as received. Services other than S3 sign the body's own hash (a client may also
   * send it as `x-amz-content-sha256`, which must then match), double-encode the path in the canonical request, and
   * do not insist that every `x-amz-*` header be signed.
   */
  readonly bodySha256?: string;
}

/** S3's rules: the default of {@link verifySigV4}. */
const S3_SERVICE: SigV4Service = { service: 's3' };

/**
 * Verifies the SigV4 signature of `request` (header or presigned form) with the secret that `secretFor` returns
 * for its access key id. Throws {@link SignatureError}; anonymous requests are refused with `AccessDenied`.
 */
export function verifySigV4(
  request: Pick<IncomingMessage, 'method' | 'url' | 'rawHeaders'>,
  secretFor: (accessKeyId: string) => string | undefined,
  now: number = Date.now(),
  target: SigV4Service = S3_SERVICE,
): VerifiedRequest {
  const isS3 = target.service === 's3';
  const { path, query } = splitUrl(request.url ?? '/');
  const headers = headerValues(request.rawHeaders);
  const authorization = headers.get('authorization');
  const presigned = query.some(([name]) => name === 'X-Amz-Signature');
  if (authorization === undefined && !presigned) {
    throw new SignatureError(
      'AccessDenied',
      'Anonymous access is refused: sign requests with SigV4 (the credentials `npm start` prints).',
    );
  }
  if (authorization !== undefined && presigned) {
    throw new SignatureError(
      'InvalidArgument',
      'Only one auth mechanism allowed: the Authorization header or a presigned query string.',
    );
  }

  const fields = authorization !== undefined ? parseAuthorization(authorization) : parsePresigned(query);
  const [accessKeyId, date, region, service, terminal] = fields.credential.split('/');
  if (
    accessKeyId === undefined ||
    date === undefined ||
    region === undefined ||
    service !== target.service ||
    terminal !== 'aws4_request'
  ) {
    throw new SignatureError(
      'AuthorizationHeaderMalformed',
      `The credential scope "${fields.credential}" is malformed (service ${target.service} expected).`,
    );
  }
  const secret = secretFor(accessKeyId);
  if (secret === undefined) {
    throw new SignatureError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  const amzDate = authorization !== undefined ? (headers.get('x-amz-date') ?? '') : fields.amzDate;
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined || !amzDate.startsWith(date)) {
    throw new SignatureError(
      'AuthorizationHeaderMalformed',
      `X-Amz-Date "${amzDate}" is missing, malformed or not on the scope's date.`,
    );
  }
  if (authorization !== undefined) {
    if (Math.abs(now - signedAt) > MAX_CLOCK_SKEW_MS) {
      throw new SignatureError(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    }
  } else {
    const expires = fields.expiresSeconds;
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGNED_EXPIRES_SECONDS) {
      throw new SignatureError('AuthorizationHeaderMalformed', 'X-Amz-Expires must be from 1 to 604800 seconds.');
    }
    if (now > signedAt + expires * 1000 || signedAt - now > MAX_CLOCK_SKEW_MS) {
      throw new SignatureError('AccessDenied', 'Request has expired.');
    }
  }

  const signedHeaders = fields.signedHeaders.split(';');
  if (!signedHeaders.includes('host')) {
    throw new SignatureError('AuthorizationHeaderMalformed', 'The host header must be signed.');
  }
  // S3 requires every x-amz-* header to be signed: an unsigned one (say x-amz-copy-source) could turn a signed PUT
  // into another operation.
  const unsigned = isS3
    ? [...headers.keys()].filter((name) => name.startsWith('x-amz-') && !signedHeaders.includes(name))
    : [];
  if (unsigned.length > 0) {
    throw new SignatureError(
      'AccessDenied',
      `There were headers present in the request which were not signed: ${unsigned.sort().join(', ')}`,
    );
  }
  // Presigned: S3's presigners hoist x-amz-content-sha256 (UNSIGNED-PAYLOAD) into the query; S3 defaults to it.
  const declaredHash =
    authorization !== undefined
      ? (headers.get('x-amz-content-sha256') ?? '')
      : (query.find(([name]) => name.toLowerCase() === 'x-amz-content-sha256')?.[1] ??
        (isS3 ? 'UNSIGNED-PAYLOAD' : ''));
  const bodyHash = target.bodySha256 ?? EMPTY_SHA256;
  if (!isS3 && declaredHash !== '' && declaredHash.toLowerCase() !== bodyHash) {
    throw new SignatureError('SignatureDoesNotMatch', 'x-amz-content-sha256 is not the SHA-256 of the body sent.');
  }
  const payloadHash = isS3 ? declaredHash : bodyHash;
  if (isS3 && authorization !== undefined && payloadHash === '') {
    throw new SignatureError('InvalidArgument', 'x-amz-content-sha256 must be sent with a signed request.');
  }
  const payloadSha256 = /^[0-9a-fA-F]{64}$/.test(payloadHash) ? payloadHash.toLowerCase() : undefined;
  if (payloadSha256 === undefined && !PAYLOAD_HASH_TOKENS.has(payloadHash)) {
    throw new SignatureError(
      'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., or the SHA-256 of the payload in hex.',
    );
  }
  const canonicalRequest = [
    request.method ?? 'GET',
    isS3 ? canonicalUri(path) : doubleEncodedUri(path),
    canonicalQuery(query.filter(([name]) => name !== 'X-Amz-Signature')),
    ...signedHeaders.map((name) => `${name}:${canonicalHeaderValue(headers.get(name) ?? '')}`),
    '',
    fields.signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = signingKey(secret, date, region, service);
  const expected = hmac(key, stringToSign).toString('hex');
  if (!sameHex(expected, fields.signature)) {
    throw new SignatureError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
  return {
    accessKeyId,
    ...(payloadSha256 === undefined ? {} : { payloadSha256 }),
    ...(payloadHash === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
      ? { chunkSigner: new ChunkSigner(key, amzDate, scope, fields.signature) }
      : {}),
  };
}

/**
 * Passes a body through and fails it, at its end, with S3's 400 XAmzContentSHA256Mismatch when its SHA-256 is not
 * the signed `x-amz-content-sha256`. The store writes to a temporary file that only a successful end renames into
 * place, so a mismatched body is never stored.
 */
export class PayloadSha256Check extends Transform {
  private readonly hash = createHash('sha256');

  public constructor(private readonly expected: string) {
    super();
  }

  public override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  public override _flush(callback: TransformCallback): void {
    const computed = this.hash.digest('hex');
    if (computed === this.expected) {
      callback();
      return;
    }
    callback(
      new S3Error(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        {
          ClientComputedContentSHA256: this.expected,
          S3ComputedContentSHA256: computed,
        },
      ),
    );
  }
}

/** Computes the chained signature of each `aws-chunked` frame (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`). */
export class ChunkSigner {
  public constructor(
    private readonly key: Buffer,
    private readonly amzDate: string,
    private readonly scope: string,
    private previous: string,
  ) {}

  /** Checks `signature` for the frame whose payload hashes to `payloadSha256`, and advances the chain. */
  public verify(payloadSha256: string, signature: string): boolean {
    const stringToSign = [
      'AWS4-HMAC-SHA256-PAYLOAD',
      this.amzDate,
      this.scope,
      this.previous,
      EMPTY_SHA256,
      payloadSha256,
    ].join('\n');
    const expected = hmac(this.key, stringToSign).toString('hex');
    this.previous = expected;
    return sameHex(expected, signature);
  }
}

interface SignatureFields {
  readonly credential: string;
  readonly signedHeaders: string;
  readonly signature: string;
  /** Presigned only. */
  readonly amzDate: string;
  readonly expiresSeconds: number;
}

function parseAuthorization(header: string): SignatureFields {
  const match = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(header.trim());
  if (match === null) {
    throw new SignatureError('InvalidArgument', 'Only AWS4-HMAC-SHA256 (SigV4) authorization is supported.');
  }
  const parts = new Map(
    (match[1] ?? '').split(',').map((part) => {
      const [name, ...rest] = part.trim().split('=');
      return [name ?? '', rest.join('=')] as const;
    }),
  );
  const credential = parts.get('Credential');
  const signedHeaders = parts.get('SignedHeaders');
  const signature = parts.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw new SignatureError(
      'AuthorizationHeaderMalformed',
      'The authorization header needs Credential, SignedHeaders and Signature.',
    );
  }
  return { credential, signedHeaders, signature, amzDate: '', expiresSeconds: 0 };
}

function parsePresigned(query: readonly (readonly [string, string])[]): SignatureFields {
  const get = (name: string): string => query.find(([candidate]) => candidate === name)?.[1] ?? '';
  if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') {
    throw new SignatureError('InvalidArgument', 'Only X-Amz-Algorithm=AWS4-HMAC-SHA256 is supported.');
  }
  return {
    credential: get('X-Amz-Credential'),
    signedHeaders: get('X-Amz-SignedHeaders'),
    signature: get('X-Amz-Signature'),
    amzDate: get('X-Amz-Date'),
    // Strictly decimal: `Number()` would read `1e3` and `0x10`, which S3 refuses.
    expiresSeconds: /^\d{1,7}$/.test(get('X-Amz-Expires')) ? Number(get('X-Amz-Expires')) : Number.NaN,
  };
}

/** Path and decoded query parameters of a request target, in their order. */
function splitUrl(url: string): { path: string; query: [string, string][] } {
  const at = url.indexOf('?');
  const path = at === -1 ? url : url.slice(0, at);
  const raw = at === -1 ? '' : url.slice(at + 1);
  const query = raw
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair): [string, string] => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      const value = equals === -1 ? '' : pair.slice(equals + 1);
      return [safeDecode(name), safeDecode(value)];
    });
  return { path, query };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new SignatureError('InvalidArgument', 'The request target has a malformed percent-escape.');
  }
}

/** S3's canonical URI: each segment decoded once and re-encoded with RFC 3986 (S3 does not double-encode). */
function canonicalUri(path: string): string {
  return (
    path
      .split('/')
      .map((segment) => uriEncode(safeDecode(segment)))
      .join('/') || '/'
  );
}

/** Other services' canonical URI: each segment, as sent (already encoded once), encoded again. */
function doubleEncodedUri(path: string): string {
  return (
    path
      .split('/')
      .map((segment) => uriEncode(segment))
      .join('/') || '/'
  );
}

function canonicalQuery(query: readonly (readonly [string, string])[]): string {
  return query
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** RFC 3986 encoding: everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`). */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Header values by lower-case name, repeated headers joined with `,` as SigV4 specifies. */
function headerValues(rawHeaders: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const value = rawHeaders[i + 1] ?? '';
    const previous = values.get(name);
    values.set(name, previous === undefined ? value : `${previous},${value}`);
  }
  return values;
}

function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

function parseAmzDate(text: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (match === null) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

function sameHex(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(provided.toLowerCase(), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
