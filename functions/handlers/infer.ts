/**
 * Lambda entry point `infer-<model>`: serves `/v2/models/<MODEL_NAME>/...` and warmer events. With `MODEL_NAME`
 * unset it is the shared infer function: every model without a catalog entry, within `SESSION_BUDGET_MB`.
 * Everything that can happen at init does: configuration, clients, and (with `PRELOAD=true`) the latest session.
 * Past a model's `limits.timeoutMs`, a run is answered 504 and the instance ends (`lambda-watchdog.ts`).
 */
import { createEventInvoker, createLambdaInvoker } from '../adapters/lambda-invoker.js';
import { S3AsyncStore } from '../adapters/s3-async-store.js';
import { ASYNC_INVOCATION } from '../core/async-jobs.js';
import { lambdaRunWatchdog, type LambdaRunWatchdog } from '../adapters/lambda-watchdog.js';
import { createInferHandler, type InferHandler } from '../transport/http-handlers.js';
import { errorResponse, toApiGatewayResult } from '../transport/http.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { credentialsFromEnvironment } from '../wiring/config.js';

// Deployed, onnxruntime runs on the main thread: a stuck run is answered (504) and ended by the watchdog thread.
let watchdog: LambdaRunWatchdog | undefined;
const { config, runtime, observability } = await bootstrap((settings) => settings.modelName ?? 'infer', {
  runWatchdog: (settings) => {
    if (settings.lambdaRuntimeApi === undefined || settings.onnxruntimeThread !== 'main') return undefined;
    watchdog = lambdaRunWatchdog({
      runtimeApi: settings.lambdaRuntimeApi,
      render: (error, requestId) => toApiGatewayResult(errorResponse(error, requestId)),
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

const serve = createInferHandler(runtime, observability, {
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
});

/** The handler Lambda calls. */
export const handler: InferHandler = (event, context) =>
  watchdog === undefined || context === undefined
    ? serve(event, context)
    : watchdog.around(context.awsRequestId, () => serve(event, context));
