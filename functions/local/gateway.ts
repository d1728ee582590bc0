/**
 * The local API Gateway: turns each HTTP request into the REST API (payload 1.0) proxy event the deployed
 * functions receive, calls the same handler, and writes its result back. Model routes go to the `infer`
 * handler, everything else to `control`, as the deployed routes do.
 *
 * The platform's size limits are reproduced, so that what fails deployed fails here first, with a clearer message:
 * bodies over API Gateway's 10 MB (or the configured `maxBodyBytes`) and events over Lambda's 6 MB request payload
 * (the body is base64 inside it, so about 4.5 MiB of body) are a 413; a result over Lambda's response payload limit
 * is a 502, as API Gateway answers it.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { HttpHandler, InferHandler } from '../transport/http-handlers.js';
import { PLATFORM_LIMITS } from '../core/platform-limits.js';
import { isModelPath } from '../transport/routes.js';

/** Settings of {@link startGateway}. */
export interface GatewayOptions {
  readonly infer: InferHandler;
  readonly control: HttpHandler;
  /** @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** API Gateway REST refuses larger bodies with 413 before the function runs. @default 10 MiB */
  readonly maxBodyBytes?: number;
  /**
   * Request bytes held at once across all connections, from the first body byte until the answer is sent: past it,
   * a request is a 503 with `Retry-After` instead of more memory (API Gateway's fleet has no such limit; one local
   * process does). @default 4 x `maxBodyBytes`
   */
  readonly maxBufferedBytes?: number;
}

/** Bytes of a refused body still read and dropped so that the client can read the answer, before the socket closes. */
const REFUSED_BODY_DRAIN_BYTES = 1024 * 1024;

/** A running gateway. */
export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

const {
  apiGatewayMaxBodyBytes: API_GATEWAY_MAX_BODY,
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
export function toRestApiEvent(request: http.IncomingMessage, body: Buffer, requestId: string): APIGatewayProxyEvent {
  const { path, query: searchParams } = splitTarget(request.url);
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    headers[name] = values.join(',');
    multiValueHeaders[name] = values;
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
 * Bytes of `event` as Lambda receives it (its JSON), without serialising the body twice: a base64 body needs no
 * escaping, so it adds exactly its length and two quotes in place of `null`.
 */
export function lambdaEventBytes(event: APIGatewayProxyEvent): number {
  const envelope = Buffer.byteLength(JSON.stringify({ ...event, body: null }));
  return event.body === null ? envelope : envelope - 'null'.length + event.body.length + 2;
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
function eventTooLargeMessage(bodyBytes: number, eventBytes: number): string {
  return (
    `the request body is ${bodyBytes} bytes; base64-encoded in the Lambda event, as API Gateway sends it, that ` +
    `makes ${eventBytes} bytes, over Lambda's ${LAMBDA_REQUEST_PAYLOAD_BYTES}-byte request payload limit (so ` +
    'deployed endpoints take bodies up to about 4.5 MiB): send the binary tensor extension (about 3x smaller ' +
    'than JSON numbers) or fewer rows per request'
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

/** Starts the gateway; resolves once it listens. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const maxBodyBytes = options.maxBodyBytes ?? API_GATEWAY_MAX_BODY;
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * maxBodyBytes;
  let buffered = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let refused = false;
    const release = () => {
      buffered -= held;
      held = 0;
    };
    response.on('close', release);
    /**
     * Answers now and stops reading: the connection closes once a little more of the body (so that the client,
     * still sending, gets to read the answer) has been dropped, never after the whole of an endless body.
     */
    const refuse = (statusCode: number, message: string, headers: Record<string, string> = {}) => {
      refused = true;
      chunks.length = 0;
      release();
      send(response, {
        statusCode,
        headers: { 'content-type': 'application/json', connection: 'close', ...headers },
        body: JSON.stringify({ error: message }),
      });
      let drained = 0;
      request.on('data', (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > REFUSED_BODY_DRAIN_BYTES) request.socket.destroy();
      });
      response.on('finish', () => setTimeout(() => request.socket.destroy(), 1000).unref());
      request.resume();
    };
    const tooLarge = () =>
      `the request body is over ${maxBodyBytes} bytes, API Gateway's limit: send fewer rows per request`;
    const declared = Number(request.headers['content-length']);
    if (declared > maxBodyBytes) {
      refuse(413, tooLarge());
      return;
    }
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
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
      if (refused) return;
      const requestId = randomUUID();
      // Whatever a client sends, the gateway answers: a throw here would take the whole local stack down.
      let pending: Promise<unknown>;
      try {
        const event = toRestApiEvent(request, Buffer.concat(chunks, size), requestId);
        const eventBytes = lambdaEventBytes(event);
        if (eventBytes > LAMBDA_REQUEST_PAYLOAD_BYTES) {
          sendError(response, 413, eventTooLargeMessage(size, eventBytes));
          return;
        }
        const isModelRoute = isModelPath(event.path);
        const context = { awsRequestId: requestId };
        pending = isModelRoute ? options.infer(event, context) : options.control(event, context);
      } catch {
        sendError(response, 500, `internal error; request id ${requestId}`);
        return;
      }
      pending
        .then((r) => {
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
  });
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
