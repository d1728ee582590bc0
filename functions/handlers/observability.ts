/**
 * Powertools for AWS Lambda: structured logs and CloudWatch metrics (EMF), created once per process. Metrics:
 * ColdStart, ModelLoadTime, ModelFetchTime, ModelBytes, InferenceTime, RequestBytes, ResponseBytes. Outside Lambda
 * (the local runtime, tests) metrics are not emitted.
 *
 * No Powertools Tracer: Lambda's active tracing records each invocation without it, and nothing here opens
 * subsegments. Its X-Ray SDK cost about 15 ms of every cold start (bundle size and module initialisation) and, on
 * import, enables an async hook (cls-hooked) that runs on every promise of every request.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ServingTelemetry } from '../core/model-service.js';
import { METRICS_NAMESPACE } from './contract.js';

/** The process's logger and metrics, and the serving telemetry built on them. */
export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly telemetry: ServingTelemetry;
  /** Records request and response sizes of one inference. */
  readonly payload: (event: { requestBytes: number; responseBytes: number }) => void;
  /** Call at the end of each invocation: flushes the metrics of that invocation. */
  readonly flush: () => void;
  /** Whether this is the process's first invocation (then set to false). */
  readonly takeColdStart: () => boolean;
}

/** Creates the observability of a function named `service`; `inLambda` false turns metric output off. */
export function createObservability(service: string, inLambda: boolean): Observability {
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  let coldStart = true;
  const telemetry: ServingTelemetry = {
    modelLoaded: ({ model, version, bytes, fetchMs, createMs }) => {
      logger.info('model loaded', { model, version, bytes, fetchMs, createMs });
      metrics.addMetric('ModelFetchTime', MetricUnit.Milliseconds, fetchMs);
      metrics.addMetric('ModelLoadTime', MetricUnit.Milliseconds, createMs);
      metrics.addMetric('ModelBytes', MetricUnit.Bytes, bytes);
    },
    inferred: ({ runMs }) => {
      metrics.addMetric('InferenceTime', MetricUnit.Milliseconds, runMs);
    },
  };
  return {
    logger,
    metrics,
    telemetry,
    payload: ({ requestBytes, responseBytes }) => {
      metrics.addMetric('RequestBytes', MetricUnit.Bytes, requestBytes);
      metrics.addMetric('ResponseBytes', MetricUnit.Bytes, responseBytes);
    },
    flush: () => {
      if (inLambda) metrics.publishStoredMetrics();
      else metrics.clearMetrics();
    },
    takeColdStart: () => {
      const was = coldStart;
      if (was && inLambda) metrics.captureColdStartMetric();
      coldStart = false;
      return was;
    },
  };
}
