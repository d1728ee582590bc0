/**
 * Typed access to the parts of `s3rver` (CommonJS, untyped) that the embedded S3 server builds on. Listing them in
 * one place keeps the coupling to s3rver's internals visible: these are the only names the rest of
 * `functions/local/s3-*.ts` may use, and `test/s3/` exercises each of them.
 */
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';

const require = createRequire(import.meta.url);

/** The subset of a Koa context that the embedded server's middleware reads and writes. */
export interface KoaContext {
  readonly method: string;
  /** URL path, not decoded; for virtual-host requests s3rver has already prefixed the bucket. */
  readonly path: string;
  /** The request target exactly as received (before any rewrite): what a SigV4 signature covers. */
  readonly originalUrl: string;
  /** Parsed query string; assigning it rewrites the request URL's query. */
  query: Readonly<Record<string, string | string[] | undefined>>;
  readonly headers: IncomingHttpHeaders;
  readonly ip: string;
  readonly status: number;
  /** The response body; s3rver's controllers set plain objects that its outer middleware renders as XML. */
  readonly body: unknown;
  /** The request stream s3rver's controllers read object bodies from; replaced to decode `aws-chunked` bodies. */
  req: IncomingMessage | Readable;
}

/** A Koa middleware. */
export type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/** Object metadata as s3rver keeps it (lower-case header names; `etag` is quoted). */
export type S3rverMetadata = Record<string, string | number>;

/** s3rver's in-memory form of an object being written or listed. */
export interface S3rverObject {
  readonly bucket: string;
  readonly key: string;
  readonly content: Readable | Buffer | null;
  readonly metadata: S3rverMetadata;
}

/** Listing options s3rver's bucket controller passes to its store. */
export interface S3rverListOptions {
  readonly delimiter?: string | undefined;
  readonly startAfter?: string | undefined;
  readonly prefix?: string | undefined;
  readonly maxKeys?: number | undefined;
}

/** What s3rver's bucket controller expects back from a listing. */
export interface S3rverListResult {
  readonly objects: S3rverObject[];
  readonly commonPrefixes: string[];
  readonly isTruncated: boolean;
}

/** s3rver's `FilesystemStore` (lib/stores/filesystem.js): the methods the embedded server uses or overrides. */
export interface S3rverFilesystemStore {
  readonly rootDirectory: string;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<S3rverMetadata>;
  putMetadata(bucket: string, key: string, metadata: S3rverMetadata, md5?: string): Promise<void>;
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<unknown>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
  putPart(
    bucket: string,
    uploadId: string,
    partNumber: number | string,
    content: Readable,
  ): Promise<{ size: number; md5: string }>;
  listObjects(bucket: string, options: S3rverListOptions): Promise<S3rverListResult>;
  putBucket(bucket: string): Promise<unknown>;
}

/** Constructor of {@link S3rverFilesystemStore}. */
export type S3rverFilesystemStoreClass = new (rootDirectory: string) => S3rverFilesystemStore;

/** s3rver's error type: rendered as S3's XML error body with the HTTP status of its code. */
export interface S3rverError extends Error {
  readonly code: string;
  readonly status: number;
  /** The response body; s3rver's controllers set plain objects that its outer middleware renders as XML. */
  readonly body: unknown;
}

/** Constructor of {@link S3rverError}. */
export type S3rverErrorClass = new (
  code: string,
  message: string,
  detail?: Record<string, string | number>,
) => S3rverError;

/** Constructor of s3rver's `S3Object` model. */
export type S3rverObjectClass = new (
  bucket: string,
  key: string,
  content: Readable | Buffer | null,
  metadata: S3rverMetadata,
) => S3rverObject;

/** Options of the s3rver app. */
export interface S3rverOptions {
  readonly address: string;
  readonly port: number;
  readonly silent: boolean;
  readonly directory: string;
  readonly configureBuckets: readonly { name: string; configs: readonly string[] }[];
}

/** The s3rver app: a Koa application with an HTTP server attached by `run()`. */
export interface S3rverApp {
  /** Koa's middleware chain, composed when `run()` starts listening. */
  readonly middleware: KoaMiddleware[];
  /** Koa's shared context prototype; `store` there is what controllers use. */
  readonly context: { store: S3rverFilesystemStore };
  store: S3rverFilesystemStore;
  httpServer?: Server;
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'error', listener: (error: Error & { status?: number }) => void): this;
}

/** Constructor of {@link S3rverApp}. */
export type S3rverAppClass = new (options: S3rverOptions) => S3rverApp;

/** s3rver's dummy account; its key pair is the only one s3rver accepts. */
interface S3rverAccountModule {
  readonly DUMMY_ACCOUNT: {
    readonly accessKeys: ReadonlyMap<string, string>;
    createKeyPair(accessKeyId: string, secretAccessKey: string): void;
    revokeAccessKey(accessKeyId: string): void;
  };
}

/** The s3rver app class (`s3rver`). */
export const S3rver = require('s3rver') as S3rverAppClass;
/** s3rver's filesystem store (`s3rver/lib/stores/filesystem`), the base of the embedded server's store. */
export const FilesystemStore = require('s3rver/lib/stores/filesystem') as S3rverFilesystemStoreClass;
/** s3rver's error type (`s3rver/lib/models/error`). */
export const S3Error = require('s3rver/lib/models/error') as S3rverErrorClass;
/** s3rver's object model (`s3rver/lib/models/object`). */
export const S3Object = require('s3rver/lib/models/object') as S3rverObjectClass;

/** s3rver's account registry (`s3rver/lib/models/account`): the key ids its authentication accepts. */
const account = require('s3rver/lib/models/account') as S3rverAccountModule;

/**
 * Makes s3rver's own authentication (which runs after the embedded server's SigV4 check and only looks the key id
 * up) accept a function's key pair; returns the function that removes it again.
 */
export function addS3rverKeyPair(accessKeyId: string, secretAccessKey: string): () => void {
  account.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  return () => account.DUMMY_ACCOUNT.revokeAccessKey(accessKeyId);
}

/**
 * The owner's key pair (s3rver's fixed one): full access, as a bucket owner's credentials. The embedded server
 * verifies SigV4 signatures made with it (s3rver itself only checks the key id).
 */
export const S3RVER_CREDENTIALS: { readonly accessKeyId: string; readonly secretAccessKey: string } = (() => {
  const [pair] = account.DUMMY_ACCOUNT.accessKeys.entries();
  if (pair === undefined) {
    throw new Error('s3rver has no dummy account key pair: the installed s3rver version is not supported');
  }
  return { accessKeyId: pair[0], secretAccessKey: pair[1] };
})();
