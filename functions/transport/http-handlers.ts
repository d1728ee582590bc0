/**
 * The HTTP-facing handlers (`infer`, `control`) as factories over a {@link Runtime}. Kept apart from the `register`
 * handler so that their bundles do not carry registration (the ONNX protobuf schema and graph rewrites): the infer
 * function's cold start parses every byte of its bundle.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Limits } from '../core/catalog.js';
import { createSharpImageDecoder } from '../adapters/sharp-image-decoder.js';
import {
  type AsyncFailureRecord,
  type AsyncJobEvent,
  isAsyncFailureRecord,
  isAsyncJobEvent,
} from '../core/async-jobs.js';
import { createApi, createInference, type ApiScope, type AsyncJobsOptions } from './api.js';
import { createAsyncRunner, type AsyncJobResult } from './async-runner.js';
import { errorResponse, fromApiGatewayEvent, toApiGatewayResult, type ApiGatewayEvent } from './http.js';
import type { Observability } from '../wiring/observability.js';
import type { Runtime } from '../wiring/runtime.js';
import { InferenceServerError } from '../core/errors.js';
import { isWarmerEvent, warm, type SelfInvoker, type WarmerEvent, type WarmerResult } from '../core/warmer.js';

/** An API Gateway handler (REST payload 1.0 or HTTP API payload 2.0). */
export type HttpHandler = (
  event: ApiGatewayEvent,
  context?: Pick<Context, 'awsRequestId'>,
) => Promise<APIGatewayProxyResult>;

/**
 * The `infer` handler: API Gateway events, warmer events, async jobs (an `Event` invocation) and the records of
 * their on-failure destination.
 */
export type InferHandler = (
  event: ApiGatewayEvent | WarmerEvent | AsyncJobEvent | AsyncFailureRecord,
  context?: Pick<Context, 'awsRequestId'> & Partial<Pick<Context, 'invokedFunctionArn'>>,
) => Promise<APIGatewayProxyResult | WarmerResult | AsyncJobResult>;

function httpHandler(
  runtime: Runtime,
  observability: Observability,
  scope: ApiScope,
  limitsFor: (model: string) => Limits = () => runtime.config.limits,
  notReadyReason?: () => string | undefined,
  asyncJobs?: AsyncJobsOptions,
): HttpHandler {
  const api = createApi({
    service: runtime.service,
    scope,
    limitsFor,
    onInference: observability.payload,
    ...(notReadyReason === undefined ? {} : { notReadyReason }),
    ...(asyncJobs === undefined ? {} : { asyncJobs }),
  });
  return async (event, context) => {
    observability.takeColdStart();
    const requestId = context?.awsRequestId ?? randomUUID();
    try {
      const response = await api(fromApiGatewayEvent(event, requestId));
      if (response.statusCode >= 500) {
        observability.logger.warn('request failed', {
          statusCode: response.statusCode,
          requestId,
          error: response.cause as Error,
        });
      }
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
    /** Why models are not ready yet (see `ApiOptions.notReadyReason`). @default always ready */
    notReadyReason?: () => string | undefined;
    /** Async requests (docs/async.md). @default refused with a 400: no model bucket */
    asyncJobs?: AsyncJobsOptions;
  } = {},
): InferHandler {
  const scope: ApiScope = options.model === undefined ? { kind: 'all' } : { kind: 'model', model: options.model };
  const limitsFor = options.limitsFor ?? (() => runtime.config.limits);
  const http = httpHandler(runtime, observability, scope, limitsFor, options.notReadyReason, options.asyncJobs);
  const runner =
    options.asyncJobs === undefined
      ? undefined
      : createAsyncRunner({
          service: runtime.service,
          inference: createInference(runtime.service, createSharpImageDecoder()),
          jobs: options.asyncJobs,
          limitsFor,
          onRecordError: (error) =>
            observability.logger.error('async job: the error record could not be written', { error: error as Error }),
        });
  return async (event, context) => {
    if (isAsyncJobEvent(event) || isAsyncFailureRecord(event)) {
      if (runner === undefined) throw new Error('an async job reached a function without async requests configured');
      if (options.model !== undefined && modelOf(event) !== options.model) {
        throw new Error(`an async job of model "${modelOf(event)}" reached the function of "${options.model}"`);
      }
      observability.takeColdStart();
      try {
        const result = isAsyncJobEvent(event) ? await runner.run(event) : await runner.recordFailure(event);
        observability.logger.info('async job', { ...result });
        return result;
      } catch (error) {
        // Lambda retries the attempt, then hands its error message to the on-failure destination, which puts it in
        // the job record that callers read: only our own errors' messages (safe, actionable) go there; anything
        // else (a denial, a bug) is logged here in full and travels as a reference to this log.
        if (error instanceof InferenceServerError) throw error;
        const requestId = context?.awsRequestId ?? randomUUID();
        observability.logger.error('async job attempt failed', { requestId, error: error as Error });
        throw new Error(`internal error; request id ${requestId} (see the function's log)`, { cause: error });
      } finally {
        observability.flush();
      }
    }
    if (!isWarmerEvent(event)) return http(event, context);
    if (options.model === undefined) throw new Error('a warmer event needs MODEL_NAME: which model should be warmed?');
    const coldStart = observability.takeColdStart();
    try {
      // The fan-out goes where this warmer came in (the serving alias with provisioned concurrency), not $LATEST.
      const target = context?.invokedFunctionArn;
      const result = await warm(event, {
        service: runtime.service,
        model: options.model,
        coldStart,
        invoke: options.invoke,
        ...(target === undefined ? {} : { target }),
      });
      observability.logger.info('warmed', { ...result });
      return result;
    } finally {
      observability.flush();
    }
  };
}

/** The `control` handler: health, server metadata and the repository index. */
export function createControlHandler(
  runtime: Runtime,
  observability: Observability,
  options: {
    /** Why the server is not ready yet (see `ApiOptions.notReadyReason`). @default always ready */
    notReadyReason?: () => string | undefined;
  } = {},
): HttpHandler {
  return httpHandler(runtime, observability, { kind: 'control' }, undefined, options.notReadyReason);
}

function modelOf(event: AsyncJobEvent | AsyncFailureRecord): string {
  return 'asyncInference' in event ? event.asyncInference.model : event.requestPayload.asyncInference.model;
}
