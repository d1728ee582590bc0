/**
 * The HTTP-facing handlers (`infer`, `control`) as factories over a {@link Runtime}. Kept apart from the `register`
 * handler so that their bundles do not carry registration (the ONNX protobuf schema and graph rewrites): the infer
 * function's cold start parses every byte of its bundle.
 */
import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';
import type { Limits } from '../core/catalog.js';
import { createApi, type ApiOptions, type ApiScope, type ResponseDelivery } from './api.js';
import { consolePage } from './console-page.js';
import {
  errorResponse,
  fromApiGatewayEvent,
  payloadFormatOf,
  toApiGatewayResult,
  type ApiGatewayEvent,
  type ApiGatewayResult,
  type HttpResponse,
} from './http.js';
import { streamResponse, type HttpResponseStreamFrom } from './response-stream.js';
import type { Observability } from '../wiring/observability.js';
import type { Runtime } from '../wiring/runtime.js';
import { isWarmerEvent, warm, type SelfInvoker, type WarmerEvent, type WarmerResult } from '../core/warmer.js';

/** The context fields the handlers read. */
type HandlerContext = Pick<Context, 'awsRequestId'> & Partial<Pick<Context, 'invokedFunctionArn'>>;

/** A proxy event handler (payload 1.0 or 2.0), answering in the event's own format. */
export type HttpHandler = (
  event: ApiGatewayEvent,
  context?: Pick<Context, 'awsRequestId'>,
) => Promise<ApiGatewayResult>;

/** The `infer` handler: proxy events and warmer events. */
export type InferHandler = (
  event: ApiGatewayEvent | WarmerEvent,
  context?: HandlerContext,
) => Promise<ApiGatewayResult | WarmerResult>;

/**
 * The streaming `infer` handler, for fronts that stream (see `RESPONSE_STREAMING`): it writes each answer onto
 * Lambda's response stream (prelude, then body) instead of returning it, and a warmer's result as plain JSON.
 */
export type StreamingInferHandler = (
  event: ApiGatewayEvent | WarmerEvent,
  responseStream: Writable,
  context?: HandlerContext,
) => Promise<void>;

/** The part both deliveries share: an event in, the API's answer out, logged; never throws. */
type Respond = (event: ApiGatewayEvent, requestId: string) => Promise<HttpResponse>;

function responder(
  runtime: Runtime,
  observability: Observability,
  scope: ApiScope,
  options: {
    limitsFor?: (model: string) => Limits;
    notReadyReason?: () => string | undefined;
    delivery?: ResponseDelivery;
    consolePage?: ApiOptions['consolePage'];
  } = {},
): Respond {
  const api = createApi({
    service: runtime.service,
    scope,
    limitsFor: options.limitsFor ?? (() => runtime.config.limits),
    onInference: observability.payload,
    capture: runtime.capture,
    ...(options.consolePage === undefined ? {} : { consolePage: options.consolePage }),
    ...(options.delivery === undefined ? {} : { delivery: options.delivery }),
    ...(options.notReadyReason === undefined ? {} : { notReadyReason: options.notReadyReason }),
  });
  return async (event, requestId) => {
    observability.takeColdStart();
    try {
      const response = await api(fromApiGatewayEvent(event, requestId));
      if (response.statusCode >= 500) {
        observability.logger.warn('request failed', {
          statusCode: response.statusCode,
          requestId,
          error: response.cause as Error,
        });
      }
      return response;
    } catch (error) {
      // fromApiGatewayEvent failed: a malformed event is a bug of the caller's setup.
      observability.logger.error('unexpected error', { requestId, error: error as Error });
      return errorResponse(error, requestId);
    }
  };
}

function httpHandler(respond: Respond, runtime: Runtime, observability: Observability): HttpHandler {
  return async (event, context) => {
    const requestId = context?.awsRequestId ?? randomUUID();
    try {
      return toApiGatewayResult(await respond(event, requestId), payloadFormatOf(event));
    } finally {
      // Before returning: once it returns, a Lambda instance may be frozen (docs/capture.md, "When batches are
      // written"). Never rejects; a write failure is only a metric.
      await runtime.capture.flushIfDue();
      observability.flush();
    }
  };
}

/** Options of the infer handlers. */
interface InferOptions {
  model?: string;
  invoke?: SelfInvoker;
  /** Request limits per model; deployed, the function's own `MODEL_LIMITS`. @default the runtime's limits */
  limitsFor?: (model: string) => Limits;
  /** Why models are not ready yet (see `ApiOptions.notReadyReason`). @default always ready */
  notReadyReason?: () => string | undefined;
}

/** Answers a warmer event (see `core/warmer.ts`). */
async function warmOnce(
  runtime: Runtime,
  observability: Observability,
  event: WarmerEvent,
  options: InferOptions,
  context?: HandlerContext,
): Promise<WarmerResult> {
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
    // A warmer writes whatever capture holds: an idle instance's records wait at most one warmer period.
    await runtime.capture.flush();
    observability.flush();
  }
}

function inferScope(options: InferOptions): ApiScope {
  return options.model === undefined ? { kind: 'all' } : { kind: 'model', model: options.model };
}

/**
 * The per-model `infer` handler. With `model` set (deployed), it serves only that model's routes and warms it;
 * without (locally), it serves every model.
 */
export function createInferHandler(
  runtime: Runtime,
  observability: Observability,
  options: InferOptions = {},
): InferHandler {
  const http = httpHandler(responder(runtime, observability, inferScope(options), options), runtime, observability);
  return async (event, context) =>
    isWarmerEvent(event) ? warmOnce(runtime, observability, event, options, context) : http(event, context);
}

/**
 * The per-model `infer` handler for a front that streams: the same routes and answers as
 * {@link createInferHandler}, written onto the response stream through `from` (deployed,
 * `awslambda.HttpResponseStream.from`), with the streamed response limit instead of the buffered one.
 */
export function createStreamingInferHandler(
  runtime: Runtime,
  observability: Observability,
  options: InferOptions & { from: HttpResponseStreamFrom },
): StreamingInferHandler {
  const respond = responder(runtime, observability, inferScope(options), { ...options, delivery: 'streamed' });
  return async (event, responseStream, context) => {
    if (isWarmerEvent(event)) {
      // A warmer's caller (EventBridge, the fan-out's Invoke) reads the stream as the result: plain JSON, no prelude.
      const result = await warmOnce(runtime, observability, event, options, context);
      await new Promise<void>((resolve) => responseStream.end(JSON.stringify(result), resolve));
      return;
    }
    const requestId = context?.awsRequestId ?? randomUUID();
    try {
      await streamResponse(await respond(event, requestId), responseStream, options.from);
    } finally {
      // The answer has gone out: a due capture batch is written before the instance may be frozen.
      await runtime.capture.flushIfDue();
      observability.flush();
    }
  };
}

/** The `control` handler: the console page, health, server metadata, the OpenAPI document and the repository index. */
export function createControlHandler(
  runtime: Runtime,
  observability: Observability,
  options: {
    /** Why the server is not ready yet (see `ApiOptions.notReadyReason`). @default always ready */
    notReadyReason?: () => string | undefined;
  } = {},
): HttpHandler {
  return httpHandler(
    responder(runtime, observability, { kind: 'control' }, { ...options, consolePage }),
    runtime,
    observability,
  );
}
