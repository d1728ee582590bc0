/**
 * HTTP at the edge: API Gateway events in, API Gateway results out, and the one mapping from errors to status codes.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import {
  InferenceServerError,
  MethodNotAllowedError,
  ServiceUnavailableError,
  UnsupportedContentEncodingError,
} from '../core/errors.js';
import { redactInternals } from '../core/redact.js';

/** A request as the API sees it, whatever carried it. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  readonly requestId: string;
}

/** A response before it is put into an API Gateway result or onto a socket. */
export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array | string;
  /** The error behind a 5xx answer, for the handler's log line; never sent to the client. */
  readonly cause?: unknown;
}

/** Any API Gateway proxy event we accept: REST (payload 1.0) or HTTP API (payload 2.0). */
export type ApiGatewayEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;

/** True for an HTTP API payload 2.0 event. */
export function isHttpApiEvent(event: ApiGatewayEvent): event is APIGatewayProxyEventV2 {
  return (event as APIGatewayProxyEventV2).version === '2.0';
}

/** Turns an API Gateway event into an {@link HttpRequest}. */
export function fromApiGatewayEvent(event: ApiGatewayEvent, fallbackRequestId: string): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  const raw = event.body ?? '';
  const decoded = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  const body = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  if (isHttpApiEvent(event)) {
    return {
      method: event.requestContext.http.method.toUpperCase(),
      path: event.rawPath,
      headers,
      body,
      requestId: event.requestContext.requestId ?? fallbackRequestId,
    };
  }
  return {
    method: event.httpMethod.toUpperCase(),
    path: event.path,
    headers,
    body,
    requestId: event.requestContext?.requestId ?? fallbackRequestId,
  };
}

const TEXTUAL = /^(application\/json|text\/)/;

/** Turns an {@link HttpResponse} into the result API Gateway expects (binary bodies base64-encoded). */
export function toApiGatewayResult(response: HttpResponse): APIGatewayProxyResult {
  const contentType = response.headers['content-type'] ?? '';
  // A compressed body is bytes whatever its media type.
  const textual = TEXTUAL.test(contentType) && response.headers['content-encoding'] === undefined;
  if (typeof response.body === 'string' || textual) {
    const body = typeof response.body === 'string' ? response.body : Buffer.from(response.body).toString('utf8');
    return { statusCode: response.statusCode, headers: { ...response.headers }, body };
  }
  return {
    statusCode: response.statusCode,
    headers: { ...response.headers },
    body: Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('base64'),
    isBase64Encoded: true,
  };
}

/** A JSON response. */
export function jsonResponse(statusCode: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

/**
 * The one place where errors become HTTP responses. Our own errors carry their status and a message meant for the
 * client (redacted once more here, since some quote native libraries); anything else is a bug: 500 with a generic
 * message and the request id, never a stack trace or a path.
 */
export function errorResponse(error: unknown, requestId: string): HttpResponse {
  if (error instanceof InferenceServerError) {
    const headers: Record<string, string> = {};
    if (error instanceof ServiceUnavailableError) headers['retry-after'] = String(error.retryAfterSeconds);
    if (error instanceof MethodNotAllowedError) headers.allow = error.allowed.join(', ');
    if (error instanceof UnsupportedContentEncodingError) headers['accept-encoding'] = error.accepted.join(', ');
    const response = jsonResponse(error.statusCode, { error: redactInternals(error.message) }, headers);
    return error.statusCode >= 500 ? { ...response, cause: error.cause ?? error } : response;
  }
  return { ...jsonResponse(500, { error: `internal error; request id ${requestId}` }), cause: error };
}
