/**
 * The HTTP-facing handlers (`infer`, `control`) as factories over a {@link Runtime}. Kept apart from the `register`
 * handler so that their bundles do not carry registration (the ONNX protobuf schema and graph rewrites): the infer
 * function's cold start parses every byte of its bundle.
 */
import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';
import { createSharpImageDecoder } from '../adapters/sharp-image-decoder.js';
import {
  type AsyncFailureRecord,
  type AsyncJobEvent,
  isAsyncFailureRecord,
  isAsyncJobEvent,
} from '../core/async-jobs.js';
import type { BatchJobs } from '../core/batch/index.js';
import type { Limits } from '../core/catalog.js';
import { InferenceServerError } from '../core/errors.js';
import {
  createApi,
  createInference,
  type ApiOptions,
  type ApiScope,
  type AsyncJobsOptions,
  type ResponseDelivery,
} from './api.js';
import { createAsyncRunner, type AsyncJobResult } from './async-runner.js';
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

/** What an `infer` function is invoked with besides proxy events: warmers, async jobs and their failure records. */
type InvocationEvent = WarmerEvent | AsyncJobEvent | AsyncFailureRecord;

/**
 * The `infer` handler: proxy events, warmer events, async jobs (an `Event` invocation) and the records of their
 * on-failure destination.
 */
export type InferHandler = (
  event: ApiGatewayEvent | InvocationEvent,
  context?: HandlerContext,
) => Promise<ApiGatewayResult | WarmerResult | AsyncJobResult>;

/**
 * The streaming `infer` handler, for fronts that stream (see `RESPONSE_STREAMING`): it writes each answer onto
 * Lambda's response stream (prelude, then body) instead of returning it, and a warmer's result as plain JSON.
 */
export type StreamingInferHandler = (
  event: ApiGatewayEvent | InvocationEvent,
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
    asyncJobs?: AsyncJobsOptions;
    batch?: BatchJobs;
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
    ...(options.asyncJobs === undefined ? {} : { asyncJobs: options.asyncJobs }),
    ...(options.batch === undefined ? {} : { batch: options.batch }),
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
      // Before returning: once it returns, a Lambda instance may be frozen. Never rejects; a write failure is only
      // a metric. See docs/capture.md, "When batches are written".
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
  /** Async requests (docs/async.md). @default refused with a 400: no model bucket */
  asyncJobs?: AsyncJobsOptions;
  /** The engine behind the batch routes (see `ApiOptions.batch`). @default none: they answer 404 */
  batch?: BatchJobs;
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

/**
 * Runs async jobs and records their failures (docs/async.md), or undefined without async requests configured.
 * A failed attempt rethrows for Lambda's retries and on-failure destination.
 */
function asyncJobRunner(
  runtime: Runtime,
  observability: Observability,
  options: InferOptions,
): ((event: AsyncJobEvent | AsyncFailureRecord, context?: HandlerContext) => Promise<AsyncJobResult>) | undefined {
  if (options.asyncJobs === undefined) return undefined;
  const runner = createAsyncRunner({
    service: runtime.service,
    inference: createInference(runtime.service, createSharpImageDecoder()),
    jobs: options.asyncJobs,
    limitsFor: options.limitsFor ?? (() => runtime.config.limits),
    onRecordError: (error) =>
      observability.logger.error('async job: the error record could not be written', { error: error as Error }),
  });
  return async (event, context) => {
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
      await runtime.capture.flushIfDue();
      observability.flush();
    }
  };
}

/** Answers an event that is not a proxy event: a warmer, an async job or its failure record. */
function invocationHandler(
  runtime: Runtime,
  observability: Observability,
  options: InferOptions,
): (event: InvocationEvent, context?: HandlerContext) => Promise<WarmerResult | AsyncJobResult> {
  const runJob = asyncJobRunner(runtime, observability, options);
  return (event, context) => {
    if (isAsyncJobEvent(event) || isAsyncFailureRecord(event)) {
      if (runJob === undefined) throw new Error('an async job reached a function without async requests configured');
      return runJob(event, context);
    }
    return warmOnce(runtime, observability, event, options, context);
  };
}

function isInvocationEvent(event: ApiGatewayEvent | InvocationEvent): event is InvocationEvent {
  return isWarmerEvent(event) || isAsyncJobEvent(event) || isAsyncFailureRecord(event);
}

function modelOf(event: AsyncJobEvent | AsyncFailureRecord): string {
  return 'asyncInference' in event ? event.asyncInference.model : event.requestPayload.asyncInference.model;
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
  const invocation = invocationHandler(runtime, observability, options);
  return async (event, context) => (isInvocationEvent(event) ? invocation(event, context) : http(event, context));
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
  const invocation = invocationHandler(runtime, observability, options);
  return async (event, responseStream, context) => {
    if (isInvocationEvent(event)) {
      // A warmer's caller (EventBridge, the fan-out's Invoke) reads the stream as the result: plain JSON, no prelude.
      const result = await invocation(event, context);
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
