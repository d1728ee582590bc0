/**
 * HTTP-level facts of the protocol: header names, media types, and how a request says which form its body has.
 */
import { BadRequestError } from '../errors.js';
import { show } from './describe.js';

/** Header names the codec reads and writes, as they are sent (HTTP header names are case-insensitive). */
export const HEADERS = {
  contentType: 'Content-Type',
  /** Triton's binary tensor extension: byte length of the JSON header that starts the body. */
  inferenceHeaderContentLength: 'Inference-Header-Content-Length',
} as const;

/** Media types of the protocol. */
export const MEDIA_TYPES = {
  json: 'application/json',
  octetStream: 'application/octet-stream',
  /** SageMaker's spelling of the binary extension; the JSON header size is its `json-header-size` parameter. */
  sagemakerBinary: 'application/vnd.sagemaker-triton.binary+json',
} as const;

/** The request forms, as error messages name them. */
export const ACCEPTED_REQUEST_FORMS =
  'V2 JSON (any content type), or the binary tensor extension: an Inference-Header-Content-Length header, or ' +
  'Content-Type application/vnd.sagemaker-triton.binary+json;json-header-size=N';

/**
 * The value of header `name` in a plain header map, matched case-insensitively. The first match wins.
 * @example headerValue({ 'content-type': 'application/json' }, 'Content-Type') // 'application/json'
 */
export function headerValue(headers: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === wanted) return headers[key];
  }
  return undefined;
}

/** A parsed `Content-Type`: lower-cased media type and its parameters (names lower-cased, quotes removed). */
export interface MediaType {
  readonly type: string;
  readonly parameters: ReadonlyMap<string, string>;
}

/** Parses a `Content-Type` value; an absent or blank value gives the type `""`. */
export function parseMediaType(contentType: string | undefined): MediaType {
  const [type = '', ...rest] = (contentType ?? '').split(';');
  const parameters = new Map<string, string>();
  for (const part of rest) {
    const equals = part.indexOf('=');
    if (equals < 0) continue;
    let value = part.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    parameters.set(part.slice(0, equals).trim().toLowerCase(), value);
  }
  return { type: type.trim().toLowerCase(), parameters };
}

/** How a request body is laid out. */
export type RequestForm =
  | { readonly kind: 'json' }
  /** A JSON header of `headerLength` bytes, then binary tensor data. */
  | { readonly kind: 'binary'; readonly headerLength: number }
  /** `Inference-Header-Content-Length: 0`: the whole body is the raw bytes of the model's single input. */
  | { readonly kind: 'raw' };

const DECIMAL = /^[0-9]+$/;

function parseHeaderLength(value: string, source: string, bodyLength: number): number {
  const trimmed = value.trim();
  const length = DECIMAL.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(length) || length > bodyLength) {
    throw new BadRequestError(
      `${source} must be the byte length of the JSON inference header at the start of the body: an integer from 0 ` +
        `to the body length (${bodyLength} bytes), got ${show(value)}`,
    );
  }
  return length;
}

/**
 * Decides the form of a request body from its headers, as Triton does: an `Inference-Header-Content-Length` header
 * means the binary extension whatever the content type, and so does SageMaker's binary+json type; anything else is
 * JSON. A generic `Content-Type` is never consulted: Triton never reads it, and clients send anything there
 * (aiohttp, under `tritonclient.http.aio`, sends `application/octet-stream` with JSON bodies).
 */
export function requestForm(
  contentType: string | undefined,
  inferenceHeaderContentLength: string | undefined,
  bodyLength: number,
): RequestForm {
  let headerLength: number;
  if (inferenceHeaderContentLength !== undefined) {
    headerLength = parseHeaderLength(
      inferenceHeaderContentLength,
      `${HEADERS.inferenceHeaderContentLength}`,
      bodyLength,
    );
  } else {
    const media = parseMediaType(contentType);
    if (media.type !== MEDIA_TYPES.sagemakerBinary) return { kind: 'json' };
    const size = media.parameters.get('json-header-size');
    if (size === undefined) {
      throw new BadRequestError(
        `Content-Type ${MEDIA_TYPES.sagemakerBinary} needs a json-header-size parameter giving the byte length of the ` +
          `JSON inference header, e.g. "${MEDIA_TYPES.sagemakerBinary};json-header-size=123"`,
      );
    }
    headerLength = parseHeaderLength(size, 'the json-header-size parameter of the Content-Type', bodyLength);
  }
  return headerLength === 0 ? { kind: 'raw' } : { kind: 'binary', headerLength };
}
