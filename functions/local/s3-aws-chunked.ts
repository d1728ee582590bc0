/**
 * Decoding of S3's `aws-chunked` content encoding.
 *
 * Current AWS SDKs and CLIs send a streamed upload (unknown length, or any upload with a trailing checksum) as
 * `Content-Encoding: aws-chunked`: the payload is cut into `<hex size>[;chunk-signature=...]\r\n<bytes>\r\n`
 * frames, ended by a `0` frame and optional trailer headers such as `x-amz-checksum-crc32`. S3 strips this framing
 * before storing the object; without that step a model uploaded that way would be stored with the framing inside
 * and fail to parse. Chunk signatures (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) are verified when a
 * {@link ChunkSigner} is given; trailing checksums are not (the registration computes the model's sha256 anyway).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { ChunkSigner } from './s3-sigv4.js';
import { S3Error } from './s3-error.js';

const CRLF = Buffer.from('\r\n');
/** Longest frame header or trailer line accepted (a SigV4 chunk signature line is about 90 bytes). */
const MAX_LINE_BYTES = 4096;

/** True when the request body is `aws-chunked` framed and must be decoded before it is stored. */
export function isAwsChunked(headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding'] ?? '';
  const payloadHash = String(headers['x-amz-content-sha256'] ?? '');
  return encoding.split(',').some((token) => token.trim() === 'aws-chunked') || payloadHash.startsWith('STREAMING-');
}

/**
 * Removes `aws-chunked` from `Content-Encoding` (S3 does not store it; a stored `aws-chunked` would be sent back on
 * every GET) and returns the length the decoded body must have, if the client announced it.
 */
export function stripAwsChunkedHeaders(headers: IncomingHttpHeaders): number | undefined {
  const remaining = (headers['content-encoding'] ?? '')
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '' && token !== 'aws-chunked');
  if (remaining.length === 0) {
    delete headers['content-encoding'];
  } else {
    headers['content-encoding'] = remaining.join(', ');
  }
  const announced = headers['x-amz-decoded-content-length'];
  const length = announced === undefined ? Number.NaN : Number(announced);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

type State = 'frame-header' | 'frame-data' | 'frame-end' | 'trailer' | 'done';

/**
 * A stream that turns an `aws-chunked` body into the object's bytes. Malformed framing, a body cut short, or a
 * decoded length different from `x-amz-decoded-content-length` fail the stream with S3's 400 `IncompleteBody`.
 */
export class AwsChunkedDecoder extends Transform {
  private state: State = 'frame-header';
  private pending: Buffer = Buffer.alloc(0);
  private frameRemaining = 0;
  private decodedBytes = 0;
  /** The current frame's signature and running hash, when chunk signatures are verified. */
  private frameSignature = '';
  private frameHash: Hash | undefined;

  public constructor(
    private readonly expectedLength?: number,
    private readonly signer?: ChunkSigner,
  ) {
    super();
  }

  public override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.state === 'done' && chunk.length > 0) throw trailingBytes();
      this.consume(this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]));
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  public override _flush(callback: TransformCallback): void {
    if (this.state !== 'done') {
      callback(incomplete('the aws-chunked body ended before its final 0-length chunk and trailer'));
      return;
    }
    if (this.expectedLength !== undefined && this.decodedBytes !== this.expectedLength) {
      callback(
        incomplete(
          `the aws-chunked body holds ${this.decodedBytes} bytes, but x-amz-decoded-content-length announced ${this.expectedLength}`,
        ),
      );
      return;
    }
    callback();
  }

  /** Advances the state machine over `buffer`; keeps an incomplete header line for the next chunk. */
  private consume(buffer: Buffer): void {
    let position = 0;
    while (position < buffer.length && this.state !== 'done') {
      if (this.state === 'frame-data') {
        const take = Math.min(this.frameRemaining, buffer.length - position);
        // subarray: the payload passes through without a copy.
        const data = buffer.subarray(position, position + take);
        this.frameHash?.update(data);
        this.push(data);
        this.decodedBytes += take;
        this.frameRemaining -= take;
        position += take;
        if (this.frameRemaining === 0) {
          this.checkFrameSignature();
          this.state = 'frame-end';
        }
        continue;
      }
      if (this.state === 'frame-end') {
        if (buffer.length - position < CRLF.length) {
          break;
        }
        if (!buffer.subarray(position, position + CRLF.length).equals(CRLF)) {
          throw incomplete('an aws-chunked frame is longer than its announced size');
        }
        position += CRLF.length;
        this.state = 'frame-header';
        continue;
      }
      const end = buffer.indexOf(CRLF, position);
      if (end === -1) {
        if (buffer.length - position > MAX_LINE_BYTES) {
          throw incomplete('an aws-chunked frame header or trailer line is too long');
        }
        break;
      }
      const line = buffer.subarray(position, end).toString('latin1');
      position = end + CRLF.length;
      if (this.state === 'frame-header') {
        this.startFrame(line);
      } else if (line === '') {
        this.state = 'done';
      }
      // Other trailer lines (x-amz-checksum-*, x-amz-trailer-signature) are accepted and not verified.
    }
    // S3 refuses anything after the final frame's trailer: it would be bytes no signature or length covers.
    if (this.state === 'done' && position < buffer.length) throw trailingBytes();
    this.pending = Buffer.from(buffer.subarray(position));
  }

  private startFrame(line: string): void {
    const sizeField = line.split(';', 1)[0] ?? '';
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeField)) {
      throw incomplete(`"${line.slice(0, 64)}" is not an aws-chunked frame header`);
    }
    const size = Number.parseInt(sizeField, 16);
    if (!Number.isSafeInteger(size)) {
      throw incomplete('an aws-chunked frame announces an impossible size');
    }
    this.frameRemaining = size;
    this.state = size === 0 ? 'trailer' : 'frame-data';
    if (this.signer !== undefined) {
      this.frameSignature = /;chunk-signature=([0-9a-fA-F]{64})/.exec(line)?.[1] ?? '';
      this.frameHash = createHash('sha256');
      if (size === 0) this.checkFrameSignature();
    }
  }

  /**
   * Checks the frame just read against its chained signature. Its bytes have been passed on already; failing the
   * stream here fails the whole write, so the object is never stored.
   */
  private checkFrameSignature(): void {
    if (this.signer === undefined || this.frameHash === undefined) return;
    if (!this.signer.verify(this.frameHash.digest('hex'), this.frameSignature)) {
      throw new S3Error('SignatureDoesNotMatch', 'The chunk signature of an aws-chunked frame does not match.');
    }
    this.frameHash = undefined;
  }
}

function trailingBytes(): Error {
  return new S3Error('IncompleteBody', 'Malformed aws-chunked request body: bytes follow its final chunk and trailer.');
}

function incomplete(message: string): Error {
  return new S3Error('IncompleteBody', `Malformed aws-chunked request body: ${message}.`);
}
