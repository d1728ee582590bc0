/**
 * What every Lambda entry point does at init, in one place: read the configuration, set up Powertools (the Tracer
 * only when enabled) and build the runtime.
 */
import { readConfig, type RuntimeConfig } from './config.js';
import { createObservability, loadTracer, type Observability } from './observability.js';
import type { BlobStore } from '../core/blob-store.js';
import type { RunWatchdog } from '../core/model-service.js';
import { createRuntime, type Runtime } from './runtime.js';

/** An initialised function. */
export interface Bootstrapped {
  readonly config: RuntimeConfig;
  readonly observability: Observability;
  readonly runtime: Runtime;
}

/**
 * Initialises a function whose Powertools service name is `service` (or, for `infer`, the model it serves).
 *
 * @example
 * ```ts
 * const { runtime, observability } = await bootstrap((config) => config.modelName ?? 'infer');
 * ```
 */
export async function bootstrap(
  service: string | ((config: RuntimeConfig) => string),
  options: {
    /** The function's store. @default the read-only serving store (`servingStoreFromConfig`) */
    readonly store?: (config: RuntimeConfig) => BlobStore;
    /** Watches serving's runs (see `RuntimeOverrides.runWatchdog`). @default none */
    readonly runWatchdog?: (config: RuntimeConfig) => RunWatchdog | undefined;
  } = {},
): Promise<Bootstrapped> {
  const config = readConfig();
  const name = typeof service === 'string' ? service : service(config);
  const observability = createObservability(
    name,
    config.functionName !== undefined,
    config.tracing ? await loadTracer(name) : undefined,
  );
  const watchdog = options.runWatchdog?.(config);
  const runtime = createRuntime(config, {
    telemetry: observability.telemetry,
    captureTelemetry: observability.capture,
    ...(options.store === undefined ? {} : { store: options.store(config) }),
    ...(watchdog === undefined ? {} : { runWatchdog: watchdog }),
  });
  return { config, observability, runtime };
}
