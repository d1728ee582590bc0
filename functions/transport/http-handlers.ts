/**
 * The HTTP-facing handlers (`infer`, `control`) as factories over a {@link Runtime}. Kept apart from the `register`
 * handler so that their bundles do not carry registration (the ONNX protobuf schema and graph rewrites): the infer
 * function's cold start parses every byte of its bundle.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import type { BatchJobs } from '../core/batch/index.js';
import type { Limits } from '../core/catalog.js';
import { createApi, type ApiScope } from './api.js';
import { errorResponse, fromApiGatewayEvent, toApiGatewayResult, type ApiGatewayEvent } from './http.js';
import type { Observability } from '../wiring/observability.js';
import type { Runtime } from '../wiring/runtime.js';
import { isWarmerEvent, warm, type SelfInvoker, type WarmerEvent, type WarmerResult } from '../core/warmer.js';

/** An API Gateway handler (REST payload 1.0 or HTTP API payload 2.0). */
export type HttpHandler = (
  event: ApiGatewayEvent,
  context?: Pick<Context, 'awsRequestId'>,
) => Promise<APIGatewayProxyResult>;

/** The `infer` handler: API Gateway events and warmer events. */
export type InferHandler = (
  event: ApiGatewayEvent | WarmerEvent,
  context?: Pick<Context, 'awsRequestId'> & Partial<Pick<Context, 'invokedFunctionArn'>>,
) => Promise<APIGatewayProxyResult | WarmerResult>;

function httpHandler(
  runtime: Runtime,
  observability: Observability,
  scope: ApiScope,
  limitsFor: (model: string) => Limits = () => runtime.config.limits,
  notReadyReason?: () => string | undefined,
  batch?: BatchJobs,
): HttpHandler {
  const api = createApi({
    service: runtime.service,
    scope,
    limitsFor,
    onInference: observability.payload,
    ...(notReadyReason === undefined ? {} : { notReadyReason }),
    ...(batch === undefined ? {} : { batch }),
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
    /** The engine behind the batch routes (see `ApiOptions.batch`). @default none: they answer 404 */
    batch?: BatchJobs;
  } = {},
): InferHandler {
  const scope: ApiScope = options.model === undefined ? { kind: 'all' } : { kind: 'model', model: options.model };
  const http = httpHandler(runtime, observability, scope, options.limitsFor, options.notReadyReason, options.batch);
  return async (event, context) => {
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
