/**
 * The file side of `BlobStore.download`, shared by the S3 and folder stores: parts of one object written at their
 * offsets in whatever order they arrive, and hashed in file order while they stream.
 */
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';

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
