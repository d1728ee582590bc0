/**
 * The file side of `BlobStore.download`, shared by the S3 stores and the folder store: parts of one object written at
 * their offsets in whatever order they arrive, and hashed in file order while they stream; and the ranged-GET driver
 * both S3 stores (the SDK's and the GET-only reader) run it with.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { DownloadedObject, DownloadOptions } from '../core/blob-store.js';

/** Largest read when the hash catches up on bytes already on disk. */
const CATCH_UP_BYTES = 1024 * 1024;

interface Part {
  readonly start: number;
  readonly length: number;
  written: number;
  hashed: number;
}

/**
 * A file being filled by parts (ranged GETs) in parallel. The sha256 follows the file order: the part at the hash's
 * cursor is hashed from the chunks as they arrive; a part that ran ahead is hashed from the file (the page cache)
 * once the cursor reaches it, so memory stays at one chunk per part whatever the concurrency and part size.
 *
 * @example
 * ```ts
 * const writer = await PartedFileWriter.open('/tmp/model.onnx', size, 8 * 1024 * 1024);
 * for await (const chunk of body) await writer.write(0, chunk);
 * const { sha256 } = await writer.close();
 * ```
 */
export class PartedFileWriter {
  private readonly hash = createHash('sha256');
  private readonly parts: Part[];
  private head = 0;
  private hashing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly file: string,
    private readonly handle: FileHandle,
    public readonly size: number,
    partBytes: number,
  ) {
    const count = Math.max(1, Math.ceil(size / partBytes));
    this.parts = Array.from({ length: count }, (_, i) => {
      const start = i * partBytes;
      return { start, length: Math.min(partBytes, size - start), written: 0, hashed: 0 };
    });
  }

  /** Creates (or truncates) `file` for an object of `size` bytes cut into parts of `partBytes`. */
  public static async open(file: string, size: number, partBytes: number): Promise<PartedFileWriter> {
    const handle = await open(file, 'w+');
    return new PartedFileWriter(file, handle, size, Math.max(1, partBytes));
  }

  /** Number of parts, and the byte range of each (inclusive end, as HTTP `Range` wants it). */
  public get ranges(): ReadonlyArray<{ readonly start: number; readonly end: number }> {
    return this.parts.map((p) => ({ start: p.start, end: p.start + p.length - 1 }));
  }

  /** Appends `chunk` to part `index`. Chunks of one part must come in order, one write at a time. */
  public async write(index: number, chunk: Uint8Array): Promise<void> {
    const part = this.parts[index];
    if (part === undefined) throw new RangeError(`no part ${index}`);
    if (part.written + chunk.byteLength > part.length) {
      throw new Error(`part ${index} received more than its ${part.length} bytes`);
    }
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(
        chunk,
        offset,
        chunk.byteLength - offset,
        part.start + part.written + offset,
      );
      offset += bytesWritten;
    }
    const before = part.written;
    part.written += chunk.byteLength;
    this.hashing = this.hashing.then(() => {
      // The common case: this part is at the cursor and nothing of it is pending: hash the chunk in memory.
      if (index === this.head && part.hashed === before) {
        this.hash.update(chunk);
        part.hashed += chunk.byteLength;
      }
      return this.catchUp();
    });
    await this.hashing;
  }

  /** Marks part `index` complete: it must hold all its bytes. */
  public async finish(index: number): Promise<void> {
    const part = this.parts[index];
    if (part === undefined) throw new RangeError(`no part ${index}`);
    if (part.written !== part.length) {
      throw new Error(`part ${index} ended after ${part.written} of its ${part.length} bytes`);
    }
    this.hashing = this.hashing.then(() => this.catchUp());
    await this.hashing;
  }

  /** Closes the file once every part is complete; the sha256 of the whole file. */
  public async close(): Promise<{ size: number; sha256: string }> {
    await this.hashing;
    if (this.head !== this.parts.length) {
      throw new Error(`the download ended with ${this.parts.length - this.head} parts incomplete`);
    }
    this.closed = true;
    await this.handle.close();
    return { size: this.size, sha256: this.hash.digest('hex') };
  }

  /** Closes and removes the partial file (a failed or aborted download). */
  public async discard(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => undefined);
    }
    await rm(this.file, { force: true });
  }

  /** Moves the cursor over every byte already written in order, reading back parts that ran ahead. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const part = this.parts[this.head];
      if (part === undefined) return;
      while (part.hashed < part.written) {
        const length = Math.min(CATCH_UP_BYTES, part.written - part.hashed);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await this.handle.read(buffer, 0, length, part.start + part.hashed);
        if (bytesRead === 0) throw new Error('the download file is shorter than what was written to it');
        this.hash.update(buffer.subarray(0, bytesRead));
        part.hashed += bytesRead;
      }
      if (part.hashed < part.length) return;
      this.head += 1;
    }
  }
}

/** The first ranged GET of {@link downloadInParts}, as the store's protocol answered it. */
export interface FirstPart {
  /** The server honoured the range (206); else it sent the whole object (200). */
  readonly ranged: boolean;
  /** The object's size: the total of `Content-Range` when ranged, else `Content-Length`. */
  readonly size: number;
  readonly etag: string;
  readonly body: AsyncIterable<Uint8Array> | undefined;
}

/** How {@link downloadInParts} talks to one store (the SDK's S3 client, or the GET-only reader). */
export interface PartSource {
  /**
   * GETs `range` (`bytes=0-N`): the answer, `missing` when there is no such key, or `empty` when the server
   * refused the range because the object has no byte 0 (S3's 416 InvalidRange).
   */
  first(range: string, signal: AbortSignal): Promise<FirstPart | 'missing' | 'empty'>;
  /** GETs `range` of the same object, `If-Match` `etag` (unless empty), so that an overwrite mid-download fails. */
  part(range: string, etag: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array> | undefined>;
  /** The whole object in one GET (the empty-object case), or `undefined` if there is none. */
  whole(): Promise<{ readonly body: Uint8Array; readonly etag: string } | undefined>;
}

/** Releases a response body nobody will read, so that its connection is not left to the idle timeout. */
function release(body: AsyncIterable<Uint8Array> | undefined): void {
  (body as { destroy?: () => void } | undefined)?.destroy?.();
}

/**
 * `BlobStore.download` over HTTP ranged GETs, for every store that speaks S3: parallel ranged GETs into `file`. One
 * S3 connection delivers on the order of 90 MB/s, so a large model arrives several times faster over `concurrency`
 * connections. The first part's answer tells the size and the etag; the other parts are asked `If-Match` that
 * etag, so a key overwritten mid-download fails instead of mixing two objects. The sha256 is computed in file order
 * while the parts stream ({@link PartedFileWriter}). On failure or abort the partial file is removed.
 */
export async function downloadInParts(
  file: string,
  options: DownloadOptions,
  source: PartSource,
): Promise<DownloadedObject | undefined> {
  const controller = new AbortController();
  // Each ranged GET may add an abort listener that is kept until the signal is dropped with this download: one per
  // part, which is by design, not the leak Node's default warning at 11 listeners guesses.
  setMaxListeners(0, controller.signal);
  const abort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted === true) abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  const partBytes = Math.max(1, Math.floor(options.partBytes));
  try {
    const first = await source.first(`bytes=0-${partBytes - 1}`, controller.signal);
    if (first === 'missing') return undefined;
    if (first === 'empty') return await downloadWhole(file, source);
    const { ranged, size, etag } = first;
    if (ranged && size === 0) {
      // S3 answers 416 for an empty object; some compatible servers answer 206 with a body that never comes.
      release(first.body);
      return await downloadWhole(file, source);
    }
    // A server that ignores Range sends the whole object at once: one part.
    const writer = await PartedFileWriter.open(file, size, ranged ? partBytes : Math.max(1, size)).catch(
      (error: unknown) => {
        release(first.body);
        throw error;
      },
    );
    try {
      const ranges = writer.ranges;
      const fetchPart = async (index: number): Promise<AsyncIterable<Uint8Array> | undefined> => {
        if (index === 0) return first.body;
        const range = ranges[index];
        return source.part(`bytes=${range?.start}-${range?.end}`, etag, controller.signal);
      };
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ranges.length) {
          const index = next++;
          const body = await fetchPart(index);
          if (body !== undefined) for await (const chunk of body) await writer.write(index, chunk);
          await writer.finish(index);
        }
      };
      const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency, ranges.length)) }, worker);
      // The first failure stops the others at once (no point fetching the rest of a lost download); all of them
      // have stopped before the partial file is removed.
      let failure: { error: unknown } | undefined;
      await Promise.all(
        workers.map((w) =>
          w.catch((error: unknown) => {
            failure ??= { error };
            controller.abort(error);
          }),
        ),
      );
      if (failure !== undefined) throw failure.error;
      const { sha256 } = await writer.close();
      return { size, sha256, etag };
    } catch (error) {
      controller.abort(error);
      await writer.discard();
      throw error;
    }
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
}

async function downloadWhole(file: string, source: PartSource): Promise<DownloadedObject | undefined> {
  const object = await source.whole();
  if (object === undefined) return undefined;
  const writer = await PartedFileWriter.open(file, object.body.byteLength, Math.max(1, object.body.byteLength));
  if (object.body.byteLength > 0) await writer.write(0, object.body);
  await writer.finish(0);
  const { size, sha256 } = await writer.close();
  return { size, sha256, etag: object.etag };
}

/**
 * Reads a response body into one buffer of the announced length (a 100+ MB model costs its size in memory once, not
 * once per concatenation), or concatenates once when none is announced.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array>,
  contentLength: number | undefined,
  key: string,
): Promise<Uint8Array> {
  if (contentLength === undefined) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) {
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }
  // allocUnsafe: every byte is overwritten below, and a short read is an error, so no stale memory leaks out.
  const buffer = Buffer.allocUnsafe(contentLength);
  let offset = 0;
  for await (const chunk of body) {
    if (offset + chunk.byteLength > contentLength) {
      throw new Error(`S3 sent more than the announced ${contentLength} bytes for "${key}"`);
    }
    buffer.set(chunk, offset);
    offset += chunk.byteLength;
  }
  if (offset !== contentLength) {
    throw new Error(`S3 sent ${offset} of the announced ${contentLength} bytes for "${key}"`);
  }
  return buffer;
}

/** The total of a `Content-Range: bytes 0-99/1234` header. */
export function totalOf(contentRange: string | undefined, key: string): number {
  const total = /\/(\d+)$/.exec(contentRange ?? '')?.[1];
  if (total === undefined) throw new Error(`S3 answered a ranged GET of "${key}" without a usable Content-Range`);
  return Number(total);
}
