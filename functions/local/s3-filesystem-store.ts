/**
 * The embedded S3 server's storage: objects as files under the data directory, one folder per key named by the
 * SHA-256 of the key, so that any key S3 accepts (up to 1,024 bytes, any characters, `a//b` apart from `a/b`) maps
 * to files losslessly and no key can name a path outside its bucket's folder or collide with the store's own files:
 *
 * ```
 * <dataDir>/<bucket>/layout.json                       which layout this folder has (see LAYOUT)
 * <dataDir>/<bucket>/objects/<sha256 of key>/key       the key, UTF-8
 *                                           /object    the bytes
 *                                           /object.md5, metadata.json   the etag; the stored headers
 * <dataDir>/<bucket>/uploads/<upload id>/              multipart uploads in progress: key, metadata, parts
 * <dataDir>/<bucket>/staging/                          writes in progress (temporary files, renamed into place)
 * ```
 *
 * A bucket folder in the layout earlier versions wrote (s3rver's: `<key>._S3rver_object` files in one folder per
 * key segment) is migrated when the server starts: its objects are linked into the new layout beside it, then the
 * folders are swapped, so an interrupted migration starts again from the untouched original.
 *
 * It gives the guarantees S3 gives:
 *
 * - a write is visible only once complete: bodies go to a temporary file that is renamed into place, so a failed or
 *   aborted upload leaves the previous object intact, and a response is sent only after the bytes are on disk;
 * - reads of one object are serialised with its writes (through the shared {@link KeyedMutex}), so a GET sees
 *   either the old or the new object, never a mix of old metadata and new bytes;
 * - a multipart upload's parts, completion and abort are serialised per upload, so a race between them ends in
 *   S3's NoSuchUpload, never in a half-assembled object;
 * - listings are in UTF-8 byte order, which S3 clients rely on when they paginate.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Error } from './s3-error.js';
import type { KeyedMutex } from './s3-keyed-mutex.js';
import { isValidBucketName } from './s3-names.js';

/** The file that marks a bucket folder as written in this layout. */
const LAYOUT_FILE = 'layout.json';
/** What {@link LAYOUT_FILE} holds. */
const LAYOUT = { layout: 'one folder per key, named by the sha256 of the key', version: 2 } as const;
const OBJECTS_FOLDER = 'objects';
const UPLOADS_FOLDER = 'uploads';
const STAGING_FOLDER = 'staging';
/** The marker of s3rver's file names (`<name>._S3rver_object`...), the layout migrated from. */
const LEGACY_MARKER = '._S3rver_';

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
  /** Keys by object folder name: a folder's key never changes (its name is the key's hash), so it is read once. */
  private readonly keyOfFolder = new Map<string, string>();

  public constructor(
    public readonly rootDirectory: string,
    private readonly locks: KeyedMutex,
  ) {}

  /** The folder of `bucket`. */
  public bucketPath(bucket: string): string {
    return join(this.rootDirectory, bucket);
  }

  /**
   * Creates `bucket` if absent; a bucket folder in the layout of earlier versions is migrated (see the module
   * comment). Called once per bucket at start and by CreateBucket.
   */
  public async putBucket(bucket: string): Promise<void> {
    const folder = this.bucketPath(bucket);
    const legacy = join(this.rootDirectory, `.legacy-${bucket}`);
    // A migration that stopped between its two renames: the original is intact under its legacy name.
    if (!(await exists(folder)) && (await exists(legacy))) await rename(legacy, folder);
    if (await exists(join(folder, LAYOUT_FILE))) return;
    const entries = await readdir(folder).catch((error: unknown) => {
      if (isMissing(error)) return [];
      throw error;
    });
    if (entries.length === 0) {
      await this.createLayout(folder);
      return;
    }
    const migrating = join(this.rootDirectory, `.migrating-${bucket}`);
    await rm(migrating, { recursive: true, force: true });
    await this.createLayout(migrating, async () => {
      for (const [key, legacyObject] of await legacyObjects(folder)) {
        const target = join(migrating, OBJECTS_FOLDER, keyFolderName(key));
        await mkdir(target);
        await writeFile(join(target, 'key'), key);
        for (const [from, to] of [
          ['metadata.json', 'metadata.json'],
          ['object.md5', 'object.md5'],
          ['object', 'object'],
        ] as const) {
          const source = `${legacyObject}${LEGACY_MARKER}${from}`;
          // Hard links leave the original untouched until the swap; copy where links are not supported.
          await link(source, join(target, to)).catch(async (error: unknown) => {
            if (isMissing(error)) return;
            await copyFile(source, join(target, to));
          });
        }
      }
    });
    await rename(folder, legacy);
    await rename(migrating, folder);
    await rm(legacy, { recursive: true, force: true });
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
    // Folders of a migration in progress (`.migrating-<bucket>`) are not buckets.
    const buckets = entries
      .filter((entry) => entry.isDirectory() && isValidBucketName(entry.name))
      .map((entry) => entry.name);
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
    const objectPath = this.objectFile(bucket, key, 'object');
    let stats;
    try {
      stats = await stat(objectPath);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (!stats.isFile()) return undefined;
    const [stored, etag] = await Promise.all([
      readFile(this.objectFile(bucket, key, 'metadata.json'), 'utf8').then(
        (text) => JSON.parse(text) as Record<string, string>,
        (error: unknown) => {
          if (isMissing(error)) return {};
          throw error;
        },
      ),
      readFile(this.objectFile(bucket, key, 'object.md5'), 'utf8').catch(async (error: unknown) => {
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
      const body = createReadStream(this.objectFile(bucket, key, 'object'), range);
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
    const { md5, temporaryPath } = await this.writeHashed(bucket, content);
    await this.commit(bucket, key, temporaryPath, md5, headers, () => checkContentMd5(md5, contentMd5));
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
      await copyFile(this.objectFile(source.bucket, source.key, 'object'), temporaryPath);
      return { temporaryPath, etag: JSON.parse(original.etag) as string, kept: { ...original.headers } };
    };
    // The caller holds the target's lock; the source's is taken here unless it is the same key (not re-entrant).
    const copied = sameKey
      ? await copyUnderLock()
      : await this.locks.run(objectLockKey(source.bucket, source.key), copyUnderLock);
    await this.commit(bucket, key, copied.temporaryPath, copied.etag, headers ?? copied.kept);
    return this.metadataOrFail(bucket, key);
  }

  /** Removes an object (its folder); the caller holds the key's lock. */
  public async deleteObject(bucket: string, key: string): Promise<void> {
    await rm(this.objectFolder(bucket, key), { recursive: true, force: true });
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

  /**
   * Stores one part of an upload; returns its quoted etag. The body streams without the upload's lock (parts of one
   * upload arrive in parallel); it is moved into the upload under the lock, if the upload still exists.
   */
  public async putPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    content: Readable,
    contentMd5?: string,
  ): Promise<string> {
    await this.existingUpload(bucket, key, uploadId);
    const { md5, temporaryPath } = await this.writeHashed(bucket, content);
    try {
      checkContentMd5(md5, contentMd5);
      await this.locks.run(uploadLockKey(bucket, uploadId), async () => {
        const folder = await this.existingUpload(bucket, key, uploadId);
        const partPath = join(folder, String(partNumber));
        await this.writeFileAtomically(bucket, `${partPath}.md5`, md5);
        await rename(temporaryPath, partPath);
      });
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
    return this.locks.run(uploadLockKey(bucket, uploadId), async () => {
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
      const { temporaryPath } = await this.writeHashed(
        bucket,
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
    });
  }

  /** Discards an upload and its parts. */
  public async abortUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.locks.run(uploadLockKey(bucket, uploadId), async () => {
      await rm(await this.existingUpload(bucket, key, uploadId), { recursive: true, force: true });
    });
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
      const object = await this.getMetadata(bucket, key);
      // Deleted between the directory scan and this read: S3 would not list it either.
      if (object !== undefined) objects.push(object);
    }
    return { objects, commonPrefixes, ...(resumeAfter === undefined ? {} : { resumeAfter }) };
  }

  /** The folder of an object. */
  private objectFolder(bucket: string, key: string): string {
    return join(this.bucketPath(bucket), OBJECTS_FOLDER, keyFolderName(key));
  }

  /** One of an object's files (`object`, `metadata.json`, `object.md5`, `key`). */
  private objectFile(bucket: string, key: string, file: string): string {
    return join(this.objectFolder(bucket, key), file);
  }

  private uploadFolder(bucket: string, uploadId: string): string {
    return join(this.bucketPath(bucket), UPLOADS_FOLDER, uploadId);
  }

  /** Writes the layout's folders and marker into `folder`, after `populate` (a migration's copy) has run. */
  private async createLayout(folder: string, populate: () => Promise<void> = async () => undefined): Promise<void> {
    for (const child of [OBJECTS_FOLDER, UPLOADS_FOLDER, STAGING_FOLDER]) {
      await mkdir(join(folder, child), { recursive: true, mode: 0o755 });
    }
    await populate();
    // Written last: a folder holding it is complete.
    await writeFile(join(folder, LAYOUT_FILE), `${JSON.stringify(LAYOUT)}\n`);
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
    if (object === undefined) throw new Error('an object vanished right after it was written');
    return object;
  }

  /**
   * Makes a staged body the object: key, metadata and etag first, the bytes' rename last (the step that makes it
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
      await mkdir(this.objectFolder(bucket, key), { recursive: true });
      await this.writeFileAtomically(bucket, this.objectFile(bucket, key, 'key'), key);
      await this.writeFileAtomically(bucket, this.objectFile(bucket, key, 'object.md5'), etag);
      await this.writeFileAtomically(
        bucket,
        this.objectFile(bucket, key, 'metadata.json'),
        JSON.stringify(storedHeadersOf(headers), null, 2),
      );
      await rename(temporaryPath, this.objectFile(bucket, key, 'object'));
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  /** A new temporary file name for `bucket`: same file system as its objects (a rename is atomic). */
  private async temporaryPath(bucket: string): Promise<string> {
    const folder = join(this.bucketPath(bucket), STAGING_FOLDER);
    await mkdir(folder, { recursive: true });
    return join(folder, `${randomUUID()}.partial`);
  }

  /** Streams `content` to a temporary file, hashing it on the way. */
  private async writeHashed(
    bucket: string,
    content: Readable,
  ): Promise<{ size: number; md5: string; temporaryPath: string }> {
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

  /** Every key stored in `bucket`, unsorted: the folders holding an object file. */
  private async allKeys(bucket: string): Promise<string[]> {
    const objects = join(this.bucketPath(bucket), OBJECTS_FOLDER);
    let folders: string[];
    try {
      folders = await readdir(objects);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    const keys = await Promise.all(
      folders.map(async (folder) => {
        // Only folders of a completed write hold `object` (a delete removes the whole folder).
        if (!(await exists(join(objects, folder, 'object')))) return undefined;
        let key = this.keyOfFolder.get(folder);
        if (key === undefined) {
          key = await readFile(join(objects, folder, 'key'), 'utf8').catch(() => undefined);
          // Anything not of this layout (a folder whose key file does not hash to its name) is not an object.
          if (key === undefined || keyFolderName(key) !== folder) return undefined;
          this.keyOfFolder.set(folder, key);
        }
        return key;
      }),
    );
    return keys.filter((key) => key !== undefined);
  }
}

/** The folder name of a key: its SHA-256, so any key fits one file name and no two keys share one. */
function keyFolderName(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The lock name of one multipart upload (`:` never appears in a bucket name, so it never names an object's lock). */
function uploadLockKey(bucket: string, uploadId: string): string {
  return `upload:${bucket}/${uploadId}`;
}

/** S3's 400 BadDigest when a body's md5 (hex) differs from its `Content-MD5` (base64). */
function checkContentMd5(md5: string, contentMd5: string | undefined): void {
  if (contentMd5 !== undefined && Buffer.from(md5, 'hex').toString('base64') !== contentMd5) {
    throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
}

/**
 * The objects of a bucket folder in s3rver's layout, by key: `<segments>/<last>._S3rver_object` files outside its
 * uploads folder, with the path of each object's files without their suffix.
 */
async function legacyObjects(folder: string): Promise<[string, string][]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  const suffix = `${LEGACY_MARKER}object`;
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath, entry.name.slice(0, -suffix.length)))
    .map((base) => [relative(folder, base).split(sep), base] as const)
    .filter(([segments]) => segments.every((segment) => !segment.includes(LEGACY_MARKER)))
    .map(([segments, base]): [string, string] => [segments.join('/'), base]);
}

/** S3's key order: by UTF-8 bytes (JavaScript's default sort compares UTF-16 units, which differs above U+FFFF). */
function compareUtf8(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
