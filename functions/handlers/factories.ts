/**
 * The Lambda handlers, as factories over a {@link Runtime}: the entry files (`infer.ts`, `control.ts`,
 * `register.ts`) build them from the environment at init; tests and the local runtime build them with their own.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyResult, Context, S3Event } from 'aws-lambda';
import type { Limits } from '../core/catalog.js';
import { registerUpload, type RegistrationOutcome } from '../core/registration.js';
import { createApi, type ApiScope } from './api.js';
import { errorResponse, fromApiGatewayEvent, toApiGatewayResult, type ApiGatewayEvent } from './http.js';
import type { Observability } from './observability.js';
import type { Runtime } from './runtime.js';
import { isWarmerEvent, warm, type SelfInvoker, type WarmerEvent, type WarmerResult } from './warmer.js';

/** An API Gateway handler (REST payload 1.0 or HTTP API payload 2.0). */
export type HttpHandler = (event: ApiGatewayEvent, context?: Pick<Context, 'awsRequestId'>) => Promise<APIGatewayProxyResult>;

/** The `infer` handler: API Gateway events and warmer events. */
export type InferHandler = (
  event: ApiGatewayEvent | WarmerEvent,
  context?: Pick<Context, 'awsRequestId'>,
) => Promise<APIGatewayProxyResult | WarmerResult>;

function httpHandler(
  runtime: Runtime,
  observability: Observability,
  scope: ApiScope,
  limitsFor: (model: string) => Limits = () => runtime.config.limits,
): HttpHandler {
  const api = createApi({
    service: runtime.service,
    scope,
    limitsFor,
    onInference: observability.payload,
  });
  return async (event, context) => {
    observability.takeColdStart();
    const requestId = context?.awsRequestId ?? randomUUID();
    try {
      const response = await api(fromApiGatewayEvent(event, requestId));
      if (response.statusCode >= 500) observability.logger.warn('request failed', { statusCode: response.statusCode, requestId });
      return toApiGatewayResult(response);
    } catch (error) {
      // fromApiGatewayEvent or the result conversion failed: a malformed event is a bug of the caller's setup.
      observability.logger.error('unexpected error', { requestId, error: error as Error });
      return toApiGatewayResult(errorResponse(error, requestId));
    } finally {
      observability.flush();
    }
  };
}

/**
 * The per-model `infer` handler. With `model` set (deployed), it serves only that model's routes and warms it;
 * without (locally), it serves every model.
 */
export function createInferHandler(
  runtime: Runtime,
  observability: Observability,
  options: {
    model?: string;
    invoke?: SelfInvoker;
    /** Request limits per model; deployed, the function's own `MODEL_LIMITS`. @default the runtime's limits */
    limitsFor?: (model: string) => Limits;
  } = {},
): InferHandler {
  const scope: ApiScope = options.model === undefined ? { kind: 'all' } : { kind: 'model', model: options.model };
  const http = httpHandler(runtime, observability, scope, options.limitsFor);
  return async (event, context) => {
    if (!isWarmerEvent(event)) return http(event, context);
    if (options.model === undefined) throw new Error('a warmer event needs MODEL_NAME: which model should be warmed?');
    const coldStart = observability.takeColdStart();
    try {
      const result = await warm(event, { service: runtime.service, model: options.model, coldStart, invoke: options.invoke });
      observability.logger.info('warmed', { ...result });
      return result;
    } finally {
      observability.flush();
    }
  };
}

/** The `control` handler: health, server metadata and the repository index. */
export function createControlHandler(runtime: Runtime, observability: Observability): HttpHandler {
  return httpHandler(runtime, observability, { kind: 'control' });
}

/** The `register` handler's answer: one outcome per record. */
export interface RegisterResult {
  readonly outcomes: readonly RegistrationOutcome[];
}

/** The S3 object key of a notification record, decoded as S3 encodes it (`+` for spaces, then percent-encoding). */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * The `register` handler: every record is registered or refused on its own; if storage failed for any record
 * the invocation fails after the others are done, so that S3's retry delivers it again (registration is
 * idempotent: a file already registered is a duplicate, not a new version).
 */
export function createRegisterHandler(runtime: Runtime, observability: Observability) {
  return async (event: S3Event): Promise<RegisterResult> => {
    observability.takeColdStart();
    const outcomes: RegistrationOutcome[] = [];
    const failures: unknown[] = [];
    try {
      for (const record of event.Records ?? []) {
        const key = decodeS3Key(record.s3.object.key);
        try {
          const outcome = await registerUpload(key, {
            store: runtime.store,
            repository: runtime.repository,
            sessionFactory: runtime.sessionFactory,
            sessionOptions: runtime.config.sessionOptions,
            maxModelBytes: runtime.config.maxModelBytes,
            limits: runtime.config.limits,
          });
          outcomes.push(outcome);
          observability.logger.info('upload processed', { ...outcome });
          observability.metrics.addMetric(`Upload_${outcome.kind}`, 'Count', 1);
        } catch (error) {
          failures.push(error);
          observability.logger.error('registration failed; the event will be retried', { key, error: error as Error });
        }
      }
    } finally {
      observability.flush();
    }
    if (failures.length > 0) {
      throw new Error(`${failures.length} of ${event.Records?.length ?? 0} uploads could not be processed`, {
        cause: failures[0],
      });
    }
    return { outcomes };
  };
}
