/**
 * {@link BlobStore} on Amazon S3 (or any S3-compatible server, such as the embedded one of `npm start`).
 */
import { setMaxListeners } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
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
  /**
   * How {@link S3BlobStore.putFile} uploads a file: one PutObject up to `partBytes`, else a multipart upload of
   * `partBytes` parts (S3 wants at least 5 MiB but for the last) with `concurrency` of them in flight. Memory is
   * `concurrency` × `partBytes`, whatever the file's size.
   * @default { partBytes: 8 MiB, concurrency: 4 }
   */
  readonly upload?: { readonly partBytes?: number; readonly concurrency?: number };
}

/** Defaults of {@link S3BlobStoreOptions.upload}, as constants so the README can quote them. */
export const S3_UPLOAD_DEFAULTS = {
  /** Bytes per part, and the largest file sent with one PutObject. */
  partBytes: 8 * 1024 * 1024,
  /** Parts in flight at once. */
  concurrency: 4,
} as const;

/** S3's smallest part (every part but the last), and its largest part count. */
const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
const S3_MAX_PARTS = 10_000;

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
  private readonly uploadPartBytes: number;
  private readonly uploadConcurrency: number;

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
    const partBytes = options.upload?.partBytes ?? S3_UPLOAD_DEFAULTS.partBytes;
    const concurrency = options.upload?.concurrency ?? S3_UPLOAD_DEFAULTS.concurrency;
    if (!Number.isInteger(partBytes) || partBytes < S3_MIN_PART_BYTES) {
      throw new RangeError(
        `upload.partBytes must be an integer of at least ${S3_MIN_PART_BYTES} (5 MiB), got ${partBytes}`,
      );
    }
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`upload.concurrency must be a positive integer, got ${concurrency}`);
    }
    this.uploadPartBytes = partBytes;
    this.uploadConcurrency = concurrency;
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
          ContentType: contentTypeOf(key),
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

  /**
   * Streams `file` to `key`. Up to the part size, one PutObject of the file's bytes (a buffer no larger than a
   * part). Above it, a multipart upload: parts read from the file at their offsets into one buffer per worker,
   * `concurrency` in flight, so memory is bounded by `concurrency` × `partBytes`; the condition goes on
   * CompleteMultipartUpload (S3 checks `If-None-Match` / `If-Match` there), so the object appears whole, or not at
   * all. Any failure aborts the multipart upload: no object and no stored parts are left behind.
   */
  public async putFile(key: string, file: string, condition: PutCondition = {}): Promise<{ etag: string }> {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size <= this.uploadPartBytes) {
        const body = Buffer.allocUnsafe(size);
        await readFully(handle, body, 0);
        return await this.put(key, body, condition);
      }
      return await this.putMultipart(key, handle, size, condition);
    } finally {
      await handle.close();
    }
  }

  private async putMultipart(
    key: string,
    handle: FileHandle,
    size: number,
    condition: PutCondition,
  ): Promise<{ etag: string }> {
    // A file past 10,000 parts of the configured size gets larger parts: S3 refuses more parts.
    const partBytes = Math.max(this.uploadPartBytes, Math.ceil(size / S3_MAX_PARTS));
    const count = Math.ceil(size / partBytes);
    let uploadId: string | undefined;
    try {
      // CRC32 per part, as the SDK computes it for every upload: declared up front so S3 accepts the parts' sums.
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          ContentType: contentTypeOf(key),
          ChecksumAlgorithm: 'CRC32',
        }),
      );
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new Error(`S3 answered CreateMultipartUpload of "${key}" without an UploadId`);
      const id = uploadId;
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      const parts: CompletedPart[] = new Array(count);
      let next = 0;
      const worker = async (): Promise<void> => {
        const buffer = Buffer.allocUnsafe(Math.min(partBytes, size));
        while (next < count && !controller.signal.aborted) {
          const index = next++;
          const start = index * partBytes;
          const body = buffer.subarray(0, Math.min(partBytes, size - start));
          await readFully(handle, body, start);
          const answer = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: id,
              PartNumber: index + 1,
              Body: body,
              ContentLength: body.byteLength,
              ChecksumAlgorithm: 'CRC32',
            }),
            { abortSignal: controller.signal },
          );
          parts[index] = {
            PartNumber: index + 1,
            ETag: answer.ETag,
            ...(answer.ChecksumCRC32 === undefined ? {} : { ChecksumCRC32: answer.ChecksumCRC32 }),
          };
        }
      };
      // The first failure stops the other parts at once; all have stopped before the upload is aborted.
      let failure: { error: unknown } | undefined;
      await Promise.all(
        Array.from({ length: Math.min(this.uploadConcurrency, count) }, () =>
          worker().catch((error: unknown) => {
            failure ??= { error };
            controller.abort(error);
          }),
        ),
      );
      if (failure !== undefined) throw failure.error;
      const completed = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: id,
          MultipartUpload: { Parts: parts },
          ...(condition.ifMatch === undefined ? {} : { IfMatch: condition.ifMatch }),
          ...(condition.ifNoneMatch === undefined ? {} : { IfNoneMatch: condition.ifNoneMatch }),
        }),
      );
      return { etag: completed.ETag ?? '' };
    } catch (error) {
      if (uploadId !== undefined) {
        // Best effort: the bucket's lifecycle rule removes an upload whose abort failed too (infra/model-bucket.ts).
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      }
      if (isConditionFailure(error, condition)) {
        throw new PreconditionFailedError(describeConditionFailure(key, condition), { cause: error });
      }
      throw denied(error, 'PutObject (multipart)', key);
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

function contentTypeOf(key: string): string {
  return key.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

/** Fills `buffer` from `handle` at `position`; a file that ends early is an error (it changed under us). */
async function readFully(handle: FileHandle, buffer: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < buffer.byteLength) {
    const { bytesRead } = await handle.read(buffer, offset, buffer.byteLength - offset, position + offset);
    if (bytesRead === 0) throw new Error(`the file ended ${buffer.byteLength - offset} bytes early while uploading it`);
    offset += bytesRead;
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
