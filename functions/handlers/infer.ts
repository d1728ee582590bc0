/**
 * Lambda entry point `infer-<model>`: serves `/v2/models/<MODEL_NAME>/...` and warmer events. With `MODEL_NAME`
 * unset it is the shared infer function: every model without a catalog entry, within `SESSION_BUDGET_MB`.
 * Everything that can happen at init does: configuration, clients, and (with `PRELOAD=true`) the latest session.
 * Past a model's `limits.timeoutMs`, a run is answered 504 and the instance ends (`lambda-watchdog.ts`).
 */
import type { StreamifyHandler } from 'aws-lambda';
import { createEventInvoker, createLambdaInvoker } from '../adapters/lambda-invoker.js';
import { onLambdaShutdown } from '../adapters/lambda-shutdown.js';
import { S3AsyncStore } from '../adapters/s3-async-store.js';
import { ASYNC_INVOCATION } from '../core/async-jobs.js';
import { lambdaRunWatchdog, type LambdaRunWatchdog } from '../adapters/lambda-watchdog.js';
import {
  createInferHandler,
  createStreamingInferHandler,
  type InferHandler,
  type StreamingInferHandler,
} from '../transport/http-handlers.js';
import { errorResponse } from '../transport/http.js';
import { runtimeApiAnswer } from '../transport/response-stream.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { credentialsFromEnvironment } from '../wiring/config.js';

// Deployed, onnxruntime runs on the main thread: a stuck run is answered (504) and ended by the watchdog thread.
let watchdog: LambdaRunWatchdog | undefined;
const { config, runtime, observability } = await bootstrap((settings) => settings.modelName ?? 'infer', {
  runWatchdog: (settings) => {
    if (settings.lambdaRuntimeApi === undefined || settings.onnxruntimeThread !== 'main') return undefined;
    watchdog = lambdaRunWatchdog({
      runtimeApi: settings.lambdaRuntimeApi,
      // Posted as the front reads this function's answers: streamed where it streams.
      render: (error, requestId) =>
        runtimeApiAnswer(errorResponse(error, requestId), settings.responseStreaming ? 'streamed' : 'buffered'),
    });
    return watchdog;
  },
});

if (config.preload && config.modelName !== undefined) {
  // Init has its own 10 s budget and full CPU: a failed preload is not fatal, the first request loads again.
  try {
    await runtime.service.ensureLoaded(await runtime.service.resolve(config.modelName));
  } catch (error) {
    observability.logger.warn('preload failed; the first request will load the model', { error: error as Error });
  }
}

if (runtime.capture.enabled && config.lambdaRuntimeApi !== undefined) {
  // Capture's last batch is written on SIGTERM, which Lambda sends only to a function with an extension.
  await onLambdaShutdown(config.lambdaRuntimeApi, () => runtime.capture.flush(), {
    unregistered: (reason) =>
      observability.logger.warn('no SIGTERM before shutdown: capture records of the last minutes may be lost', {
        reason,
      }),
  });
}

// Async requests (docs/async.md) need the model bucket, and this function's name to queue the job on its alias.
const asyncJobs =
  config.bucket === undefined || config.functionName === undefined
    ? undefined
    : {
        bucket: config.bucket,
        store: new S3AsyncStore({
          bucket: config.bucket,
          ...(config.s3Endpoint === undefined ? {} : { endpoint: config.s3Endpoint }),
          region: config.region,
          credentials: credentialsFromEnvironment(),
        }),
        invoke: createEventInvoker(`${config.functionName}:${ASYNC_INVOCATION.alias}`, {
          region: config.region,
          credentials: () => credentialsFromEnvironment(),
          ...(config.lambdaEndpoint === undefined ? {} : { endpoint: config.lambdaEndpoint }),
        }),
      };

const options = {
  model: config.modelName,
  ...(asyncJobs === undefined ? {} : { asyncJobs }),
  invoke:
    config.functionName === undefined
      ? undefined
      : createLambdaInvoker(config.functionName, {
          region: config.region,
          credentials: () => credentialsFromEnvironment(),
          ...(config.lambdaEndpoint === undefined ? {} : { endpoint: config.lambdaEndpoint }),
        }),
};

/** What the streaming handler is invoked with: proxy events, warmers, async jobs and their failure records. */
type StreamedEvent = Parameters<StreamingInferHandler>[0];

/** Runs one invocation under the watchdog, when there is one. */
const guarded = <T>(requestId: string | undefined, work: () => Promise<T>): Promise<T> =>
  watchdog === undefined || requestId === undefined ? work() : watchdog.around(requestId, work);

function buffered(): InferHandler {
  const serve = createInferHandler(runtime, observability, options);
  return (event, context) => guarded(context?.awsRequestId, () => serve(event, context));
}

// The Node runtime's own `awslambda` global (no import): `streamifyResponse` tells the runtime to pass a response
// stream, `HttpResponseStream.from` writes the status and headers before the body, as the front expects.
function streamed(): StreamifyHandler<StreamedEvent, void> {
  const serve = createStreamingInferHandler(runtime, observability, {
    ...options,
    from: (stream, prelude) => awslambda.HttpResponseStream.from(stream, { ...prelude }),
  });
  return awslambda.streamifyResponse((event, responseStream, context) =>
    guarded(context?.awsRequestId, () => serve(event, responseStream, context)),
  );
}

/**
 * The handler Lambda calls: a streaming one where the front streams (`RESPONSE_STREAMING=true`, set by infra with
 * the function URL's `RESPONSE_STREAM` or the REST integration's `STREAM`), else one that returns its answer.
 */
export const handler: InferHandler | StreamifyHandler<StreamedEvent, void> = config.responseStreaming
  ? streamed()
  : buffered();
