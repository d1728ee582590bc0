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

/** Conditions for an atomic write (S3 `If-Match` / `If-None-Match: *`). */
export interface PutCondition {
  /** Write only if the current object's etag is this one. */
  readonly ifMatch?: string;
  /** Write only if no object exists under the key. */
  readonly ifNoneMatch?: '*';
}

/**
 * A key/value object store with conditional writes.
 * Implementations throw `PreconditionFailedError` (from `./errors.ts`) when a condition does not hold, and let
 * other failures (network, 5xx, timeouts) propagate as they are.
 */
export interface BlobStore {
  /** The object, or `undefined` if there is none under `key`. */
  get(key: string): Promise<StoredObject | undefined>;
  /** Writes `body` under `key` if `condition` holds; returns the new etag. */
  put(key: string, body: Uint8Array, condition?: PutCondition): Promise<{ etag: string }>;
  /** Every key under `prefix`, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** Removes the object (no error if absent). */
  delete(key: string): Promise<void>;
}
