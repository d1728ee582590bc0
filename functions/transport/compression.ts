/**
 * HTTP compression, as Triton does it: `Content-Encoding: gzip|deflate` request bodies are decoded (with a
 * decompressed-size limit, so a gzip bomb is a 413, never an out-of-memory), and successful inference responses
 * (only those: Triton's clients decode no other answer) are compressed when the client's `Accept-Encoding` allows
 * it.
 *
 * Deployed, API Gateway may or may not have decoded a body already (it decodes where a mapping template applies;
 * our proxy integration, with every media type binary, passes bodies through), and may have left the header.
 * So a body is decoded only when it starts with its coding's signature (gzip's `1f 8b`, zlib's header); one that
 * does not is taken as already decoded. Responses are compressed here, not by the gateway's
 * `minimumCompressionSize`: compressed in the function, a response also fits Lambda's 6 MB result limit more easily,
 * and `npm start` behaves the same.
 */
import { promisify } from 'node:util';
import { constants, deflate, gunzip, gzip, inflate } from 'node:zlib';
import { BadRequestError, PayloadTooLargeError, UnsupportedContentEncodingError } from '../core/errors.js';
import { bodyBytes, type HttpResponse } from './http.js';

/** The content codings we decode and produce, in order of preference. */
export const CONTENT_CODINGS = ['gzip', 'deflate'] as const;

/** One of {@link CONTENT_CODINGS}. */
export type ContentCoding = (typeof CONTENT_CODINGS)[number];

const decoders = { gzip: promisify(gunzip), deflate: promisify(inflate) } as const;
const encoders = { gzip: promisify(gzip), deflate: promisify(deflate) } as const;

/**
 * Fastest level: numeric JSON and tensor bytes gain little from harder work, and every millisecond here is on the
 * request path.
 */
const LEVEL = constants.Z_BEST_SPEED;

function hasSignature(coding: ContentCoding, body: Uint8Array): boolean {
  const [first = 0, second = 0] = body;
  if (coding === 'gzip') return first === 0x1f && second === 0x8b;
  // zlib (RFC 1950): compression method 8, and the two header bytes are a multiple of 31.
  return (first & 0x0f) === 8 && ((first << 8) | second) % 31 === 0;
}

function toCoding(token: string): ContentCoding | 'identity' | undefined {
  if (token === 'gzip' || token === 'x-gzip') return 'gzip';
  if (token === 'deflate') return 'deflate';
  if (token === 'identity' || token === '') return 'identity';
  return undefined;
}

/**
 * The body with every coding of `contentEncoding` undone (last applied, first undone), at most `maxBytes` long.
 * @throws UnsupportedContentEncodingError (415, with the codings accepted) for another coding,
 *   PayloadTooLargeError (413) when the decoded body would pass `maxBytes`, BadRequestError (400) for corrupt data.
 */
export async function decodeContentEncoding(
  body: Uint8Array,
  contentEncoding: string | undefined,
  maxBytes: number,
): Promise<Uint8Array> {
  if (contentEncoding === undefined) return body;
  const tokens = contentEncoding.split(',').map((t) => t.trim().toLowerCase());
  const codings = tokens.map(toCoding);
  const unknown = tokens.find((_, i) => codings[i] === undefined);
  if (unknown !== undefined) {
    throw new UnsupportedContentEncodingError(
      `unsupported Content-Encoding ${JSON.stringify(unknown.slice(0, 64))}: send the body as is, or compressed ` +
        `with ${CONTENT_CODINGS.join(' or ')}`,
      CONTENT_CODINGS,
    );
  }
  let decoded = body;
  for (const coding of codings.reverse()) {
    if (coding === 'identity' || coding === undefined || !hasSignature(coding, decoded)) continue;
    try {
      const buffer = await decoders[coding](decoded, { maxOutputLength: maxBytes });
      decoded = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new PayloadTooLargeError(
          `the request body decompresses (Content-Encoding: ${coding}) to more than ${maxBytes} bytes, the limit ` +
            '(limits.maxBodyBytes): send fewer rows per request',
          { cause: error },
        );
      }
      throw new BadRequestError(
        `the request body is not valid ${coding} data (Content-Encoding: ${coding}): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return decoded;
}

/**
 * The coding to answer with for an `Accept-Encoding` value: the supported coding with the highest `q` (gzip on a
 * tie), `*` standing for gzip; `undefined` for identity (no header, nothing supported, or only `q=0`).
 */
export function negotiateEncoding(acceptEncoding: string | undefined): ContentCoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  let best: ContentCoding | undefined;
  let bestQ = 0;
  const explicit = new Set<string>();
  const entries = acceptEncoding.split(',').map((entry) => {
    const [name = '', ...params] = entry.split(';').map((p) => p.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    explicit.add(name);
    return { name, q: Number.isFinite(q) ? q : 0 };
  });
  for (const { name, q } of entries) {
    const candidates: readonly ContentCoding[] =
      name === '*'
        ? CONTENT_CODINGS.filter((c) => !explicit.has(c))
        : name === 'x-gzip'
          ? ['gzip']
          : CONTENT_CODINGS.filter((c) => c === name);
    for (const coding of candidates) {
      const better = q > bestQ || (q === bestQ && q > 0 && coding === 'gzip' && best !== 'gzip');
      if (better) {
        best = coding;
        bestQ = q;
      }
    }
  }
  return bestQ > 0 ? best : undefined;
}

/**
 * `response` compressed with the coding `acceptEncoding` asks for, when its body has at least `minBytes`; else
 * unchanged (`Vary: Accept-Encoding` either way, for caches). A response that already has a `Content-Encoding` is
 * left alone.
 */
export async function compressResponse(
  response: HttpResponse,
  acceptEncoding: string | undefined,
  minBytes: number,
): Promise<HttpResponse> {
  if (response.headers['content-encoding'] !== undefined) return response;
  const headers = { ...response.headers, vary: 'Accept-Encoding' };
  const coding = negotiateEncoding(acceptEncoding);
  const body = bodyBytes(response.body);
  if (coding === undefined || body.byteLength < minBytes) return { ...response, headers };
  const compressed = await encoders[coding](body, { level: LEVEL });
  return {
    ...response,
    headers: { ...headers, 'content-encoding': coding },
    body: new Uint8Array(compressed.buffer, compressed.byteOffset, compressed.byteLength),
  };
}
