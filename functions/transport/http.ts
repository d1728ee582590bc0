/**
 * HTTP at the edge: proxy events of payload format 1.0 and 2.0 in, results of the same format out, and the one
 * mapping from errors to status codes.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, LambdaFunctionURLEvent } from 'aws-lambda';
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
  /** The path as the client sent it, percent-encoding kept: the routes decode each segment once. */
  readonly path: string;
  /** The query string's parameters, decoded, in order (repeated names repeat). @default none */
  readonly query?: readonly (readonly [string, string])[];
  /**
   * Header names in lower case; a header sent several times is one value joined with `,` (as HTTP API payload 2.0
   * joins it), and cookies are one `cookie` header joined with `; ` (payload 2.0 sends them apart, in `cookies`).
   */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  readonly requestId: string;
}

/** A response before it is put into an API Gateway result or onto a socket. */
export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  /** `Set-Cookie` values, one per cookie: a header record cannot repeat a name. @default none */
  readonly cookies?: readonly string[];
  /**
   * Text, bytes, or bytes in pieces, in order: an encoded answer's JSON header, then each binary output (views of
   * the output tensors), which a streamed answer writes one after the other without joining them.
   */
  readonly body: Uint8Array | string | readonly Uint8Array[];
  /** The error behind a 5xx answer, for the handler's log line; never sent to the client. */
  readonly cause?: unknown;
}

/**
 * Any proxy event we accept: API Gateway REST (payload format 1.0), or payload format 2.0 as HTTP APIs and Lambda
 * function URLs send it (`LambdaFunctionURLEvent` is the same type as `APIGatewayProxyEventV2`).
 */
export type ApiGatewayEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2 | LambdaFunctionURLEvent;

/** The payload format of a proxy event, which decides the shape of its answer. */
export type PayloadFormat = '1.0' | '2.0';

/**
 * The answer to a proxy event, as {@link toApiGatewayResult} shapes it: a valid `APIGatewayProxyResult` (1.0) and
 * `APIGatewayProxyStructuredResultV2` (2.0) alike; only cookies differ between them.
 */
export interface ApiGatewayResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly isBase64Encoded?: boolean;
  /** 1.0 only: `set-cookie`, one value per cookie. */
  readonly multiValueHeaders?: Record<string, string[]>;
  /** 2.0 only: one `Set-Cookie` value per cookie. */
  readonly cookies?: string[];
}

/** True for a payload format 2.0 event (HTTP API or function URL). */
export function isHttpApiEvent(event: ApiGatewayEvent): event is APIGatewayProxyEventV2 {
  return (event as APIGatewayProxyEventV2).version === '2.0';
}

/** The payload format of `event`. */
export function payloadFormatOf(event: ApiGatewayEvent): PayloadFormat {
  return isHttpApiEvent(event) ? '2.0' : '1.0';
}

/** Header values, lower-cased names, repeated names joined (`,`; `; ` for cookies, RFC 6265's separator). */
function joinHeaders(
  single: Readonly<Record<string, string | undefined>> | null | undefined,
  multi: Readonly<Record<string, readonly string[] | undefined>> | null | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(single ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  // Payload 1.0 keeps only the last value of a repeated header in `headers`; `multiValueHeaders` has them all.
  for (const [name, values] of Object.entries(multi ?? {})) {
    if (values === undefined || values.length === 0) continue;
    const lower = name.toLowerCase();
    headers[lower] = values.join(lower === 'cookie' ? '; ' : ',');
  }
  return headers;
}

/** Query parameters of a payload 1.0 event (API Gateway decodes them; repeated names in the multi-value map). */
function restQuery(event: APIGatewayProxyEvent): [string, string][] {
  const multi = event.multiValueQueryStringParameters;
  if (multi !== null && multi !== undefined && Object.keys(multi).length > 0) {
    return Object.entries(multi).flatMap(([name, values]) => (values ?? []).map((v): [string, string] => [name, v]));
  }
  return Object.entries(event.queryStringParameters ?? {}).flatMap(([name, value]) =>
    value === undefined ? [] : [[name, value] as [string, string]],
  );
}

/**
 * Turns a proxy event of either payload format into an {@link HttpRequest}: the one normalisation, so that a REST
 * API, an HTTP API and a function URL carrying the same request give the API the same request.
 */
export function fromApiGatewayEvent(event: ApiGatewayEvent, fallbackRequestId: string): HttpRequest {
  const raw = event.body ?? '';
  const decoded = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  const body = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  if (isHttpApiEvent(event)) {
    const headers = joinHeaders(event.headers, undefined);
    // Payload 2.0 moves cookies out of the headers into `cookies`; the API reads headers only.
    if (event.cookies !== undefined && event.cookies.length > 0) headers['cookie'] = event.cookies.join('; ');
    return {
      method: event.requestContext.http.method.toUpperCase(),
      // rawPath keeps the client's percent-encoding; requestContext.http.path is decoded (a %2F would become a /).
      path: event.rawPath,
      query: [...new URLSearchParams(event.rawQueryString ?? '')],
      headers,
      body,
      requestId: event.requestContext.requestId ?? fallbackRequestId,
    };
  }
  return {
    method: event.httpMethod.toUpperCase(),
    path: event.path,
    query: restQuery(event),
    headers: joinHeaders(event.headers, event.multiValueHeaders),
    body,
    requestId: event.requestContext?.requestId ?? fallbackRequestId,
  };
}

const TEXTUAL = /^(application\/json|text\/)/;

/** A body as one buffer: text as UTF-8, pieces joined (copied once). */
export function bodyBytes(body: HttpResponse['body']): Uint8Array {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return body;
  return body.length === 1 ? body[0]! : Buffer.concat(body);
}

/** Bytes of a body, without joining its pieces. */
export function bodyByteLength(body: HttpResponse['body']): number {
  if (typeof body === 'string') return Buffer.byteLength(body, 'utf8');
  if (body instanceof Uint8Array) return body.byteLength;
  return body.reduce((sum, part) => sum + part.byteLength, 0);
}

/** The body of an answer as a proxy result carries it: text as is, anything else base64-encoded. */
function resultBody(response: HttpResponse): { body: string; isBase64Encoded?: true } {
  const contentType = response.headers['content-type'] ?? '';
  // A compressed body is bytes whatever its media type.
  const textual = TEXTUAL.test(contentType) && response.headers['content-encoding'] === undefined;
  if (typeof response.body === 'string') return { body: response.body };
  const joined = bodyBytes(response.body);
  const bytes = Buffer.from(joined.buffer, joined.byteOffset, joined.byteLength);
  return textual ? { body: bytes.toString('utf8') } : { body: bytes.toString('base64'), isBase64Encoded: true };
}

/**
 * Turns an {@link HttpResponse} into the result the event's payload format expects (binary bodies base64-encoded):
 * 1.0 carries cookies as `multiValueHeaders['set-cookie']`; 2.0 has no `multiValueHeaders` and carries them in
 * `cookies`.
 */
export function toApiGatewayResult(response: HttpResponse, format: PayloadFormat = '1.0'): ApiGatewayResult {
  const cookies = response.cookies ?? [];
  const base = { statusCode: response.statusCode, headers: { ...response.headers }, ...resultBody(response) };
  if (cookies.length === 0) return base;
  return format === '2.0'
    ? { ...base, cookies: [...cookies] }
    : { ...base, multiValueHeaders: { 'set-cookie': [...cookies] } };
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
