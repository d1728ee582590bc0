/**
 * The embedded S3 server's storage: objects as files under the data directory, in the file layout s3rver used
 * (`<bucket>/<key>._S3rver_object`, `._S3rver_metadata.json` and `._S3rver_object.md5` beside it, multipart uploads
 * under `<bucket>/._S3rver_uploads/`), so data folders written by earlier versions keep working. It gives the
 * guarantees S3 gives:
 *
 * - a write is visible only once complete: bodies go to a temporary file that is renamed into place, so a failed or
 *   aborted upload leaves the previous object intact, and a response is sent only after the bytes are on disk;
 * - reads of one object are serialised with its writes (through the shared {@link KeyedMutex}), so a GET sees
 *   either the old or the new object, never a mix of old metadata and new bytes;
 * - listings are in UTF-8 byte order across directories, which S3 clients rely on when they paginate;
 * - temporary files live in one folder per bucket with short names, so that a key whose last segment is long
 *   (S3 allows 1,024 bytes) does not need a temporary file name over the file system's 255 bytes;
 * - listings pick regular files only and skip anything of the layout they cannot read, so one stray entry (say a
 *   folder named like an object file) cannot fail every listing around it.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Error } from './s3-error.js';
import type { KeyedMutex } from './s3-keyed-mutex.js';

/** The file name suffix of an object's bytes (`<name>._S3rver_object`). */
const OBJECT_SUFFIX = '._S3rver_object';
/** The folder of in-progress multipart uploads, at the root of each bucket. */
const UPLOADS_FOLDER = '._S3rver_uploads';
/** Temporary files of writes in progress, inside the uploads folder (which listings skip). */
const TEMPORARY_FOLDER = join(UPLOADS_FOLDER, '.partial');
/** The marker of the layout's file names (`<name>._S3rver_object`, `<name>._S3rver_metadata.json`...). */
export const LAYOUT_MARKER = '._S3rver_';
/**
 * The longest key segment this server can store: its longest file name, `<segment>._S3rver_metadata.json`, must
 * fit in the 255 bytes most file systems allow.
 */
export const MAX_KEY_SEGMENT_BYTES = 255 - `${LAYOUT_MARKER}metadata.json`.length;

/** The request headers S3 stores with an object and sends back on GET and HEAD (besides `x-amz-meta-*`). */
const STORED_HEADERS = new Set([
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-type',
  'expires',
  'x-amz-storage-class',
  'x-amz-website-redirect-location',
]);

/** An object's system metadata and stored headers. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  /** Quoted, as in the `ETag` header: `"<md5>"`, or `"<md5 of part md5s>-<parts>"` for a multipart upload. */
  readonly etag: string;
  readonly lastModified: Date;
  /** Lower-case header names: `content-type` (always present), `x-amz-meta-*`... */
  readonly headers: Readonly<Record<string, string>>;
}

/** An inclusive byte range. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** What a read does once the object's metadata is known: nothing more (304), or send it (a range of it). */
export type ReadPlan = { readonly kind: 'not-modified' } | { readonly kind: 'read'; readonly range?: ByteRange };

/** A read's result: the object, the plan's range, and an open stream of its bytes (when a body was asked for). */
export interface OpenedObject {
  readonly object: StoredObject;
  readonly plan: ReadPlan;
  readonly body?: ReadStream;
}

/** One part named in CompleteMultipartUpload. */
export interface CompletedPart {
  readonly partNumber: number;
  /** As the client sent it, quoted or not. */
  readonly etag: string;
}

/** Options of a listing, as ListObjects(V2) passes them. */
export interface ListOptions {
  readonly prefix: string;
  readonly delimiter: string;
  /** Keys up to and including this one are skipped. */
  readonly startAfter: string;
  readonly maxKeys: number;
}

/** One page of a listing. */
export interface ListResult {
  readonly objects: StoredObject[];
  readonly commonPrefixes: string[];
  /** Set when more keys follow: the last key this page covered (as an object or inside a common prefix). */
  readonly resumeAfter?: string;
}

/** The lock name of one object, shared by the store (reads) and the server (writes). */
export function objectLockKey(bucket: string, key: string): string {
  return `${bucket}/${key}`;
}

/** The header subset S3 stores with an object, from request headers. */
export function storedHeadersOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (STORED_HEADERS.has(name) || name.startsWith('x-amz-meta-')) {
      kept[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return kept;
}

/** Objects as files, atomic, read-consistent and correctly ordered (see the module comment). */
export class ConsistentFilesystemStore {
  public constructor(
    public readonly rootDirectory: string,
    private readonly locks: KeyedMutex,
  ) {}

  /** The folder of `bucket`. */
  public bucketPath(bucket: string): string {
    return join(this.rootDirectory, bucket);
  }

  /** Creates `bucket` if absent. */
  public async putBucket(bucket: string): Promise<void> {
    await mkdir(this.bucketPath(bucket), { recursive: true, mode: 0o755 });
  }

  /** Whether `bucket` exists. */
  public async bucketExists(bucket: string): Promise<boolean> {
    try {
      return (await stat(this.bucketPath(bucket))).isDirectory();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** Every bucket with its creation time. */
  public async listBuckets(): Promise<{ name: string; created: Date }[]> {
    const entries = await readdir(this.rootDirectory, { withFileTypes: true });
    const buckets = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    return Promise.all(
      buckets.sort().map(async (name) => ({ name, created: (await stat(this.bucketPath(name))).birthtime })),
    );
  }

  /** Deletes an empty bucket; S3's 409 BucketNotEmpty otherwise. */
  public async deleteBucket(bucket: string): Promise<void> {
    if ((await this.allKeys(bucket)).length > 0) {
      throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: bucket });
    }
    await rm(this.bucketPath(bucket), { recursive: true, force: true });
  }

  /** The object's metadata, or `undefined` when there is none. Not locked: callers hold the key's lock. */
  public async getMetadata(bucket: string, key: string): Promise<StoredObject | undefined> {
    const objectPath = this.resourcePath(bucket, key, 'object');
    let stats;
    try {
      stats = await stat(objectPath);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (!stats.isFile()) return undefined;
    const [stored, etag] = await Promise.all([
      readFile(this.resourcePath(bucket, key, 'metadata.json'), 'utf8').then(
        (text) => JSON.parse(text) as Record<string, string>,
        (error: unknown) => {
          if (isMissing(error)) return {};
          throw error;
        },
      ),
      readFile(`${objectPath}.md5`, 'utf8').catch(async (error: unknown) => {
        // A data folder edited by hand: the etag is the body's md5, as for any single-part upload.
        if (!isMissing(error)) throw error;
        const hash = createHash('md5');
        await pipeline(createReadStream(objectPath), hash);
        return hash.digest('hex');
      }),
    ]);
    const headers = storedHeadersOf(stored);
    headers['content-type'] ??= 'binary/octet-stream';
    return { key, size: stats.size, etag: JSON.stringify(etag.trim()), lastModified: stats.mtime, headers };
  }

  /**
   * Reads an object under its lock: `plan` decides from the metadata what to send (and may throw, say 412), and
   * the file is opened before the lock is released, so a later overwrite (a rename) cannot change what is sent.
   */
  public async openObject(
    bucket: string,
    key: string,
    plan: (object: StoredObject) => ReadPlan,
    withBody: boolean,
  ): Promise<OpenedObject | undefined> {
    return this.locks.run(objectLockKey(bucket, key), async () => {
      const object = await this.getMetadata(bucket, key);
      if (object === undefined) return undefined;
      const decided = plan(object);
      if (!withBody || decided.kind === 'not-modified' || object.size === 0) return { object, plan: decided };
      const range = decided.range ?? { start: 0, end: object.size - 1 };
      const body = createReadStream(this.resourcePath(bucket, key, 'object'), range);
      await new Promise<void>((resolveOpen, rejectOpen) => {
        body.once('open', () => resolveOpen());
        body.once('error', rejectOpen);
      });
      return { object, plan: decided, body };
    });
  }

  /**
   * Stores `content` as the object; the caller holds the key's lock. `contentMd5` (base64, from `Content-MD5`) is
   * checked before the object becomes visible: S3's 400 BadDigest when it differs.
   */
  public async putObject(
    bucket: string,
    key: string,
    content: Readable,
    headers: Readonly<Record<string, string>>,
    contentMd5?: string,
  ): Promise<StoredObject> {
    const objectPath = this.resourcePath(bucket, key, 'object');
    const { md5, temporaryPath } = await this.writeHashed(bucket, objectPath, content);
    await this.commit(bucket, key, temporaryPath, md5, headers, () => {
      if (contentMd5 !== undefined && Buffer.from(md5, 'hex').toString('base64') !== contentMd5) {
        throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
    });
    return this.metadataOrFail(bucket, key);
  }

  /**
   * Copies an object (its bytes through a temporary file, so the target changes atomically); the caller holds the
   * target's lock. `headers` replaces the stored headers (`x-amz-metadata-directive: REPLACE`); else they are copied.
   */
  public async copyObject(
    source: { readonly bucket: string; readonly key: string },
    bucket: string,
    key: string,
    headers: Readonly<Record<string, string>> | undefined,
  ): Promise<StoredObject> {
    const sameKey = source.bucket === bucket && source.key === key;
    const copyUnderLock = async (): Promise<{ temporaryPath: string; etag: string; kept: Record<string, string> }> => {
      const original = await this.getMetadata(source.bucket, source.key);
      if (original === undefined) {
        throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: source.key });
      }
      const temporaryPath = await this.temporaryPath(bucket);
      await copyFile(this.resourcePath(source.bucket, source.key, 'object'), temporaryPath);
      return { temporaryPath, etag: JSON.parse(original.etag) as string, kept: { ...original.headers } };
    };
    // The caller holds the target's lock; the source's is taken here unless it is the same key (not re-entrant).
    const copied = sameKey
      ? await copyUnderLock()
      : await this.locks.run(objectLockKey(source.bucket, source.key), copyUnderLock);
    await mkdir(dirname(this.resourcePath(bucket, key, 'object')), { recursive: true });
    await this.commit(bucket, key, copied.temporaryPath, copied.etag, headers ?? copied.kept);
    return this.metadataOrFail(bucket, key);
  }

  /** Removes an object and the folders it leaves empty; the caller holds the key's lock. */
  public async deleteObject(bucket: string, key: string): Promise<void> {
    await Promise.all(
      ['object', 'object.md5', 'metadata.json'].map((resource) =>
        unlink(this.resourcePath(bucket, key, resource)).catch((error: unknown) => {
          if (!isMissing(error)) throw error;
        }),
      ),
    );
    const segments = key.split('/').slice(0, -1);
    while (segments.length > 0) {
      try {
        await rmdir(join(this.bucketPath(bucket), ...segments));
      } catch {
        break; // not empty (or already gone): the folders above are not empty either
      }
      segments.pop();
    }
  }

  /** Starts a multipart upload; returns its id. */
  public async createUpload(bucket: string, key: string, headers: Readonly<Record<string, string>>): Promise<string> {
    const uploadId = randomBytes(16).toString('hex');
    const folder = this.uploadFolder(bucket, uploadId);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'metadata'), JSON.stringify(headers));
    // Written last: an upload exists once its key file does.
    await writeFile(join(folder, 'key'), key);
    return uploadId;
  }

  /** Stores one part of an upload; returns its quoted etag. */
  public async putPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    content: Readable,
    contentMd5?: string,
  ): Promise<string> {
    const folder = await this.existingUpload(bucket, key, uploadId);
    const partPath = join(folder, String(partNumber));
    const { md5, temporaryPath } = await this.writeHashed(bucket, partPath, content);
    try {
      if (contentMd5 !== undefined && Buffer.from(md5, 'hex').toString('base64') !== contentMd5) {
        throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
      await this.writeFileAtomically(bucket, `${partPath}.md5`, md5);
      await rename(temporaryPath, partPath);
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
    return JSON.stringify(md5);
  }

  /**
   * Assembles an upload's parts into the object, as S3 does: the parts named must exist with the etags given, in
   * ascending order, and every one but the last must have at least `minPartBytes`. The caller holds the key's lock.
   */
  public async completeUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    minPartBytes: number,
  ): Promise<StoredObject> {
    const folder = await this.existingUpload(bucket, key, uploadId);
    if (parts.length === 0) {
      throw new S3Error('MalformedXML', 'You must specify at least one part in CompleteMultipartUpload.');
    }
    if (parts.some((part, index) => index > 0 && part.partNumber <= (parts[index - 1]?.partNumber ?? 0))) {
      throw new S3Error(
        'InvalidPartOrder',
        'The list of parts was not in ascending order. Parts must be ordered by part number.',
        { UploadId: uploadId },
      );
    }
    const md5s: string[] = [];
    for (const [index, part] of parts.entries()) {
      const partPath = join(folder, String(part.partNumber));
      const md5 = await readFile(`${partPath}.md5`, 'utf8').catch(() => undefined);
      if (md5 === undefined || md5 !== part.etag.replace(/^"(.*)"$/s, '$1')) {
        throw new S3Error(
          'InvalidPart',
          "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
          { UploadId: uploadId, PartNumber: part.partNumber, ETag: part.etag },
        );
      }
      const size = (await stat(partPath)).size;
      if (index < parts.length - 1 && size < minPartBytes) {
        throw new S3Error(
          'EntityTooSmall',
          `Your proposed upload is smaller than the minimum allowed size (${minPartBytes} bytes per part but the last).`,
          {
            PartNumber: part.partNumber,
            ProposedSize: size,
            MinSizeAllowed: minPartBytes,
          },
        );
      }
      md5s.push(md5);
    }
    const headers = JSON.parse(await readFile(join(folder, 'metadata'), 'utf8')) as Record<string, string>;
    const partPaths = parts.map((part) => join(folder, String(part.partNumber)));
    const objectPath = this.resourcePath(bucket, key, 'object');
    const { temporaryPath } = await this.writeHashed(
      bucket,
      objectPath,
      Readable.from(
        (async function* concatenate() {
          for (const partPath of partPaths) yield* createReadStream(partPath);
        })(),
      ),
    );
    // S3's multipart etag: the md5 of the parts' binary md5s, and the number of parts.
    const etag = `${createHash('md5')
      .update(Buffer.from(md5s.join(''), 'hex'))
      .digest('hex')}-${parts.length}`;
    await this.commit(bucket, key, temporaryPath, etag, storedHeadersOf(headers));
    await rm(folder, { recursive: true, force: true });
    return this.metadataOrFail(bucket, key);
  }

  /** Discards an upload and its parts. */
  public async abortUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await rm(await this.existingUpload(bucket, key, uploadId), { recursive: true, force: true });
  }

  /** One page of keys under `options.prefix`, in UTF-8 byte order, with common prefixes when a delimiter is set. */
  public async listObjects(bucket: string, options: ListOptions): Promise<ListResult> {
    const { prefix, startAfter, delimiter, maxKeys } = options;
    const keys = (await this.allKeys(bucket))
      .filter((key) => key.startsWith(prefix) && compareUtf8(key, startAfter) > 0)
      .sort(compareUtf8);

    const objectKeys: string[] = [];
    const commonPrefixes: string[] = [];
    let resumeAfter: string | undefined;
    let lastCovered: string | undefined;
    for (const key of keys) {
      const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
      const commonPrefix = cut === -1 ? undefined : key.slice(0, cut + delimiter.length);
      if (commonPrefix !== undefined && commonPrefix === commonPrefixes[commonPrefixes.length - 1]) {
        lastCovered = key;
        continue;
      }
      if (objectKeys.length + commonPrefixes.length >= maxKeys) {
        resumeAfter = lastCovered;
        break;
      }
      if (commonPrefix === undefined) objectKeys.push(key);
      else commonPrefixes.push(commonPrefix);
      lastCovered = key;
    }

    const objects: StoredObject[] = [];
    for (const key of objectKeys) {
      try {
        const object = await this.getMetadata(bucket, key);
        // Deleted between the directory scan and this read: S3 would not list it either.
        if (object !== undefined) objects.push(object);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
      }
    }
    return { objects, commonPrefixes, ...(resumeAfter === undefined ? {} : { resumeAfter }) };
  }

  /** The file of one of an object's resources (`object`, `metadata.json`, `object.md5`). */
  private resourcePath(bucket: string, key: string, resource: string): string {
    const segments = key.split('/');
    const last = segments.pop() ?? '';
    return join(this.rootDirectory, bucket, ...segments, `${last}${LAYOUT_MARKER}${resource}`);
  }

  private uploadFolder(bucket: string, uploadId: string): string {
    return join(this.bucketPath(bucket), UPLOADS_FOLDER, uploadId);
  }

  /** The folder of an upload of `key`; S3's 404 NoSuchUpload for an unknown id or another key's upload. */
  private async existingUpload(bucket: string, key: string, uploadId: string): Promise<string> {
    const noSuchUpload = new S3Error(
      'NoSuchUpload',
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { UploadId: uploadId },
    );
    // The id becomes a folder name: only ids this store issued are looked up.
    if (!/^[0-9a-f]{32}$/.test(uploadId)) throw noSuchUpload;
    const folder = this.uploadFolder(bucket, uploadId);
    const uploadKey = await readFile(join(folder, 'key'), 'utf8').catch(() => undefined);
    if (uploadKey !== key) throw noSuchUpload;
    return folder;
  }

  private async metadataOrFail(bucket: string, key: string): Promise<StoredObject> {
    const object = await this.getMetadata(bucket, key);
    if (object === undefined) throw new Error(`the object "${key}" vanished right after it was written`);
    return object;
  }

  /**
   * Makes a staged body the object: metadata and etag first, the bytes' rename last (the step that makes it
   * visible). `check` runs first and may refuse; the staged file is removed on any failure.
   */
  private async commit(
    bucket: string,
    key: string,
    temporaryPath: string,
    etag: string,
    headers: Readonly<Record<string, string>>,
    check: () => void = () => undefined,
  ): Promise<void> {
    try {
      check();
      await this.writeFileAtomically(bucket, this.resourcePath(bucket, key, 'object.md5'), etag);
      await this.writeFileAtomically(
        bucket,
        this.resourcePath(bucket, key, 'metadata.json'),
        JSON.stringify(storedHeadersOf(headers), null, 2),
      );
      await rename(temporaryPath, this.resourcePath(bucket, key, 'object'));
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  /** A new temporary file name for `bucket`: same file system as its objects (a rename is atomic), short. */
  private async temporaryPath(bucket: string): Promise<string> {
    const folder = join(this.bucketPath(bucket), TEMPORARY_FOLDER);
    await mkdir(folder, { recursive: true });
    return join(folder, `${randomUUID()}.partial`);
  }

  /** Streams `content` to a temporary file, hashing it on the way; creates the folder of `finalPath`. */
  private async writeHashed(
    bucket: string,
    finalPath: string,
    content: Readable,
  ): Promise<{ size: number; md5: string; temporaryPath: string }> {
    await mkdir(dirname(finalPath), { recursive: true });
    const temporaryPath = await this.temporaryPath(bucket);
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

  private async writeFileAtomically(bucket: string, path: string, data: string): Promise<void> {
    const temporaryPath = await this.temporaryPath(bucket);
    try {
      await writeFile(temporaryPath, data);
      await rename(temporaryPath, path);
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  /** Every key stored in `bucket`, unsorted. */
  private async allKeys(bucket: string): Promise<string[]> {
    const root = this.bucketPath(bucket);
    let entries;
    try {
      entries = await readdir(root, { recursive: true, withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    return (
      entries
        // Regular files named `<name>._S3rver_object`, under no folder of the layout (a stray such folder, left by
        // an older version, would otherwise list keys whose metadata cannot be read).
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

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
