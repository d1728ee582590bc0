/**
 * The one place that builds an S3 client, so that Lambda handlers, the local runtime and the tests talk to S3
 * (or to the embedded S3-compatible server) with the same connection reuse, timeouts and retries.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { ENV } from '../core/contract.js';
import { S3_CLIENT_DEFAULTS } from './s3-settings.js';

export { S3_CLIENT_DEFAULTS } from './s3-settings.js';

/** Options of {@link createS3Client}. */
export interface S3ClientOptions {
  /**
   * A custom endpoint such as the embedded server's `http://127.0.0.1:9000`.
   * @default the AWS endpoint of the region
   */
  readonly endpoint?: string;
  /**
   * @default `AWS_REGION` if set, else `us-east-1`
   */
  readonly region?: string;
  /**
   * Address buckets as `/<bucket>/<key>` rather than `<bucket>.<host>`, as local servers need.
   * @default true when `endpoint` is given, else false
   */
  readonly forcePathStyle?: boolean;
  /**
   * Static credentials (the embedded server's fixed pair).
   * @default the SDK's default provider chain (Lambda's role credentials when deployed)
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * Attempts per call, retries included.
   * @default 3
   */
  readonly maxAttempts?: number;
}

/**
 * Creates an S3 client with HTTP keep-alive, bounded connection and idle timeouts, and the SDK's standard retries.
 *
 * Keep-alive matters on Lambda: a warm instance re-reads the manifest every few seconds, and reusing the TLS
 * connection saves a handshake each time. The SDK's default flexible checksums (CRC32 on uploads, validation on
 * downloads) stay on: the embedded server understands the `aws-chunked` bodies they produce.
 *
 * @example
 * ```ts
 * const s3 = createS3Client({ endpoint: local.endpoint, credentials: local.credentials });
 * const store = new S3BlobStore(s3, local.bucket);
 * ```
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: S3_CLIENT_DEFAULTS.maxSockets };
  return new S3Client({
    region: options.region ?? process.env[ENV.region] ?? S3_CLIENT_DEFAULTS.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    ...(options.credentials === undefined
      ? {}
      : {
          credentials: {
            accessKeyId: options.credentials.accessKeyId,
            secretAccessKey: options.credentials.secretAccessKey,
          },
        }),
    retryMode: 'standard',
    maxAttempts: options.maxAttempts ?? S3_CLIENT_DEFAULTS.maxAttempts,
    // Handler options rather than a handler instance: the SDK builds its own NodeHttpHandler from them, so this
    // module needs no direct dependency on the SDK's internal @smithy packages.
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: S3_CLIENT_DEFAULTS.connectionTimeoutMs,
      socketTimeout: S3_CLIENT_DEFAULTS.socketTimeoutMs,
    },
  });
}
