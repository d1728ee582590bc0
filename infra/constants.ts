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

/** CloudWatch namespace of the Powertools metrics of every function. */
export const METRICS_NAMESPACE = 'OnnxServerless';

/** Environment variable names set on the functions (the contract with `functions/handlers`). */
export const ENV = {
  modelBucket: 'MODEL_BUCKET',
  modelName: 'MODEL_NAME',
  manifestTtlSeconds: 'MANIFEST_TTL_SECONDS',
  modelLimits: 'MODEL_LIMITS',
  preload: 'PRELOAD',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
  tracerCaptureResponse: 'POWERTOOLS_TRACER_CAPTURE_RESPONSE',
  nodeOptions: 'NODE_OPTIONS',
} as const;

/** S3 key prefixes of the model repository (DESIGN.md). */
export const KEY_PREFIX = { uploads: 'uploads/', models: 'models/', rejected: 'rejected/' } as const;

/** Suffix of the uploads that start a registration; `<file>.onnx.json` samples must not trigger one. */
export const MODEL_FILE_SUFFIX = '.onnx';

/** The KServe V2 path every route lives under. */
export const V2_ROOT = 'v2';
