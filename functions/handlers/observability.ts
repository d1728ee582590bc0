/**
 * Powertools for AWS Lambda: structured logs, CloudWatch metrics (EMF) and X-Ray tracing, created once per
 * process. Metrics: ColdStart, ModelLoadTime, ModelFetchTime, ModelBytes, InferenceTime, RequestBytes,
 * ResponseBytes. Outside Lambda (the local runtime, tests) metrics are not emitted.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { ServingTelemetry } from '../core/model-service.js';
import { METRICS_NAMESPACE } from './contract.js';

/** The process's logger, metrics and tracer, and the serving telemetry built on them. */
export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
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
  const tracer = new Tracer({ serviceName: service, enabled: inLambda });
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
    tracer,
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
