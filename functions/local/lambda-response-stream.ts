/**
 * Lambda response streaming on the laptop: what the Node runtime does for a streaming handler (a response stream
 * with `setContentType`, `HttpResponseStream.from`, the `streamifyResponse` mark) and what a streaming front does
 * with the bytes (split the `application/vnd.awslambda.http-integration-response` prelude from the body and send
 * the rest on as it comes). `npm start` serves streamed answers through it, and the artifact rig reads a bundled
 * handler's streamed POST to the Runtime API with the same {@link PreludeReader}.
 */
import type http from 'node:http';
import { Writable } from 'node:stream';
import {
  HTTP_INTEGRATION_RESPONSE_TYPE,
  PRELUDE_DELIMITER_BYTES,
  STREAMING_HANDLER_MARK,
  preludeBytes,
  type HttpResponseStreamFrom,
  type StreamPrelude,
} from '../transport/response-stream.js';

/** The content type of a response stream nobody set one on (the Node runtime's default). */
export const DEFAULT_STREAM_CONTENT_TYPE = 'application/octet-stream';

/** Marks `handler` as a streaming one, as `awslambda.streamifyResponse` does in the Node runtime. */
export function streamifyResponse<H extends (...args: never[]) => unknown>(handler: H): H {
  Object.defineProperty(handler, STREAMING_HANDLER_MARK, { value: 'response' });
  return handler;
}

/** True for a handler marked by {@link streamifyResponse} (or by the Node runtime's own). */
export function isStreamingHandler(handler: unknown): boolean {
  return (handler as Record<symbol, unknown>)[STREAMING_HANDLER_MARK] === 'response';
}

/** A response stream as the Node runtime hands it to a streaming handler. */
export interface LambdaResponseStream extends Writable {
  setContentType(contentType: string): void;
}

/** `awslambda.HttpResponseStream.from` for a {@link LambdaResponseStream}: the prelude, then 8 NUL bytes. */
export const httpResponseStreamFrom: HttpResponseStreamFrom = (stream, prelude) => {
  (stream as LambdaResponseStream).setContentType(HTTP_INTEGRATION_RESPONSE_TYPE);
  stream.write(preludeBytes(prelude));
  return stream;
};

/**
 * Splits an HTTP integration response into its prelude and body, chunk by chunk, as the front reads it: bytes
 * before the prelude's delimiter are held (a prelude is small), everything after goes on untouched.
 */
export class PreludeReader {
  private held: Buffer = Buffer.alloc(0);
  private parsed: StreamPrelude | undefined;

  /** The prelude, once its delimiter arrived. */
  get prelude(): StreamPrelude | undefined {
    return this.parsed;
  }

  /**
   * Takes the next chunk; returns the body bytes it holds (none while the prelude is still arriving).
   * @throws Error when the prelude is not a JSON object with a numeric `statusCode`
   */
  push(chunk: Uint8Array): Uint8Array {
    if (this.parsed !== undefined) return chunk;
    this.held = Buffer.concat([this.held, chunk]);
    const end = this.held.indexOf(Buffer.alloc(PRELUDE_DELIMITER_BYTES));
    if (end < 0) return new Uint8Array(0);
    const prelude = JSON.parse(this.held.subarray(0, end).toString('utf8')) as Partial<StreamPrelude> | null;
    if (typeof prelude?.statusCode !== 'number') {
      throw new Error('the response stream prelude has no numeric statusCode');
    }
    this.parsed = {
      statusCode: prelude.statusCode,
      headers: prelude.headers ?? {},
      ...(prelude.cookies === undefined ? {} : { cookies: prelude.cookies }),
    };
    const body = this.held.subarray(end + PRELUDE_DELIMITER_BYTES);
    this.held = Buffer.alloc(0);
    return body;
  }
}

/**
 * A {@link LambdaResponseStream} that a streaming front delivers to `target` as it is written: the status and
 * headers from the prelude (or 200 with the stream's content type when there is none), then each body chunk,
 * written on only as fast as the client reads (a write completes when the socket has taken it).
 */
export function frontResponseStream(target: http.ServerResponse): LambdaResponseStream {
  let contentType = DEFAULT_STREAM_CONTENT_TYPE;
  let reader: PreludeReader | undefined;
  let headSent = false;
  const sendHead = (prelude: StreamPrelude) => {
    const headers: Record<string, string | string[]> = { ...prelude.headers };
    if (prelude.cookies !== undefined && prelude.cookies.length > 0) headers['set-cookie'] = [...prelude.cookies];
    // No content-length: the body's size is known only at its end (chunked transfer, as a streaming front sends).
    target.writeHead(prelude.statusCode, headers);
    headSent = true;
  };
  const forward = (body: Uint8Array, done: (error?: Error | null) => void) => {
    if (body.byteLength === 0 || target.write(body)) done();
    else target.once('drain', () => done());
  };
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      try {
        if (!headSent && reader === undefined) {
          if (contentType === HTTP_INTEGRATION_RESPONSE_TYPE) reader = new PreludeReader();
          else sendHead({ statusCode: 200, headers: { 'content-type': contentType } });
        }
        if (reader !== undefined && !headSent) {
          const body = reader.push(chunk);
          if (reader.prelude === undefined) return done();
          sendHead(reader.prelude);
          return forward(body, done);
        }
        forward(chunk, done);
      } catch (error) {
        done(error as Error);
      }
    },
    final(done) {
      if (!headSent) sendHead({ statusCode: 200, headers: { 'content-type': contentType } });
      target.end(() => done());
    },
  }) as LambdaResponseStream;
  stream.setContentType = (type) => {
    contentType = type;
  };
  // A client gone mid-answer ends the stream, as a front closing the connection ends the invocation's stream.
  target.once('close', () => {
    if (!target.writableFinished) stream.destroy();
  });
  return stream;
}
