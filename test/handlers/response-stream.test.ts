import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeInferenceResponseParts } from '../../functions/core/codec/index.js';
import {
  httpResponseStreamFrom,
  PreludeReader,
  type LambdaResponseStream,
} from '../../functions/local/lambda-response-stream.js';
import { HTTP_INTEGRATION_RESPONSE_TYPE, streamResponse } from '../../functions/transport/response-stream.js';

/** A response stream that keeps each write as it was handed over (no copy), and its content type. */
function recordingStream(): { stream: LambdaResponseStream; writes: Uint8Array[]; contentType: () => string } {
  const writes: Uint8Array[] = [];
  let contentType = 'application/octet-stream';
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: Uint8Array, _encoding, done) {
      writes.push(chunk);
      done();
    },
  }) as LambdaResponseStream;
  stream.setContentType = (type) => {
    contentType = type;
  };
  return { stream, writes, contentType: () => contentType };
}

describe('a streamed answer', () => {
  it('goes out as prelude, then the binary header, then views of the output tensors: never joined', async () => {
    const y = new Float32Array(600_000).map((_, i) => i / 3);
    const encoded = encodeInferenceResponseParts(
      { modelName: 'm', modelVersion: '1', outputs: [{ name: 'y', datatype: 'FP32', shape: [y.length], data: y }] },
      { binaryOutputByDefault: true },
    );
    const { stream, writes, contentType } = recordingStream();

    await streamResponse(
      { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, body: encoded.parts },
      stream,
      httpResponseStreamFrom,
    );

    expect(contentType()).toBe(HTTP_INTEGRATION_RESPONSE_TYPE);
    const reader = new PreludeReader();
    expect(reader.push(writes[0]!).byteLength).toBe(0);
    expect(reader.prelude).toEqual({ statusCode: 200, headers: { 'content-type': 'application/octet-stream' } });
    expect(Buffer.from(writes[1]!).equals(Buffer.from(encoded.parts[0]!))).toBe(true);
    // 2.4 MB of tensor in 1 MiB writes, each a view of the tensor's own memory.
    const tensorWrites = writes.slice(2);
    expect(tensorWrites.map((w) => w.byteLength)).toEqual([1048576, 1048576, 302848]);
    for (const write of tensorWrites) expect(write.buffer).toBe(y.buffer);
    expect(stream.writableFinished).toBe(true);
  });

  it('carries an empty body: the prelude still goes out, with the status', async () => {
    const { stream, writes } = recordingStream();

    await streamResponse({ statusCode: 204, headers: {}, body: new Uint8Array(0) }, stream, httpResponseStreamFrom);

    const reader = new PreludeReader();
    const body = writes.map((w) => reader.push(w));
    expect(reader.prelude).toEqual({ statusCode: 204, headers: {} });
    expect(body.reduce((sum, b) => sum + b.byteLength, 0)).toBe(0);
  });

  it('stops, rejecting, when the client goes away while the stream waits to drain', async () => {
    // A socket that takes one write and never drains, as a client that stopped reading; then it closes.
    let taken = 0;
    const stream = new Writable({
      highWaterMark: 1024,
      write(_chunk, _encoding, _done) {
        taken++;
        setImmediate(() => stream.destroy());
      },
    }) as LambdaResponseStream;
    stream.setContentType = () => undefined;

    const written = streamResponse(
      { statusCode: 200, headers: {}, body: [new Uint8Array(5 * 1024 * 1024)] },
      stream,
      httpResponseStreamFrom,
    );

    await expect(written).rejects.toThrow(/closed before the answer was written/);
    expect(taken).toBe(1);
  });
});
