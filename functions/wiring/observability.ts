/**
 * Powertools for AWS Lambda: structured logs and CloudWatch metrics (EMF), created once per process. Metrics:
 * ColdStart, ModelLoadTime, ModelFetchTime, ModelBytes, InferenceTime, RequestBytes, ResponseBytes, data capture's
 * CaptureRecordsWritten, CaptureRecordsDropped, CaptureRecordsFailed, and per version (dimensions `model`,
 * `version`) the rollout figures of `VERSION_METRICS` (docs/rollouts.md). Outside Lambda
 * (the local runtime, tests) metrics are not emitted.
 *
 * The Powertools Tracer is opt-in (`POWERTOOLS_TRACE_ENABLED=true`, the stack's `powertoolsTracer`): Lambda's
 * active tracing already records every invocation, and the Tracer's X-Ray SDK costs about 15 ms of each cold start
 * and, once imported, an async hook on every promise. It is imported only when enabled; it then annotates the
 * cold start and the model, and adds model loads and inference times as trace metadata.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { CaptureTelemetry } from '../adapters/capture-sink.js';
import type { ServingTelemetry } from '../core/model-service.js';
import { METRICS_NAMESPACE } from '../core/contract.js';
import { VERSION_METRICS } from '../core/rollout.js';

type TraceSegment = NonNullable<ReturnType<Tracer['getSegment']>>;
type TraceSubsegment = ReturnType<TraceSegment['addNewSubsegment']>;

/** The process's logger and metrics, and the serving telemetry built on them. */
export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Present when tracing is enabled. */
  readonly tracer?: Tracer;
  readonly telemetry: ServingTelemetry;
  /** Data capture's reports: a dropped or failed record is a metric and a log line, never a failed request. */
  readonly capture: CaptureTelemetry;
  /** Records request and response sizes of one inference. */
  readonly payload: (event: { requestBytes: number; responseBytes: number }) => void;
  /** Call at the end of each invocation: flushes its metrics and closes its trace subsegment. */
  readonly flush: () => void;
  /** Starts an invocation: whether it is the process's first (then set to false); opens its trace subsegment. */
  readonly takeColdStart: () => boolean;
}

/** Imports and creates the Powertools Tracer (only called when tracing is enabled: the import has a cost). */
export async function loadTracer(service: string): Promise<Tracer> {
  let PowertoolsTracer: typeof Tracer;
  try {
    ({ Tracer: PowertoolsTracer } = await import('@aws-lambda-powertools/tracer'));
  } catch (error) {
    // Deployed without the stack's `powertoolsTracer`, the bundle leaves the Tracer out (infra/service-function.ts).
    throw new Error(
      'POWERTOOLS_TRACE_ENABLED is true but the Powertools Tracer is not in this bundle: deploy with -c powertoolsTracer=true',
      { cause: error },
    );
  }
  return new PowertoolsTracer({ serviceName: service });
}

/**
 * Creates the observability of a function named `service`; `inLambda` false turns metric output off; `tracer`
 * (from {@link loadTracer}) adds trace annotations and metadata.
 */
export function createObservability(service: string, inLambda: boolean, tracer?: Tracer): Observability {
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  // Per-version figures go out as their own EMF line with `model` and `version` dimensions (the controller reads them
  // back by those), leaving the dimensions of the invocation's other metrics as they are.
  const versionMetrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  let coldStart = true;
  // With the Tracer, each invocation gets a `## handler` subsegment (the Lambda segment itself is read-only).
  let invocation: { parent: TraceSegment; subsegment: TraceSubsegment } | undefined;
  const telemetry: ServingTelemetry = {
    modelLoaded: ({ model, version, bytes, fetchMs, createMs }) => {
      logger.info('model loaded', { model, version, bytes, fetchMs, createMs });
      metrics.addMetric('ModelFetchTime', MetricUnit.Milliseconds, fetchMs);
      metrics.addMetric('ModelLoadTime', MetricUnit.Milliseconds, createMs);
      metrics.addMetric('ModelBytes', MetricUnit.Bytes, bytes);
      tracer?.putAnnotation('modelVersion', version);
      tracer?.putMetadata('modelLoad', { model, version, bytes, fetchMs, createMs });
    },
    loadFailed: ({ model, version, reason }) => {
      logger.error('model load failed', { model, version, reason });
    },
    served: ({ model, version, latencyMs, error }) => {
      if (!inLambda) return;
      versionMetrics.addDimensions({ model, version });
      versionMetrics.addMetric(VERSION_METRICS.requests, MetricUnit.Count, 1);
      versionMetrics.addMetric(VERSION_METRICS.errors, MetricUnit.Count, error === undefined ? 0 : 1);
      if (error !== undefined)
        versionMetrics.addMetric(`${VERSION_METRICS.errorClassPrefix}${error}`, MetricUnit.Count, 1);
      versionMetrics.addMetric(VERSION_METRICS.latency, MetricUnit.Milliseconds, latencyMs);
      versionMetrics.publishStoredMetrics();
    },
    shadowed: ({ model, candidate, failed, absDiff, relDiff, labelsAgree }) => {
      if (!inLambda) return;
      versionMetrics.addDimensions({ model, version: candidate });
      versionMetrics.addMetric(VERSION_METRICS.shadowErrors, MetricUnit.Count, failed ? 1 : 0);
      // CloudWatch takes no infinities: a copy that does not answer the same contract counts as CLOUDWATCH_MAX.
      if (absDiff !== undefined)
        versionMetrics.addMetric(VERSION_METRICS.shadowAbsDiff, MetricUnit.NoUnit, finite(absDiff));
      if (relDiff !== undefined)
        versionMetrics.addMetric(VERSION_METRICS.shadowRelDiff, MetricUnit.NoUnit, finite(relDiff));
      if (labelsAgree !== undefined) {
        versionMetrics.addMetric(VERSION_METRICS.shadowLabelAgreement, MetricUnit.Count, labelsAgree ? 1 : 0);
      }
      versionMetrics.publishStoredMetrics();
    },
    inferred: ({ model, version, runMs }) => {
      metrics.addMetric('InferenceTime', MetricUnit.Milliseconds, runMs);
      tracer?.putAnnotation('model', model);
      tracer?.putMetadata('inference', { version, runMs });
    },
  };
  const capture: CaptureTelemetry = {
    written: ({ key, records, bytes }) => {
      logger.debug('capture written', { key, records, bytes });
      metrics.addMetric('CaptureRecordsWritten', MetricUnit.Count, records);
    },
    dropped: ({ model, records, reason }) => {
      logger.warn('capture records dropped', { model, records, reason });
      metrics.addMetric('CaptureRecordsDropped', MetricUnit.Count, records);
    },
    failed: ({ key, records, error }) => {
      logger.error('capture write failed; its records are lost, the requests were answered', {
        key,
        records,
        error: error as Error,
      });
      metrics.addMetric('CaptureRecordsFailed', MetricUnit.Count, records);
    },
  };
  return {
    logger,
    metrics,
    ...(tracer === undefined ? {} : { tracer }),
    telemetry,
    capture,
    payload: ({ requestBytes, responseBytes }) => {
      metrics.addMetric('RequestBytes', MetricUnit.Bytes, requestBytes);
      metrics.addMetric('ResponseBytes', MetricUnit.Bytes, responseBytes);
    },
    flush: () => {
      if (inLambda) metrics.publishStoredMetrics();
      else metrics.clearMetrics();
      if (tracer !== undefined && invocation !== undefined) {
        invocation.subsegment.close();
        tracer.setSegment(invocation.parent);
        invocation = undefined;
      }
    },
    takeColdStart: () => {
      const was = coldStart;
      if (was && inLambda) metrics.captureColdStartMetric();
      const parent = tracer?.getSegment();
      if (tracer !== undefined && parent !== undefined) {
        invocation = { parent, subsegment: parent.addNewSubsegment('## handler') };
        tracer.setSegment(invocation.subsegment);
        tracer.annotateColdStart();
      }
      coldStart = false;
      return was;
    },
  };
}

/** CloudWatch refuses values above about 1.17e108: the figure of a copy that does not answer the same contract. */
const CLOUDWATCH_MAX = 1e100;

/** `value` within what CloudWatch accepts (it takes no infinities). */
function finite(value: number): number {
  return Number.isFinite(value) ? Math.min(value, CLOUDWATCH_MAX) : CLOUDWATCH_MAX;
}
