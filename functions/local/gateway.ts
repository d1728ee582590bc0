/**
 * The local front door: turns each HTTP request into the event the chosen front (`front.ts`: REST API, HTTP API or
 * function URL) sends the deployed functions (payload 1.0 for REST, 2.0 for the others), after authenticating it as
 * that front would, calls the same handler, and writes its result back. Model routes go to the `infer` handler,
 * everything else to `control`, as the deployed routes do.
 *
 * The platform's size limits are reproduced, so that what fails deployed fails here first, with a clearer message:
 * bodies over API Gateway's 10 MB (or the configured `maxBodyBytes`) and events over Lambda's 6 MB request payload
 * (the body is base64 inside it, so about 4.5 MiB of body) are a 413; a result over Lambda's response payload limit
 * is a 502, as API Gateway answers it.
 *
 * Reading is bounded too, since one local process holds what API Gateway's fleet spreads out: a body must arrive
 * within a deadline and keep a minimum rate (a stalled upload is a 408, its bytes released), and a refused body is
 * read and dropped for a bounded time and size before the connection closes (a lingering close), so that a client
 * still sending gets to read its answer instead of a connection reset.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import type { HttpHandler, InferHandler, StreamingInferHandler } from '../transport/http-handlers.js';
import type { ApiGatewayEvent } from '../transport/http.js';
import { FRONT_PROFILES } from '../core/fronts.js';
import { PLATFORM_LIMITS } from '../core/platform-limits.js';
import { isModelPath } from '../transport/routes.js';
import { GATEWAY_READ_LIMIT_DEFAULTS } from '../wiring/config.js';
import { isRefusal, type FrontIdentity, type LocalFront } from './front.js';
import { toHttpApiEvent } from './http-api-event.js';
import { frontResponseStream, isStreamingHandler } from './lambda-response-stream.js';

/** Settings of {@link startGateway}. */
export interface GatewayOptions {
  /**
   * Model routes. A streaming handler (marked by `streamifyResponse`, as the Node runtime requires) is answered as a
   * streaming front answers: its response stream reaches the client as it is written, without the 6 MB limit.
   */
  readonly infer: InferHandler | StreamingInferHandler;
  readonly control: HttpHandler;
  /** @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /**
   * The front emulated: its event format, request-size limit, integration timeout and authentication.
   * @default the REST API without authentication
   */
  readonly front?: LocalFront;
  /**
   * How long the front waits for the function before answering 504 (the function keeps running, as deployed).
   * @default the front's integration timeout: 29 s (REST), 30 s (HTTP API), 900 s (function URL)
   */
  readonly integrationTimeoutMs?: number;
  /**
   * Larger bodies are a 413 before the function runs; never above the front's own limit (10 MB for the REST and
   * HTTP APIs, Lambda's 6 MB payload for a function URL). @default the front's limit
   */
  readonly maxBodyBytes?: number;
  /**
   * Request bytes held at once across all connections, from the first body byte until the answer is sent: past it,
   * a request is a 503 with `Retry-After` instead of more memory (API Gateway's fleet has no such limit; one local
   * process does). @default 4 x `maxBodyBytes`
   */
  readonly maxBufferedBytes?: number;
  /** The whole body must arrive within this long of the request head, else 408. @default {@link GATEWAY_READ_LIMIT_DEFAULTS} */
  readonly bodyTimeoutMs?: number;
  /**
   * Bytes per second a body must keep arriving at, measured over each `bodyRateWindowMs` (a stalled upload is a 408
   * at the end of its window, long before the deadline); 0 disables the check. @default {@link GATEWAY_READ_LIMIT_DEFAULTS}
   */
  readonly minBodyBytesPerSecond?: number;
  /** The window of `minBodyBytesPerSecond`. @default {@link GATEWAY_READ_LIMIT_DEFAULTS} */
  readonly bodyRateWindowMs?: number;
  /**
   * How long a refused body is still read and dropped (lingering close) before the connection closes; the bytes
   * read are bounded as well, by twice `maxBodyBytes` in all. @default {@link GATEWAY_READ_LIMIT_DEFAULTS}
   */
  readonly lingerMs?: number;
}

/** A running gateway. */
export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

const {
  lambdaRequestPayloadBytes: LAMBDA_REQUEST_PAYLOAD_BYTES,
  lambdaResponsePayloadBytes: LAMBDA_RESPONSE_PAYLOAD_BYTES,
} = PLATFORM_LIMITS;

/**
 * The path and query of a request target, as sent: no dot-segment removal or other normalisation, so that
 * `/v2/models/%2e%2e/infer` reaches the routes (which refuse it) exactly as a client wrote it. Never throws.
 */
export function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } {
  let raw = target ?? '/';
  if (!raw.startsWith('/')) {
    // Absolute form (`http://host/path`, proxies) or `*` (OPTIONS): keep only the path and query.
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(raw);
    raw = scheme === null ? `/${raw}` : raw.slice(scheme[0].length) || '/';
  }
  const hash = raw.indexOf('#');
  if (hash >= 0) raw = raw.slice(0, hash);
  const question = raw.indexOf('?');
  if (question < 0) return { path: raw, query: new URLSearchParams() };
  return { path: raw.slice(0, question), query: new URLSearchParams(raw.slice(question + 1)) };
}

/** Builds the proxy event API Gateway would send for this request (every body base64: binary media type `*\/*`). */
export function toRestApiEvent(
  request: http.IncomingMessage,
  body: Buffer,
  requestId: string,
  identity: FrontIdentity = { kind: 'none' },
): APIGatewayProxyEvent {
  const { path, query: searchParams } = splitTarget(request.url);
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  // From the raw headers: Node joins repeated headers into one value, API Gateway lists each.
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = (request.rawHeaders[i] ?? '').toLowerCase();
    const value = request.rawHeaders[i + 1] ?? '';
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query = Object.fromEntries(searchParams.entries());
  const method = request.method ?? 'GET';
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length > 0 ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.replace(/^\//, '') },
    stageVariables: null,
    body: body.length > 0 ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: {
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        ...(identity.kind === 'api-key' ? { apiKey: identity.apiKey } : {}),
        ...(identity.kind === 'iam' ? { accessKey: identity.accessKeyId, user: identity.accessKeyId } : {}),
      } as APIGatewayProxyEvent['requestContext']['identity'],
      path,
      stage: 'local',
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: '/{proxy+}',
    },
  };
}

/**
 * Bytes of `event` as Lambda receives it (its JSON), without serialising a base64 body twice: it needs no
 * escaping, so it adds exactly its length and two quotes in place of `null`. A text body (2.0 events) is measured
 * escaped, as JSON carries it.
 */
export function lambdaEventBytes(event: APIGatewayProxyEvent | APIGatewayProxyEventV2): number {
  if (event.body === null || event.body === undefined) return Buffer.byteLength(JSON.stringify(event));
  if (!event.isBase64Encoded) return Buffer.byteLength(JSON.stringify(event));
  const envelope = Buffer.byteLength(JSON.stringify({ ...event, body: null }));
  return envelope - 'null'.length + event.body.length + 2;
}

/** Bytes of a handler's result as Lambda returns it (its JSON); cheap for results far below the limit. */
export function lambdaResultBytes(result: APIGatewayProxyResult): number {
  // No character takes more than 6 bytes in JSON (`\u001f`): a body that small cannot reach the limit.
  if (result.body.length * 6 + 64 * 1024 < LAMBDA_RESPONSE_PAYLOAD_BYTES) return result.body.length;
  return Buffer.byteLength(JSON.stringify(result));
}

function send(response: http.ServerResponse, result: APIGatewayProxyResult): void {
  const body = result.isBase64Encoded === true ? Buffer.from(result.body, 'base64') : Buffer.from(result.body, 'utf8');
  const headers: Record<string, string | number> = { 'content-length': body.length };
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  response.writeHead(result.statusCode, headers);
  response.end(body);
}

function sendError(response: http.ServerResponse, statusCode: number, message: string): void {
  send(response, {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: message }),
  });
}

/** The 413 API Gateway and Lambda give a request whose event is over Lambda's payload limit. */
function eventTooLargeMessage(bodyBytes: number, eventBytes: number, base64: boolean, title: string): string {
  const encoded = base64 ? `base64-encoded in the Lambda event, as the ${title} sends it` : 'in the Lambda event';
  return (
    `the request body is ${bodyBytes} bytes; ${encoded}, that makes ${eventBytes} bytes, over Lambda's ` +
    `${LAMBDA_REQUEST_PAYLOAD_BYTES}-byte request payload limit (so deployed endpoints take binary bodies up to ` +
    'about 4.5 MiB): send the binary tensor extension (about 3x smaller than JSON numbers) or fewer rows per request'
  );
}

/** What reaches a client when a function's result is over Lambda's limit (API Gateway itself says only 502). */
function resultTooLargeMessage(resultBytes: number): string {
  return (
    `the function's response is ${resultBytes} bytes, over Lambda's ${LAMBDA_RESPONSE_PAYLOAD_BYTES}-byte ` +
    'response payload limit (deployed, API Gateway answers 502): lower limits.maxResponseBytes, request binary ' +
    'outputs or fewer outputs'
  );
}

/** The 504 a front gives when the function has not answered within its integration timeout. */
function integrationTimeoutMessage(title: string, seconds: number): string {
  return (
    `the function did not answer within ${seconds} s, the ${title}'s timeout (it may still be running): send ` +
    "fewer rows per request, or raise the model's memory so it computes faster"
  );
}

/**
 * Reads and drops the rest of a refused body, then closes: the answer is already written, and closing while the
 * client still sends would reset the connection before it reads that answer (Node's fetch and curl then report
 * EPIPE). Bounded by `bytes` in all (what was read before the refusal counts) and by `ms`.
 */
function lingerThenClose(request: http.IncomingMessage, read: number, bytes: number, ms: number): void {
  const socket = request.socket;
  if (request.complete) return;
  // Node's server destroys the socket as soon as a `connection: close` answer is written (socket.destroySoon);
  // here the gateway closes it itself, once the body is read or a bound is reached.
  socket.destroySoon = () => undefined;
  let drained = read;
  const timer = setTimeout(() => socket.destroy(), ms).unref();
  socket.once('close', () => clearTimeout(timer));
  request.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > bytes) socket.destroy();
  });
  // The whole body is read: the client now reads its answer; the connection ends, with no reset.
  request.on('end', () => socket.end());
  request.resume();
}

/**
 * Delivers a streaming handler's answer as a streaming front does: status and headers once the prelude is written,
 * then the body as it comes. A failure before anything was sent is a 500 with the request id; after, the
 * connection is cut (the status is gone already), as a front does when a stream breaks.
 */
function deliverStreamed(
  response: http.ServerResponse,
  handler: StreamingInferHandler,
  event: ApiGatewayEvent,
  context: { awsRequestId: string },
): void {
  const stream = frontResponseStream(response);
  const failed = () => {
    if (!response.headersSent) sendError(response, 500, `internal error; request id ${context.awsRequestId}`);
    else response.destroy();
  };
  stream.on('error', failed);
  handler(event, stream, context)
    .then(() => {
      // A handler that returns without ending its stream has answered all it will: the runtime ends it.
      if (!stream.writableEnded) stream.end();
    })
    .catch(failed);
}

/** Starts the gateway; resolves once it listens. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const front: LocalFront = options.front ?? {
    api: 'rest',
    authorization: 'none',
    profile: FRONT_PROFILES.rest,
    authenticate: async () => ({ kind: 'none' }),
  };
  const frontLimit = front.profile.maxRequestBodyBytes;
  const maxBodyBytes = Math.min(options.maxBodyBytes ?? frontLimit, frontLimit);
  const timeoutMs = options.integrationTimeoutMs ?? front.profile.timeoutSeconds * 1000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * maxBodyBytes;
  const defaults = GATEWAY_READ_LIMIT_DEFAULTS;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? defaults.bodyTimeoutSeconds * 1000;
  const minRate = options.minBodyBytesPerSecond ?? defaults.minBodyBytesPerSecond;
  const rateWindowMs = options.bodyRateWindowMs ?? defaults.bodyRateWindowSeconds * 1000;
  const lingerMs = options.lingerMs ?? defaults.lingerSeconds * 1000;
  const minWindowBytes = (minRate * rateWindowMs) / 1000;
  let buffered = 0;
  const handle = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let refused = false;
    let windowBytes = 0;
    const release = () => {
      buffered -= held;
      held = 0;
    };
    const deadline = setTimeout(() => {
      refuse(
        408,
        `the request body did not arrive within ${bodyTimeoutMs / 1000} s (${size} bytes read): send the whole ` +
          'body at once, or a smaller one',
      );
    }, bodyTimeoutMs).unref();
    const rate =
      minWindowBytes > 0
        ? setInterval(() => {
            if (windowBytes < minWindowBytes) {
              refuse(
                408,
                `the request body arrived at ${Math.round((windowBytes * 1000) / rateWindowMs)} bytes/s over ` +
                  `${rateWindowMs / 1000} s, under the minimum of ${minRate} bytes/s (${size} bytes read): send ` +
                  'the body without pausing',
              );
            }
            windowBytes = 0;
          }, rateWindowMs).unref()
        : undefined;
    const stopTimers = () => {
      clearTimeout(deadline);
      clearInterval(rate);
    };
    response.on('close', () => {
      stopTimers();
      release();
    });
    /**
     * Answers now and stops keeping the body: the connection closes once the rest of it is read and dropped
     * (bounded), never after the whole of an endless body.
     */
    const refuse = (statusCode: number, message: string, headers: Record<string, string> = {}) => {
      if (refused) return;
      refused = true;
      stopTimers();
      chunks.length = 0;
      release();
      lingerThenClose(request, size, 2 * maxBodyBytes, lingerMs);
      send(response, {
        statusCode,
        headers: { 'content-type': 'application/json', connection: 'close', ...headers },
        body: JSON.stringify({ error: message }),
      });
    };
    const tooLarge = () =>
      maxBodyBytes === frontLimit
        ? `the request body is over ${maxBodyBytes} bytes, the ${front.profile.title}'s limit: send fewer rows per request`
        : `the request body is over ${maxBodyBytes} bytes, the limit of this endpoint (limits.maxBodyBytes): send ` +
          'fewer rows per request';
    const declared = Number(request.headers['content-length']);
    if (declared > maxBodyBytes) {
      refuse(413, tooLarge());
      return;
    }
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      windowBytes += chunk.length;
      if (size > maxBodyBytes) {
        refuse(413, tooLarge());
        return;
      }
      if (buffered + chunk.length > maxBufferedBytes) {
        refuse(503, `the gateway holds ${maxBufferedBytes} bytes of request bodies already; retry shortly`, {
          'retry-after': '1',
        });
        return;
      }
      buffered += chunk.length;
      held += chunk.length;
      chunks.push(chunk);
    });
    request.on('end', () => {
      stopTimers();
      if (refused) return;
      const requestId = randomUUID();
      const body = Buffer.concat(chunks, size);
      // Whatever a client sends, the gateway answers: a throw here would take the whole local stack down.
      const invoke = async (): Promise<unknown> => {
        const identity = await front.authenticate(request, body);
        if (isRefusal(identity)) {
          send(response, {
            statusCode: identity.statusCode,
            headers: { 'content-type': 'application/json', ...identity.headers },
            body: JSON.stringify({ error: identity.message }),
          });
          return undefined;
        }
        const event =
          front.profile.eventFormat === '1.0'
            ? toRestApiEvent(request, body, requestId, identity)
            : toHttpApiEvent(request, body, requestId, front.api, identity);
        const eventBytes = lambdaEventBytes(event);
        if (eventBytes > LAMBDA_REQUEST_PAYLOAD_BYTES) {
          sendError(
            response,
            413,
            eventTooLargeMessage(size, eventBytes, event.isBase64Encoded === true, front.profile.title),
          );
          return undefined;
        }
        const isModelRoute = isModelPath(splitTarget(request.url).path);
        const context = { awsRequestId: requestId };
        if (isModelRoute && isStreamingHandler(options.infer)) {
          // A streaming function's answer goes out as it comes (a front that streams has no integration timeout
          // short of the function's own).
          deliverStreamed(response, options.infer as StreamingInferHandler, event, context);
          return undefined;
        }
        // The front stops waiting after its integration timeout; the function itself keeps running, as deployed.
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs).unref();
        });
        const call = isModelRoute ? (options.infer as InferHandler)(event, context) : options.control(event, context);
        const outcome = await Promise.race([call, timedOut]).finally(() => clearTimeout(timer));
        if (outcome === 'timeout') {
          call.catch(() => undefined);
          sendError(response, 504, integrationTimeoutMessage(front.profile.title, timeoutMs / 1000));
          return undefined;
        }
        return outcome;
      };
      invoke()
        .then((r) => {
          if (r === undefined) return;
          const result = r as APIGatewayProxyResult;
          const resultBytes = lambdaResultBytes(result);
          if (resultBytes > LAMBDA_RESPONSE_PAYLOAD_BYTES) sendError(response, 502, resultTooLargeMessage(resultBytes));
          else send(response, result);
        })
        .catch(() => {
          try {
            sendError(response, 500, `internal error; request id ${requestId}`);
          } catch {
            response.destroy();
          }
        });
    });
    request.on('error', () => response.destroy());
  };
  const server = http.createServer(handle);
  // `Expect: 100-continue` (curl's large uploads): an oversized declared body is refused before the client sends it.
  server.on('checkContinue', (request: http.IncomingMessage, response: http.ServerResponse) => {
    if (!(Number(request.headers['content-length']) > maxBodyBytes)) response.writeContinue();
    handle(request, response);
  });
  // The body deadline above replaces Node's whole-request timeout (300 s by default); the head keeps Node's own.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
