/**
 * Connection and retry settings shared by the two S3 clients: the SDK's (`s3-client.ts`, registration and tools) and
 * the serving functions' GET-only reader (`s3-reader.ts`), in a module of their own so that the reader's bundle does
 * not pull in the SDK.
 */

/** Connection and retry settings of `createS3Client` and `S3Reader`, as constants so the README can quote them. */
export const S3_CLIENT_DEFAULTS = {
  /** Region when neither `options.region` nor `AWS_REGION` says otherwise (the embedded server ignores it). */
  region: 'us-east-1',
  /** Time to open a TCP (and TLS) connection before the attempt fails and is retried. */
  connectionTimeoutMs: 5_000,
  /**
   * Time a socket may stay silent mid-request before the attempt fails and is retried. An idle timeout, not a total
   * one: a 100+ MB model download may take longer than this as a whole, but never stalls this long.
   */
  socketTimeoutMs: 30_000,
  /** Attempts per call under the SDK's `standard` retry mode (exponential backoff with jitter, retry quota). */
  maxAttempts: 3,
  /** Sockets kept per host: enough for parallel multipart parts and concurrent reads. */
  maxSockets: 50,
} as const;
