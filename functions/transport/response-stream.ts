/**
 * Lambda response streaming's HTTP integration format, as function URLs (`RESPONSE_STREAM`) and REST APIs
 * (`responseTransferMode: STREAM`) read it: the content type `application/vnd.awslambda.http-integration-response`,
 * a JSON prelude with the status, headers and cookies, 8 NUL bytes, then the body. The Node runtime writes the
 * prelude itself (`awslambda.HttpResponseStream.from`); locally the gateway's emulation of the runtime does.
 */
import type { Writable } from 'node:stream';
import type { ResponseDelivery } from './api.js';
import { bodyByteLength, bodyBytes, toApiGatewayResult, type HttpResponse } from './http.js';

/** The content type of a response stream that starts with a prelude. */
export const HTTP_INTEGRATION_RESPONSE_TYPE = 'application/vnd.awslambda.http-integration-response';

/** The NUL bytes between the prelude and the body (a JSON prelude holds no NUL byte). */
export const PRELUDE_DELIMITER_BYTES = 8;

/** The symbol the Node runtime reads on a handler to invoke it with a response stream (`streamifyResponse`). */
export const STREAMING_HANDLER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming');

/** The status, headers and cookies of a streamed answer. */
export interface StreamPrelude {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly cookies?: readonly string[];
}

/**
 * `awslambda.HttpResponseStream.from`'s contract: returns a stream whose first write is preceded by the prelude
 * and the delimiter.
 */
export type HttpResponseStreamFrom = (stream: Writable, prelude: StreamPrelude) => Writable;

/** The prelude of `response`: its status, headers and cookies. */
export function preludeOf(response: HttpResponse): StreamPrelude {
  const cookies = response.cookies ?? [];
  return {
    statusCode: response.statusCode,
    headers: { ...response.headers },
    ...(cookies.length === 0 ? {} : { cookies: [...cookies] }),
  };
}

/** The prelude as the stream carries it: its JSON (which holds no NUL byte), then the delimiter. */
export function preludeBytes(prelude: StreamPrelude): Uint8Array {
  const json = Buffer.from(JSON.stringify(prelude), 'utf8');
  return Buffer.concat([json, Buffer.alloc(PRELUDE_DELIMITER_BYTES)]);
}

/**
 * A whole answer as a POST to the Runtime API carries it, for an answer given outside the handler (the inference
 * watchdog's 504): a buffered function's proxy result as JSON, or a streaming function's HTTP integration response
 * in the streaming response mode.
 */
export function runtimeApiAnswer(
  response: HttpResponse,
  delivery: ResponseDelivery,
): { headers: Record<string, string>; body: Uint8Array } {
  if (delivery === 'buffered') {
    return {
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(toApiGatewayResult(response)), 'utf8'),
    };
  }
  return {
    headers: {
      'content-type': HTTP_INTEGRATION_RESPONSE_TYPE,
      'lambda-runtime-function-response-mode': 'streaming',
      'transfer-encoding': 'chunked',
    },
    body: Buffer.concat([preludeBytes(preludeOf(response)), bodyBytes(response.body)]),
  };
}

/**
 * Bytes per write of a buffered body: the stream applies backpressure per write, so a 20 MB answer is handed on
 * in pieces that the socket can drain instead of one write that holds the whole body twice.
 */
const WRITE_BYTES = 1024 * 1024;

function write(stream: Writable, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    // A client gone mid-answer closes the stream: no 'drain' will come, and the answer must not wait for one.
    const closed = () => new Error('the response stream closed before the answer was written');
    if (stream.destroyed) return reject(closed());
    // The callback reports an error of this write; 'drain' (when write returns false) is the go-ahead for the next.
    const ready = stream.write(chunk, (error) => {
      if (error !== null && error !== undefined) reject(error);
    });
    if (ready) return resolve();
    const onDrain = () => {
      stream.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      stream.off('drain', onDrain);
      reject(closed());
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

/** Ends `stream` and resolves once everything written was handed on (rejects if the stream fails). */
function finish(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}

/**
 * Writes `response` onto a Lambda response stream: the prelude through `from`, then the body piece by piece in
 * bounded writes that wait for the stream to drain. Resolves once the stream has ended.
 */
export async function streamResponse(response: HttpResponse, stream: Writable, from: HttpResponseStreamFrom) {
  const out = from(stream, preludeOf(response));
  const parts =
    typeof response.body === 'string'
      ? [Buffer.from(response.body, 'utf8')]
      : response.body instanceof Uint8Array
        ? [response.body]
        : response.body;
  if (bodyByteLength(response.body) === 0) {
    // The prelude goes out before the first write: an empty answer still needs one to carry its status.
    await write(out, new Uint8Array(0));
  }
  // Piece by piece (the binary extension's header, then each output's bytes), each in bounded writes.
  for (const part of parts) {
    for (let offset = 0; offset < part.byteLength; offset += WRITE_BYTES) {
      await write(out, part.subarray(offset, Math.min(offset + WRITE_BYTES, part.byteLength)));
    }
  }
  await finish(out);
}
