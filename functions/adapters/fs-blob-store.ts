/**
 * A `BlobStore` on a local folder, with the same keys as the S3 bucket. Used by tests and by tools that work on a
 * copy of a repository; `npm start` uses the embedded S3 server instead.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore, DownloadedObject, DownloadOptions, PutCondition, StoredObject } from '../core/blob-store.js';
import { PreconditionFailedError } from '../core/errors.js';
import { PartedFileWriter } from './file-download.js';

function etagOf(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** {@link etagOf} of a file, streamed. */
async function md5EtagOf(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `"${hash.digest('hex')}"`;
}

/** Keys are `/`-separated, relative, without `.`/`..` segments: anything else could leave the root folder. */
function assertSafeKey(key: string): void {
  const segments = key.split('/');
  if (key.length === 0 || segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\'))) {
    throw new Error(`unsafe object key ${JSON.stringify(key)}`);
  }
}

/** A folder as an object store. Conditional writes are atomic within one process (a per-key queue). */
export class FsBlobStore implements BlobStore {
  private readonly queues = new Map<string, Promise<unknown>>();

  public constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  public async get(key: string): Promise<StoredObject | undefined> {
    try {
      const body = new Uint8Array(await readFile(this.pathOf(key)));
      return { body, etag: etagOf(body) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** A streamed copy (one part: a local disk gains nothing from parallel reads). The etag is the file's mtime and size. */
  public async download(key: string, file: string, options: DownloadOptions): Promise<DownloadedObject | undefined> {
    const source = this.pathOf(key);
    let size: number;
    let mtime: number;
    try {
      ({ size, mtimeMs: mtime } = await stat(source));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const writer = await PartedFileWriter.open(file, size, Math.max(1, size));
    try {
      for await (const chunk of createReadStream(source, { signal: options.signal })) {
        await writer.write(0, chunk as Buffer);
      }
      await writer.finish(0);
      const { sha256 } = await writer.close();
      return { size, sha256, etag: `"${size}-${mtime}"` };
    } catch (error) {
      await writer.discard();
      throw error;
    }
  }

  public put(key: string, body: Uint8Array, condition: PutCondition = {}): Promise<{ etag: string }> {
    return this.serialised(key, async () => {
      const file = this.pathOf(key);
      await this.check(key, condition);
      await mkdir(path.dirname(file), { recursive: true });
      // Write then rename: readers never see a half-written object.
      const temporary = `${file}.${randomUUID()}.tmp`;
      await writeFile(temporary, body);
      await rename(temporary, file);
      return { etag: etagOf(body) };
    });
  }

  /**
   * Copies `file` beside the object (the kernel copies: no bytes pass through JavaScript), then checks the condition
   * and renames the copy into place under the key's lock: atomic, and a failed copy leaves nothing behind.
   */
  public async putFile(key: string, file: string, condition: PutCondition = {}): Promise<{ etag: string }> {
    const target = this.pathOf(key);
    await mkdir(path.dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.tmp`;
    try {
      await copyFile(file, temporary);
      const etag = await md5EtagOf(temporary);
      return await this.serialised(key, async () => {
        await this.check(key, condition);
        await rename(temporary, target);
        return { etag };
      });
    } finally {
      await rm(temporary, { force: true });
    }
  }

  /** Runs the writes of one key one after the other, so that check-then-write cannot interleave. */
  private serialised<T>(key: string, write: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(write);
    this.queues.set(key, next);
    void next
      .finally(() => {
        if (this.queues.get(key) === next) this.queues.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  private async check(key: string, condition: PutCondition): Promise<void> {
    // Existence alone for `If-None-Match`: reading the object would load a whole model file to learn it exists.
    if (condition.ifNoneMatch === '*' && (await exists(this.pathOf(key)))) {
      throw new PreconditionFailedError(`${key} already exists`);
    }
    if (condition.ifMatch === undefined) return;
    const current = await this.get(key);
    if (current?.etag !== condition.ifMatch) {
      throw new PreconditionFailedError(`${key} changed since it was read`);
    }
  }

  public async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string, relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
        if (entry.isDirectory()) await walk(path.join(dir, entry.name), key);
        else if (!entry.name.endsWith('.tmp') && key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(this.root, '');
    return keys.sort();
  }

  public async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
