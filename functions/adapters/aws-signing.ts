/**
 * SigV4 signing for the two AWS calls the serving functions make without the AWS SDK's clients (S3 reads, the
 * warmers' Lambda self-invocation): the SDK's own signer, `@smithy/signature-v4`, with SHA-256 from node:crypto.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { ENV } from '../core/contract.js';

/** A key pair, and the session token of a role's temporary credentials. */
export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** When temporary credentials stop working (credentials from a container endpoint say so). */
  readonly expiration?: Date;
}

/** Credentials as the signer reads them before each request: fixed, or fetched (and refreshed) on demand. */
export type CredentialsSource = SigningCredentials | (() => Promise<SigningCredentials>);

/** How long before their expiration fetched credentials are replaced (the SDK refreshes 5 minutes ahead too). */
const REFRESH_AHEAD_MS = 5 * 60_000;

/**
 * A provider that fetches credentials once, hands the same ones out until five minutes before they expire, then
 * fetches again; concurrent callers share one fetch, and a failed fetch is retried by the next caller.
 * @example
 * const credentials = refreshingCredentials(() => fetchFromVault());
 */
export function refreshingCredentials(fetch: () => Promise<SigningCredentials>): () => Promise<SigningCredentials> {
  let current: Promise<SigningCredentials> | undefined;
  return async () => {
    if (current !== undefined) {
      const held = await current.catch(() => undefined);
      const expires = held?.expiration?.getTime();
      if (held !== undefined && (expires === undefined || expires - REFRESH_AHEAD_MS > Date.now())) return held;
    }
    const fetching = fetch();
    current = fetching;
    return fetching;
  };
}

function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** SHA-256 and HMAC-SHA-256 in the shape the signer expects, on node:crypto (no JavaScript hash to load). */
class NodeSha256 {
  private readonly hash;
  public constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', typeof secret === 'string' ? secret : bytesOf(secret));
  }
  public update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : bytesOf(data));
  }
  public digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

/**
 * The role's credentials from the container credential endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, or
 * `..._RELATIVE_URI` on 169.254.170.2, with `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `..._TOKEN_FILE`), as the SDK's
 * default chain reads them when no key pair is in the environment; refreshed before they expire. One GET and a JSON
 * answer: the SDK's provider for it would bring `@aws-sdk/core` into the serving bundles.
 */
export function containerCredentials(env: NodeJS.ProcessEnv = process.env): () => Promise<SigningCredentials> {
  return refreshingCredentials(async () => {
    const relative = env[ENV.containerCredentialsRelativeUri];
    const url = new URL(env[ENV.containerCredentialsFullUri] || `http://169.254.170.2${relative ?? ''}`);
    const tokenFile = env[ENV.containerAuthorizationTokenFile];
    const token = tokenFile ? (await readFile(tokenFile, 'utf8')).trim() : env[ENV.containerAuthorizationToken];
    const response = await fetch(url, {
      headers: token ? { authorization: token } : {},
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Reported below with the status.
    }
    const { AccessKeyId, SecretAccessKey, Token, Expiration } = body;
    if (!response.ok || typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string') {
      throw new Error(
        `the container credential endpoint ${url.origin}${url.pathname} answered ${response.status} without credentials`,
      );
    }
    return {
      accessKeyId: AccessKeyId,
      secretAccessKey: SecretAccessKey,
      ...(typeof Token === 'string' ? { sessionToken: Token } : {}),
      ...(typeof Expiration === 'string' ? { expiration: new Date(Expiration) } : {}),
    };
  });
}

/**
 * A SigV4 signer for `service` in `region`. S3 signs the path as sent (each segment escaped once); the other services
 * escape it once more in the canonical request, as the signer does by default.
 */
export function createSigner(
  service: 's3' | 'lambda' | 'monitoring' | 'sns' | 'states' | 'execute-api',
  region: string,
  credentials: CredentialsSource,
): SignatureV4 {
  return new SignatureV4({
    service,
    region,
    credentials: typeof credentials === 'function' ? credentials : { ...credentials },
    sha256: NodeSha256,
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
}

/** RFC 3986 escaping, as SigV4 canonicalises (encodeURIComponent leaves `!'()*` as they are). */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
