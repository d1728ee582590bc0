/**
 * Lambda entry point `infer-<model>`: serves `/v2/models/<MODEL_NAME>/...` and warmer events. With `MODEL_NAME`
 * unset it is the shared infer function: every model without a catalog entry, within `SESSION_BUDGET_MB`.
 * Everything that can happen at init does: configuration, clients, and (with `PRELOAD=true`) the latest session.
 */
import { createLambdaInvoker } from '../adapters/lambda-invoker.js';
import { createInferHandler } from '../transport/http-handlers.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { credentialsFromEnvironment } from '../wiring/config.js';

const { config, runtime, observability } = await bootstrap((settings) => settings.modelName ?? 'infer');

if (config.preload && config.modelName !== undefined) {
  // Init has its own 10 s budget and full CPU: a failed preload is not fatal, the first request loads again.
  try {
    await runtime.service.ensureLoaded(await runtime.service.resolve(config.modelName));
  } catch (error) {
    observability.logger.warn('preload failed; the first request will load the model', { error: error as Error });
  }
}

/** The handler Lambda calls. */
export const handler = createInferHandler(runtime, observability, {
  model: config.modelName,
  invoke:
    config.functionName === undefined
      ? undefined
      : createLambdaInvoker(config.functionName, {
          region: config.region,
          credentials: () => credentialsFromEnvironment(),
        }),
});
