/**
 * The local API Gateway: turns each HTTP request into the REST API (payload 1.0) proxy event the deployed
 * functions receive, calls the same handler, and writes its result back. Model routes go to the `infer`
 * handler, everything else to `control`, as the deployed routes do.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { HttpHandler, InferHandler } from '../handlers/factories.js';

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
}

/** A running gateway. */
export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

const API_GATEWAY_MAX_BODY = 10 * 1024 * 1024;

/** Builds the proxy event API Gateway would send for this request (every body base64: binary media type `*\/*`). */
export function toRestApiEvent(request: http.IncomingMessage, body: Buffer, requestId: string): APIGatewayProxyEvent {
  const url = new URL(request.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    headers[name] = values.join(',');
    multiValueHeaders[name] = values;
  }
  const query = Object.fromEntries(url.searchParams.entries());
  const method = request.method ?? 'GET';
  return {
    resource: '/{proxy+}',
    path: url.pathname,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length > 0 ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: url.pathname.replace(/^\//, '') },
    stageVariables: null,
    body: body.length > 0 ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: { sourceIp: request.socket.remoteAddress ?? '127.0.0.1' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: url.pathname,
      stage: 'local',
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: '/{proxy+}',
    },
  };
}

function send(response: http.ServerResponse, result: APIGatewayProxyResult): void {
  const body = result.isBase64Encoded === true ? Buffer.from(result.body, 'base64') : Buffer.from(result.body, 'utf8');
  const headers: Record<string, string | number> = { 'content-length': body.length };
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  response.writeHead(result.statusCode, headers);
  response.end(body);
}

function sendError(response: http.ServerResponse, statusCode: number, message: string): void {
  send(response, { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: message }) });
}

/** Starts the gateway; resolves once it listens. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const maxBodyBytes = options.maxBodyBytes ?? API_GATEWAY_MAX_BODY;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes && !refused) {
        refused = true;
        sendError(response, 413, `the request body is over ${maxBodyBytes} bytes, API Gateway's limit`);
        request.resume();
        return;
      }
      if (!refused) chunks.push(chunk);
    });
    request.on('end', () => {
      if (refused) return;
      const requestId = randomUUID();
      const event = toRestApiEvent(request, Buffer.concat(chunks, size), requestId);
      const isModelRoute = /^\/v2\/models(\/|$)/.test(event.path);
      const context = { awsRequestId: requestId };
      const result = isModelRoute ? options.infer(event, context) : options.control(event, context);
      result
        .then((r) => send(response, r as APIGatewayProxyResult))
        .catch(() => sendError(response, 500, `internal error; request id ${requestId}`));
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
