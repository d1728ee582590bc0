/**
 * Wiring: builds the store, repository and serving core from a {@link RuntimeConfig}. Handlers call this once,
 * at init; tests and the local runtime call it with their own configuration.
 */
import { BufferedCaptureSink, type CaptureTelemetry } from '../adapters/capture-sink.js';
import { FsBlobStore } from '../adapters/fs-blob-store.js';
import { isolatedSessionFactory } from '../adapters/isolated-session.js';
import { onnxruntimeSessionFactory } from '../adapters/onnxruntime-session.js';
import { supervisedSessionFactory } from '../adapters/supervised-session.js';
import { workerSessionFactory } from '../adapters/worker-session.js';
import { S3Reader } from '../adapters/s3-reader.js';
import type { BlobStore } from '../core/blob-store.js';
import type { CaptureStore } from '../core/capture.js';
import { ModelRepository } from '../core/model-repository.js';
import { ModelService, type RunWatchdog, type ServingTelemetry } from '../core/model-service.js';
import type { SessionFactory } from '../core/session.js';
import { ConfigurationError, credentialsFromEnvironment, type RuntimeConfig } from './config.js';

/** Everything a handler needs, built once per process. */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly store: BlobStore;
  readonly repository: ModelRepository;
  readonly service: ModelService;
  /** Sessions that serve inference (the service's). */
  readonly servingSessionFactory: SessionFactory;
  /** Sessions for registration's load and smoke test. */
  readonly registrationSessionFactory: SessionFactory;
  /** Data capture of this function's answers, under `config.capture` (a 0% policy captures nothing). */
  readonly capture: BufferedCaptureSink;
}

/** Overrides for tests and the local runtime. */
export interface RuntimeOverrides {
  /** @default {@link servingStoreFromConfig}: read-only on S3 */
  readonly store?: BlobStore;
  /**
   * Sessions that serve inference, and nothing else.
   * @default {@link servingSessionFactory}: what `ONNXRUNTIME_THREAD` names
   */
  readonly servingSessionFactory?: SessionFactory;
  /**
   * Sessions for registration, and nothing else. An upload is untrusted: whatever replaces the default must bound
   * it as the default does (a crash, a spin or a runaway allocation of the model must not reach the caller).
   * @default {@link isolatedSessionFactory}: a child process per upload under `REGISTRATION_TIMEOUT_SECONDS` and
   * `REGISTRATION_MEMORY_MB`
   */
  readonly registrationSessionFactory?: SessionFactory;
  /** Watches serving's runs that its session factory cannot stop (deployed: onnxruntime on the main thread). */
  readonly runWatchdog?: RunWatchdog;
  readonly telemetry?: ServingTelemetry;
  /**
   * Where capture batches are written.
   * @default {@link captureStoreOf} the runtime's store
   */
  readonly captureStore?: CaptureStore;
  /** What capture reports (metrics and log lines). @default nothing */
  readonly captureTelemetry?: CaptureTelemetry;
  /** The service's clock (manifest TTL), so that tests can pass time without sleeping. @default Date.now */
  readonly now?: () => number;
}

/** Throws unless the configuration names a store; the bucket when it is S3. */
export function bucketOf(config: RuntimeConfig): string | undefined {
  if (config.modelDir !== undefined) return undefined;
  if (config.bucket === undefined) {
    throw new ConfigurationError('set MODEL_BUCKET (S3, with S3_ENDPOINT for a local server) or MODEL_DIR (a folder)');
  }
  return config.bucket;
}

/**
 * The serving functions' store: a folder (`MODEL_DIR`), or the S3 bucket (`MODEL_BUCKET`, `S3_ENDPOINT`) through the
 * GET-only {@link S3Reader}, signed with the credentials of the environment. Registration writes, and passes its
 * own store (`writable-store.ts`): the AWS SDK stays out of the serving bundles.
 */
export function servingStoreFromConfig(config: RuntimeConfig): BlobStore {
  const bucket = bucketOf(config);
  if (bucket === undefined) return new FsBlobStore(config.modelDir ?? '');
  return new S3Reader({
    bucket,
    ...(config.s3Endpoint === undefined ? {} : { endpoint: config.s3Endpoint }),
    region: config.region,
    credentials: credentialsFromEnvironment(),
  });
}

/**
 * The serving session factory that `ONNXRUNTIME_THREAD` names: `main` runs onnxruntime on this thread, `worker` on
 * a worker thread, `process` in a supervised child process per session (killed at a deadline, replaced when it
 * dies). A process that serves several models at once shares one factory across its runtimes.
 */
export function servingSessionFactory(config: RuntimeConfig): SessionFactory & { close?(): void } {
  switch (config.onnxruntimeThread) {
    case 'process':
      return supervisedSessionFactory();
    case 'worker':
      return workerSessionFactory();
    default:
      return onnxruntimeSessionFactory;
  }
}

/**
 * Where a store takes capture batches: its `writeObject` when it has one (the serving functions' GET-only S3 reader,
 * whose one write that is), else its `put` (a folder, the SDK store).
 */
export function captureStoreOf(store: BlobStore): CaptureStore {
  const writer = store as Partial<CaptureStore>;
  if (typeof writer.writeObject === 'function') return writer as CaptureStore;
  return { writeObject: async (key, body) => void (await store.put(key, body)) };
}

/** Builds the runtime. */
export function createRuntime(config: RuntimeConfig, overrides: RuntimeOverrides = {}): Runtime {
  const store = overrides.store ?? servingStoreFromConfig(config);
  const repository = new ModelRepository(store);
  const serving = overrides.servingSessionFactory ?? servingSessionFactory(config);
  const service = new ModelService({
    repository,
    sessionFactory: serving,
    sessionOptions: config.sessionOptions,
    manifestTtlMs: config.manifestTtlSeconds * 1000,
    storageTimeoutMs: config.storageTimeoutSeconds === undefined ? undefined : config.storageTimeoutSeconds * 1000,
    telemetry: overrides.telemetry,
    downloadPartBytes: config.download.partBytes,
    downloadConcurrency: config.download.concurrency,
    ...(config.scratchDir === undefined ? {} : { scratchDir: config.scratchDir }),
    now: overrides.now,
    maxLoadedBytes: config.maxLoadedBytes,
    ...(overrides.runWatchdog === undefined ? {} : { runWatchdog: overrides.runWatchdog }),
  });
  const registrationSessionFactory =
    overrides.registrationSessionFactory ??
    isolatedSessionFactory({
      deadlineMs: config.registrationTimeoutSeconds * 1000,
      memoryBytes: config.registrationMemoryMb * 2 ** 20,
    });
  const capture = new BufferedCaptureSink({
    store: overrides.captureStore ?? captureStoreOf(store),
    policy: config.capture,
    ...(overrides.captureTelemetry === undefined ? {} : { telemetry: overrides.captureTelemetry }),
  });
  return { config, store, repository, service, servingSessionFactory: serving, registrationSessionFactory, capture };
}
