/**
 * Values the infrastructure fixes and the rest of the project may need to mirror (the local gateway reproduces
 * API Gateway's binary handling; the handlers read the environment variables named here).
 */

/**
 * API Gateway treats every request and response body as binary, so the binary tensor extension (JSON header
 * followed by raw little-endian bytes, whatever Content-Type the client sends) reaches Lambda intact, base64-encoded
 * with `isBase64Encoded: true`. The cost: base64 inflates bodies by 4/3 against Lambda's 6 MB invoke payload, so a
 * deployed endpoint accepts bodies up to about 4.4 MB.
 */
export const BINARY_MEDIA_TYPES = ['*/*'] as const;

export { ENV, METRICS_NAMESPACE } from '../functions/core/contract.js';
export { REPOSITORY_PREFIXES, UPLOAD_SUFFIX, UPLOAD_SUFFIXES } from '../functions/core/model-repository.js';

/** The KServe V2 path every route lives under. */
export const V2_ROOT = 'v2';
