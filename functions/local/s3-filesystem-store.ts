/**
 * The embedded S3 server's storage: s3rver's `FilesystemStore` (objects as files under the data directory) with
 * the guarantees S3 gives and s3rver 3.7 does not:
 *
 * - a write is visible only once complete: bodies go to a temporary file that is renamed into place, so a failed or
 *   aborted upload leaves the previous object intact, and a response is sent only after the bytes are on disk
 *   (s3rver answers as soon as its hashing stream ends, before the file stream has flushed);
 * - reads of one object are serialised with its writes (through the shared {@link KeyedMutex}), so a GET sees
 *   either the old or the new object, never a mix of old metadata and new bytes;
 * - listings are in UTF-8 byte order across directories, which S3 clients rely on when they paginate (s3rver walks
 *   directories depth-first, so `a/b` came before `a.txt` and pages could skip keys);
 * - a truncated ListObjectsV2 page is reported through {@link listingPages} instead of to s3rver, whose
 *   continuation tokens use DES, a cipher OpenSSL 3 (Node 17 and later) no longer provides;
 * - temporary files live in one folder per bucket with short names, so that a key whose last segment is long
 *   (S3 allows 1,024 bytes) does not need a temporary file name over the file system's 255 bytes;
 * - listings pick regular files only and skip anything of s3rver's layout they cannot read, so one stray entry
 *   (say a folder named like an object file) cannot fail every listing around it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KeyedMutex } from './s3-keyed-mutex.js';
import { FilesystemStore, S3Object } from './s3-vendor.js';
import type { S3rverListOptions, S3rverListResult, S3rverMetadata, S3rverObject } from './s3-vendor.js';

/** s3rver's file name suffix of an object's bytes (`<name>._S3rver_object`). */
const OBJECT_SUFFIX = '._S3rver_object';
/** s3rver's folder of in-progress multipart uploads, at the root of each bucket. */
const UPLOADS_FOLDER = '._S3rver_uploads';
/** Temporary files of writes in progress, inside the uploads folder (which listings skip). */
const TEMPORARY_FOLDER = join(UPLOADS_FOLDER, '.partial');
/** The marker of s3rver's file names (`<name>._S3rver_object`, `<name>._S3rver_metadata.json`...). */
export const LAYOUT_MARKER = '._S3rver_';
/**
 * The longest key segment this server can store: its longest file name, `<segment>._S3rver_metadata.json`, must
 * fit in the 255 bytes most file systems allow.
 */
export const MAX_KEY_SEGMENT_BYTES = 255 - `${LAYOUT_MARKER}metadata.json`.length;

/** Where a ListObjectsV2 request learns whether its page was truncated, and after which key the next one starts. */
export interface ListingPage {
  /** Set when more keys follow: the last key this page covered (as an object or inside a common prefix). */
  resumeAfter?: string;
}

/**
 * The listing page of the ListObjectsV2 request being served. Within it, the store reports truncation here and
 * tells s3rver the page is complete, so that s3rver never computes its own (DES-based) continuation token.
 */
export const listingPages = new AsyncLocalStorage<ListingPage>();

/** The lock name of one object, shared by the store (reads) and the server middleware (writes). */
export function objectLockKey(bucket: string, key: string): string {
  return `${bucket}/${key}`;
}

/** s3rver's filesystem store made atomic, read-consistent and correctly ordered (see the module comment). */
export class ConsistentFilesystemStore extends FilesystemStore {
  public constructor(
    rootDirectory: string,
    private readonly locks: KeyedMutex,
  ) {
    super(rootDirectory);
  }

  public override async getObject(
    bucket: string,
    key: string,
    options?: { start?: number; end?: number },
  ): Promise<unknown> {
    // s3rver opens the file before it resolves; once open, a later rename cannot change what this read returns.
    return this.locks.run(objectLockKey(bucket, key), () => super.getObject(bucket, key, options));
  }

  public override async putObject(object: S3rverObject): Promise<{ size: number; md5: string }> {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    const content = object.content ?? Buffer.alloc(0);
    const { size, md5, temporaryPath } = await writeHashed(
      objectPath,
      this.temporaryFolder(object.bucket),
      Buffer.isBuffer(content) ? Readable.from([content]) : content,
    );
    try {
      await this.putMetadata(object.bucket, object.key, object.metadata, md5);
      await rename(temporaryPath, objectPath);
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
    return { size, md5 };
  }

  public override async putMetadata(
    bucket: string,
    key: string,
    metadata: S3rverMetadata,
    md5?: string,
  ): Promise<void> {
    const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');
    // s3rver keeps the standard headers it knows and the user's x-amz-meta-*; the rest (auth, checksums) is dropped.
    const kept = new S3Object(bucket, key, null, metadata).metadata;
    const stored = Object.fromEntries(
      Object.entries(kept).filter(([name]) => !['etag', 'last-modified', 'content-length'].includes(name)),
    );
    await mkdir(dirname(metadataPath), { recursive: true });
    if (md5 !== undefined) {
      await writeFileAtomically(this.getResourcePath(bucket, key, 'object.md5'), this.temporaryFolder(bucket), md5);
    }
    await writeFileAtomically(metadataPath, this.temporaryFolder(bucket), JSON.stringify(stored, null, 2));
  }

  public override async putPart(
    bucket: string,
    uploadId: string,
    partNumber: number | string,
    content: Readable,
  ): Promise<{ size: number; md5: string }> {
    const partPath = join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    const { size, md5, temporaryPath } = await writeHashed(partPath, this.temporaryFolder(bucket), content);
    try {
      await writeFileAtomically(`${partPath}.md5`, this.temporaryFolder(bucket), md5);
      await rename(temporaryPath, partPath);
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
    return { size, md5 };
  }

  public override async listObjects(bucket: string, options: S3rverListOptions): Promise<S3rverListResult> {
    const prefix = options.prefix ?? '';
    const startAfter = options.startAfter ?? '';
    const delimiter = options.delimiter ?? '';
    const maxKeys = options.maxKeys ?? Number.POSITIVE_INFINITY;

    const keys = (await this.allKeys(bucket))
      .filter((key) => key.startsWith(prefix) && compareUtf8(key, startAfter) > 0)
      .sort(compareUtf8);

    const objectKeys: string[] = [];
    const commonPrefixes = new Set<string>();
    let isTruncated = false;
    let lastCovered: string | undefined;
    for (const key of keys) {
      const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
      if (cut !== -1) {
        commonPrefixes.add(key.slice(0, cut + delimiter.length));
        lastCovered = key;
        continue;
      }
      if (objectKeys.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      objectKeys.push(key);
      lastCovered = key;
    }
    const page = listingPages.getStore();
    if (page !== undefined && isTruncated) {
      page.resumeAfter = lastCovered;
      isTruncated = false;
    }

    const objects: S3rverObject[] = [];
    for (const key of objectKeys) {
      try {
        objects.push(new S3Object(bucket, key, null, await this.getMetadata(bucket, key)));
      } catch (error) {
        // Deleted between the directory scan and this read: S3 would not list it either.
        if (!['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) {
          throw error;
        }
      }
    }
    return { objects, commonPrefixes: [...commonPrefixes].sort(compareUtf8), isTruncated };
  }

  /** Where writes to `bucket` stage their bytes: same file system (so a rename is atomic), short names. */
  private temporaryFolder(bucket: string): string {
    return join(this.getBucketPath(bucket), TEMPORARY_FOLDER);
  }

  /** Every key stored in `bucket`, unsorted. */
  private async allKeys(bucket: string): Promise<string[]> {
    const root = this.getBucketPath(bucket);
    let entries;
    try {
      entries = await readdir(root, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return [];
      }
      throw error;
    }
    return (
      entries
        // Regular files named `<name>._S3rver_object`, under no folder of s3rver's layout (a stray such folder,
        // left by an older version, would otherwise list keys whose metadata cannot be read).
        .filter((entry) => entry.isFile() && entry.name.endsWith(OBJECT_SUFFIX))
        .map((entry) => relative(root, join(entry.parentPath, entry.name)))
        .filter((path) => !path.startsWith(UPLOADS_FOLDER + sep))
        .map((path) => path.slice(0, -OBJECT_SUFFIX.length).split(sep))
        .filter((segments) => segments.every((segment) => !segment.includes(LAYOUT_MARKER)))
        .map((segments) => segments.join('/'))
    );
  }
}

/** S3's key order: by UTF-8 bytes (JavaScript's default sort compares UTF-16 units, which differs above U+FFFF). */
function compareUtf8(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/** Streams `content` to a temporary file beside `finalPath`, hashing it on the way. */
async function writeHashed(
  finalPath: string,
  temporaryFolder: string,
  content: Readable,
): Promise<{ size: number; md5: string; temporaryPath: string }> {
  await mkdir(dirname(finalPath), { recursive: true });
  await mkdir(temporaryFolder, { recursive: true });
  const temporaryPath = join(temporaryFolder, `${randomUUID()}.partial`);
  const hash = createHash('md5');
  let size = 0;
  try {
    await pipeline(
      content,
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      }),
      createWriteStream(temporaryPath),
    );
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
  return { size, md5: hash.digest('hex'), temporaryPath };
}

async function writeFileAtomically(path: string, temporaryFolder: string, data: string): Promise<void> {
  await mkdir(temporaryFolder, { recursive: true });
  const temporaryPath = join(temporaryFolder, `${randomUUID()}.partial`);
  try {
    await writeFile(temporaryPath, data);
    await rename(temporaryPath, path);
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}
