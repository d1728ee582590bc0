/**
 * The storage boundary of the core. The model repository (layout, manifest, versions) is written once on top of
 * this; the adapters implement it on S3 (`functions/adapters/s3-blob-store.ts`) and on a local folder
 * (`functions/adapters/fs-blob-store.ts`).
 */

/** An object as read from the store. */
export interface StoredObject {
  readonly body: Uint8Array;
  /** Opaque version tag of this content, usable in {@link PutCondition.ifMatch}. */
  readonly etag: string;
}

/** A file on local disk, written to the store with {@link BlobStore.putFile} (streamed, never one buffer). */
export interface LocalFile {
  readonly path: string;
}

/** Conditions for an atomic write (S3 `If-Match` / `If-None-Match: *`). */
export interface PutCondition {
  /** Write only if the current object's etag is this one. */
  readonly ifMatch?: string;
  /** Write only if no object exists under the key. */
  readonly ifNoneMatch?: '*';
}

/** How {@link BlobStore.download} fetches a large object. */
export interface DownloadOptions {
  /** Bytes per ranged GET. */
  readonly partBytes: number;
  /** Ranged GETs in flight at once. */
  readonly concurrency: number;
  /** Aborts the transfer (a deadline passed); the partial file is removed. */
  readonly signal?: AbortSignal;
}

/** What {@link BlobStore.download} wrote. */
export interface DownloadedObject {
  /** Bytes written to the file. */
  readonly size: number;
  /** sha256 (hex) of the bytes, computed while they streamed. */
  readonly sha256: string;
  readonly etag: string;
}

/**
 * A key/value object store with conditional writes.
 * Implementations throw `PreconditionFailedError` (from `./errors.ts`) when a condition does not hold, and let
 * other failures (network, 5xx, timeouts) propagate as they are.
 */
export interface BlobStore {
  /** The object, or `undefined` if there is none under `key`. */
  get(key: string): Promise<StoredObject | undefined>;
  /**
   * Streams the object into the local file `file` (created or truncated) and hashes it on the way, without holding
   * it in memory: large models go to disk, never through one JavaScript buffer. `undefined` (and no file) if there
   * is no object under `key`. On any failure the partial file is removed and the error propagates.
   */
  download(key: string, file: string, options: DownloadOptions): Promise<DownloadedObject | undefined>;
  /** Writes `body` under `key` if `condition` holds; returns the new etag. */
  put(key: string, body: Uint8Array, condition?: PutCondition): Promise<{ etag: string }>;
  /**
   * Writes the local file `file` under `key` if `condition` holds, streaming it: memory stays bounded whatever the
   * file's size (a 1 GiB model is never one JavaScript buffer). Atomic like {@link BlobStore.put}: readers see the
   * whole object or none, and a failed write leaves no object (nor, on S3, an unfinished multipart upload).
   */
  putFile(key: string, file: string, condition?: PutCondition): Promise<{ etag: string }>;
  /** Every key under `prefix`, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** Removes the object (no error if absent). */
  delete(key: string): Promise<void>;
}
