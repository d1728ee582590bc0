import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AwsChunkedDecoder, isAwsChunked, stripAwsChunkedHeaders } from '../../functions/local/s3-aws-chunked.js';

/** Frames `payload` as SDKs do: `<hex>[;chunk-signature=...]\r\n<bytes>\r\n` per frame, then a 0 frame and trailer. */
function encode(payload: Buffer, frameSizes: readonly number[], signed: boolean, trailer: string[]): Buffer {
  const extension = signed ? `;chunk-signature=${'a'.repeat(64)}` : '';
  const pieces: Buffer[] = [];
  let offset = 0;
  for (const size of frameSizes) {
    if (offset >= payload.length) {
      break;
    }
    const frame = payload.subarray(offset, offset + size);
    pieces.push(Buffer.from(`${frame.length.toString(16)}${extension}\r\n`), frame, Buffer.from('\r\n'));
    offset += frame.length;
  }
  if (offset < payload.length) {
    const rest = payload.subarray(offset);
    pieces.push(Buffer.from(`${rest.length.toString(16)}${extension}\r\n`), rest, Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`0${extension}\r\n${trailer.map((line) => `${line}\r\n`).join('')}\r\n`));
  return Buffer.concat(pieces);
}

/** Feeds `encoded` to a decoder cut at `cuts` and collects the output. */
async function decode(encoded: Buffer, cuts: readonly number[], expectedLength?: number): Promise<Buffer> {
  const positions = [...new Set(cuts.map((cut) => cut % (encoded.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const position of [...positions, encoded.length]) {
    pieces.push(encoded.subarray(start, position));
    start = position;
  }
  const output: Buffer[] = [];
  const decoder = Readable.from(pieces.filter((piece) => piece.length > 0)).pipe(new AwsChunkedDecoder(expectedLength));
  for await (const chunk of decoder) {
    output.push(chunk as Buffer);
  }
  return Buffer.concat(output);
}

describe('aws-chunked decoding', () => {
  it('restores any payload, whatever the frame sizes, signatures, trailers and network cuts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (payload, frameSizes, signed, cuts) => {
          // Prepare
          const body = Buffer.from(payload);
          const trailer = signed
            ? ['x-amz-checksum-crc32:AAAAAA==', 'x-amz-trailer-signature:abc']
            : ['x-amz-checksum-crc32:AAAAAA=='];

          // Act
          const decoded = await decode(encode(body, frameSizes, signed, trailer), cuts, body.length);

          // Assess
          expect(decoded.equals(body)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts a body with no trailer at all', async () => {
    // Act
    const decoded = await decode(Buffer.from('5\r\nhello\r\n0\r\n\r\n'), []);

    // Assess
    expect(decoded.toString()).toBe('hello');
  });

  it.each([
    ['a body cut before its final frame', '5\r\nhello\r\n', 5],
    ['a frame longer than announced', '3\r\nhello\r\n0\r\n\r\n', 3],
    ['a header that is not hexadecimal', 'xyz\r\nhello\r\n0\r\n\r\n', 5],
    ['a decoded length other than announced', '5\r\nhello\r\n0\r\n\r\n', 6],
  ])('fails with IncompleteBody on %s', async (_case, encoded, expectedLength) => {
    // Act
    const decoding = decode(Buffer.from(encoded), [], expectedLength);

    // Assess
    await expect(decoding).rejects.toMatchObject({ code: 'IncompleteBody', status: 400 });
  });

  it('fails on an endless header line instead of buffering it', async () => {
    // Act
    const decoding = decode(Buffer.alloc(10_000, 0x41), [4000, 8000]);

    // Assess
    await expect(decoding).rejects.toThrow(/too long/);
  });

  it('recognises aws-chunked requests by encoding or streaming payload hash', () => {
    // Assess
    expect(isAwsChunked({ 'content-encoding': 'aws-chunked' })).toBe(true);
    expect(isAwsChunked({ 'content-encoding': 'gzip, aws-chunked' })).toBe(true);
    expect(isAwsChunked({ 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' })).toBe(true);
    expect(isAwsChunked({ 'content-encoding': 'gzip', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' })).toBe(false);
  });

  it('drops aws-chunked from the stored content encoding and reads the announced length', () => {
    // Prepare
    const alone: Record<string, string> = { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '42' };
    const mixed: Record<string, string> = { 'content-encoding': 'gzip,aws-chunked' };

    // Act
    const aloneLength = stripAwsChunkedHeaders(alone);
    const mixedLength = stripAwsChunkedHeaders(mixed);

    // Assess
    expect(aloneLength).toBe(42);
    expect(alone['content-encoding']).toBeUndefined();
    expect(mixedLength).toBeUndefined();
    expect(mixed['content-encoding']).toBe('gzip');
  });
});
