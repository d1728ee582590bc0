/**
 * {@link BlobStore} on Amazon S3 (or any S3-compatible server, such as the embedded one of `npm start`).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BlobStore, DownloadedObject, DownloadOptions, PutCondition, StoredObject } from '../core/blob-store.js';
import { PreconditionFailedError, StorageAccessDeniedError } from '../core/errors.js';
import { downloadInParts, readBody, totalOf } from './file-download.js';

/** Options of {@link S3BlobStore}. */
export interface S3BlobStoreOptions {
  /**
   * Keys per `ListObjectsV2` page (S3 caps it at 1000).
   * @default 1000
   */
  readonly listPageSize?: number;
}

/**
 * A {@link BlobStore} on one S3 bucket. Conditional writes use S3's `If-Match` / `If-None-Match: *`, so two writers
 * racing on the same key (two registrations updating one manifest) cannot both win.
 *
 * @example
 * ```ts
 * const store = new S3BlobStore(createS3Client(), process.env.MODEL_BUCKET);
 * const manifest = await store.get('models/iris/manifest.json');
 * ```
 */
export class S3BlobStore implements BlobStore {
  private readonly listPageSize: number;

  public constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    options: S3BlobStoreOptions = {},
  ) {
    const pageSize = options.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new RangeError(`listPageSize must be an integer from 1 to 1000, got ${pageSize}`);
    }
    this.listPageSize = pageSize;
  }

  /**
   * Reads the whole object. When S3 announces the length (it always does for a plain GET), the body is streamed
   * into one buffer of that size: a 100+ MB model costs its size in memory once, not once per concatenation.
   */
  public async get(key: string): Promise<StoredObject | undefined> {
    let response;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNoSuchKey(error)) {
        return undefined;
      }
      throw denied(error, 'GetObject', key);
    }
    const body = response.Body as AsyncIterable<Uint8Array> | undefined;
    const bytes = body === undefined ? new Uint8Array(0) : await readBody(body, response.ContentLength, key);
    return { body: bytes, etag: response.ETag ?? '' };
  }

  /** Parallel ranged GETs into `file` ({@link downloadInParts}). */
  public async download(key: string, file: string, options: DownloadOptions): Promise<DownloadedObject | undefined> {
    return downloadInParts(file, options, {
      first: async (range, abortSignal) => {
        let first;
        try {
          first = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }), {
            abortSignal,
          });
        } catch (error) {
          if (isNoSuchKey(error)) return 'missing';
          // An empty object has no byte 0: S3 answers 416 to any range.
          if (error instanceof S3ServiceException && error.name === 'InvalidRange') return 'empty';
          throw denied(error, 'GetObject', key);
        }
        const ranged = first.$metadata.httpStatusCode === 206;
        return {
          ranged,
          size: ranged ? totalOf(first.ContentRange, key) : (first.ContentLength ?? 0),
          etag: first.ETag ?? '',
          body: first.Body as AsyncIterable<Uint8Array> | undefined,
        };
      },
      part: async (range, etag, abortSignal) => {
        const response = await this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Range: range,
            ...(etag === '' ? {} : { IfMatch: etag }),
          }),
          { abortSignal },
        );
        return response.Body as AsyncIterable<Uint8Array> | undefined;
      },
      whole: () => this.get(key),
    });
  }

  public async put(key: string, body: Uint8Array, condition: PutCondition = {}): Promise<{ etag: string }> {
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: key.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          ...(condition.ifMatch === undefined ? {} : { IfMatch: condition.ifMatch }),
          ...(condition.ifNoneMatch === undefined ? {} : { IfNoneMatch: condition.ifNoneMatch }),
        }),
      );
      return { etag: response.ETag ?? '' };
    } catch (error) {
      if (isConditionFailure(error, condition)) {
        throw new PreconditionFailedError(describeConditionFailure(key, condition), { cause: error });
      }
      throw denied(error, 'PutObject', key);
    }
  }

  public async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: this.listPageSize },
      { Bucket: this.bucket, Prefix: prefix },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) {
            keys.push(object.Key);
          }
        }
      }
    } catch (error) {
      throw denied(error, 'ListObjectsV2 (s3:ListBucket) under', prefix);
    }
    // S3 lists in UTF-8 byte order already; pages are concatenated in that order.
    return keys;
  }

  public async delete(key: string): Promise<void> {
    // S3 answers 204 whether or not the key existed, which is the contract.
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw denied(error, 'DeleteObject', key);
    }
  }
}

/** S3's 403 AccessDenied as the core's {@link StorageAccessDeniedError}; any other error as it is. */
function denied(error: unknown, operation: string, key: string): unknown {
  return error instanceof S3ServiceException && error.name === 'AccessDenied'
    ? new StorageAccessDeniedError(operation, key, { cause: error })
    : error;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** Only a missing key: a missing bucket (NoSuchBucket, also 404) is a configuration error and must propagate. */
function isNoSuchKey(error: unknown): boolean {
  return error instanceof S3ServiceException && error.name === 'NoSuchKey';
}

/**
 * S3 answers a failed condition with 412 PreconditionFailed, and a write that raced another conditional write with
 * 409 ConditionalRequestConflict; `If-Match` on a key that does not exist answers 404 NoSuchKey. All three mean
 * the same to the caller: the object is not in the state it expected, so re-read and try again.
 */
function isConditionFailure(error: unknown, condition: PutCondition): boolean {
  if (!(error instanceof S3ServiceException)) {
    return false;
  }
  const status = statusOf(error);
  if (error.name === 'PreconditionFailed' || status === 412) {
    return true;
  }
  if (error.name === 'ConditionalRequestConflict' || status === 409) {
    return condition.ifMatch !== undefined || condition.ifNoneMatch !== undefined;
  }
  return condition.ifMatch !== undefined && isNoSuchKey(error);
}

function describeConditionFailure(key: string, condition: PutCondition): string {
  if (condition.ifMatch !== undefined) {
    return `"${key}" changed or disappeared since it was read (its etag is no longer ${condition.ifMatch}); re-read it and retry`;
  }
  return `"${key}" already exists; re-read it and retry`;
}
