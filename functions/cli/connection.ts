/**
 * Where the CLI's model repository is: endpoint, bucket, region and credentials from flags and the environment.
 * With nothing set it talks to the embedded S3 server of `npm start`, so local use needs no flags at all.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { SigningCredentials } from '../adapters/aws-signing.js';
import { S3BlobStore } from '../adapters/s3-blob-store.js';
import { createS3Client } from '../adapters/s3-client.js';
import type { BlobStore } from '../core/blob-store.js';
import { ENV } from '../core/contract.js';
import { UsageError } from './errors.js';

/**
 * The embedded server's fixed settings (`functions/local/s3-server.ts`), repeated here so that the CLI does not load
 * the embedded server just to know them; a test checks that both agree.
 */
export const LOCAL_S3 = {
  host: '127.0.0.1',
  port: 9000,
  bucket: 'models',
  /** Not a secret: the embedded server listens on loopback only and accepts this one pair. */
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
} as const;

/** Flags that select the repository; each falls back to an environment variable. */
export interface ConnectionFlags {
  /** `--endpoint`, else `S3_ENDPOINT`. */
  readonly endpoint?: string;
  /** `--bucket`, else `MODEL_BUCKET`. */
  readonly bucket?: string;
  /** `--region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` (see {@link resolveRegion}). */
  readonly region?: string;
}

/** The AWS CLI's region variable (the SDK reads only `AWS_REGION`); the CLI honours both, as the AWS CLI does. */
export const AWS_DEFAULT_REGION = 'AWS_DEFAULT_REGION';

/** The resolved connection, as printed by the CLI's error messages. */
export interface Connection {
  /** `undefined` means AWS's own endpoint for the region. */
  readonly endpoint?: string;
  readonly bucket: string;
  readonly region?: string;
  /** Whether the endpoint is on this machine (the embedded server, MinIO...). */
  readonly local: boolean;
  /** Static credentials, or `undefined` for the SDK's default chain (env, profile, SSO, instance role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function isLoopback(endpoint: string): boolean {
  try {
    const host = new URL(endpoint).hostname;
    return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}

/**
 * Resolves the connection. Endpoint: `--endpoint`, `S3_ENDPOINT`, else the embedded server on `S3_PORT` (default
 * 9000) when `MODEL_BUCKET` is unset, else AWS. Credentials: the SDK's default chain, except on a loopback endpoint
 * with neither `AWS_ACCESS_KEY_ID` nor `AWS_PROFILE` set, where the embedded server's fixed pair is used.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  const bucketFromEnv = nonEmpty(env[ENV.modelBucket]);
  const endpoint =
    nonEmpty(flags.endpoint) ??
    nonEmpty(env[ENV.s3Endpoint]) ??
    (bucketFromEnv === undefined ? `http://${LOCAL_S3.host}:${nonEmpty(env[ENV.s3Port]) ?? LOCAL_S3.port}` : undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new UsageError(`the S3 endpoint must be an http(s) URL such as http://127.0.0.1:9000, got "${endpoint}"`);
  }
  const local = endpoint !== undefined && isLoopback(endpoint);
  const chainConfigured = nonEmpty(env[ENV.accessKeyId]) !== undefined || nonEmpty(env[ENV.profile]) !== undefined;
  return {
    endpoint,
    bucket: nonEmpty(flags.bucket) ?? bucketFromEnv ?? LOCAL_S3.bucket,
    region: nonEmpty(flags.region) ?? nonEmpty(env[ENV.region]) ?? nonEmpty(env[AWS_DEFAULT_REGION]),
    local,
    credentials: local && !chainConfigured ? LOCAL_S3.credentials : undefined,
  };
}

/**
 * Completes the connection's region as the AWS CLI and SDK find it: `--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`
 * (all three already in `connection`), then the `region` of the profile (`AWS_PROFILE`, else `default`) in the
 * shared config files (`AWS_CONFIG_FILE`, else `~/.aws/config`), read by the SDK's own loader. Without any, a
 * custom endpoint keeps the client's default, and AWS itself is a usage error: a guessed region fails later, with
 * a redirect, for every bucket outside it.
 */
export async function resolveRegion(connection: Connection, env: NodeJS.ProcessEnv): Promise<Connection> {
  if (connection.region !== undefined) return connection;
  const profile = nonEmpty(env[ENV.profile]);
  // The SDK's region chain (AWS_REGION, then the profile's region), without a request: its resolved config.
  const client = new S3Client(profile === undefined ? {} : { profile });
  try {
    return { ...connection, region: await client.config.region() };
  } catch {
    if (connection.endpoint !== undefined) return connection;
    throw new UsageError(
      `no AWS region for s3://${connection.bucket}: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or give ` +
        `the profile${profile === undefined ? '' : ` "${profile}"`} a region (aws configure set region <region>)`,
    );
  } finally {
    client.destroy();
  }
}

/** A human description of the connection, for messages: `s3://models at http://127.0.0.1:9000`. */
export function describeConnection(connection: Connection): string {
  return `s3://${connection.bucket} at ${connection.endpoint ?? `AWS (${connection.region ?? 'default region'})`}`;
}

/** The store of a resolved connection, and how to close its connections (so that the process can exit). */
export function openStore(connection: Connection): { readonly store: BlobStore; readonly close: () => void } {
  const client = createS3Client({
    ...(connection.endpoint === undefined ? {} : { endpoint: connection.endpoint }),
    ...(connection.region === undefined ? {} : { region: connection.region }),
    ...(connection.credentials === undefined ? {} : { credentials: connection.credentials }),
  });
  return { store: new S3BlobStore(client, connection.bucket), close: () => client.destroy() };
}

/**
 * The AWS SDK's default credential chain (the environment's key pair, `AWS_PROFILE`, SSO, an instance role), as the
 * S3 client of an AWS connection finds it, for the CLI's calls without an SDK client (Step Functions); `close`
 * releases the client that holds it.
 */
export function credentialChain(
  region: string,
  env: NodeJS.ProcessEnv,
): { readonly credentials: () => Promise<SigningCredentials>; readonly close: () => void } {
  const profile = nonEmpty(env[ENV.profile]);
  const client = new S3Client({ region, ...(profile === undefined ? {} : { profile }) });
  return { credentials: () => client.config.credentials(), close: () => client.destroy() };
}
