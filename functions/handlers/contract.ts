/**
 * The contract between the infrastructure and the functions: the environment variables infra sets and the handlers
 * read, and the metrics namespace. No imports, so that `infra/` can depend on it without pulling in runtime code.
 */

/** Environment variable names set on the functions. */
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
  /** `true` loads the Powertools Tracer (X-Ray subsegment annotations); off by default for cold starts. */
  traceEnabled: 'POWERTOOLS_TRACE_ENABLED',
  nodeOptions: 'NODE_OPTIONS',
} as const;

/** CloudWatch namespace of the Powertools metrics of every function. */
export const METRICS_NAMESPACE = 'OnnxServerless';
