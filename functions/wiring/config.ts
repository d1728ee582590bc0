/**
 * The environment, read once and typed. Nothing else in the functions reads `process.env`.
 */
import os from 'node:os';
import {
  DEFAULT_LIMITS,
  isValidModelName,
  limitsSchema,
  parseCatalogPreprocess,
  type Limits,
} from '../core/catalog.js';
import { NO_CAPTURE, resolveCapturePolicy, type CapturePolicy } from '../core/capture.js';
import type { Preprocess } from '../core/image/spec.js';
import { parseCatalogRollout, ROLLOUT_DEFAULTS, type RolloutPolicy } from '../core/rollout.js';
import { MODEL_SERVICE_DEFAULTS } from '../core/model-service.js';
import { REGISTRATION_STEPS, type RegistrationStep } from '../core/model-repository.js';
import type { GraphOptimizationLevel, SessionOptions } from '../core/session.js';
import { BATCH_DEFAULTS } from '../core/batch/job.js';
import { ENV } from '../core/contract.js';
import { S3_CLIENT_DEFAULTS } from '../adapters/s3-settings.js';
import { containerCredentials, type CredentialsSource } from '../adapters/aws-signing.js';

/** Settings of a function (or of the local runtime), from its environment. */
export interface RuntimeConfig {
  /** S3 bucket of the model repository (`MODEL_BUCKET`). */
  readonly bucket?: string;
  /** `AWS_REGION` (set by Lambda), default `us-east-1`: the region the serving functions sign their calls for. */
  readonly region: string;
  /** S3 endpoint for S3-compatible servers (`S3_ENDPOINT`); unset on AWS. */
  readonly s3Endpoint?: string;
  /** A local folder used as the repository instead of S3 (`MODEL_DIR`). */
  readonly modelDir?: string;
  /** The one model an `infer` function serves (`MODEL_NAME`); unset locally, where every model is served. */
  readonly modelName?: string;
  /** `MANIFEST_TTL_SECONDS`, default 15. */
  readonly manifestTtlSeconds: number;
  /** `MODEL_LIMITS` (JSON of the catalog's `limits`), defaults applied. */
  readonly limits: Limits;
  /** `CATALOG_PREPROCESS`: image preprocessing that catalog entries declare, per model (registration applies it). */
  readonly catalogPreprocess: ReadonlyMap<string, Preprocess>;
  /** `DATA_CAPTURE` (JSON of a catalog entry's `capture`), defaults applied; unset, nothing is captured. */
  readonly capture: CapturePolicy;
  /** `CATALOG_ROLLOUT`: rollout policies that catalog entries declare, per model (registration applies them). */
  readonly catalogRollout: ReadonlyMap<string, RolloutPolicy>;
  /** `ROLLOUT_INTERVAL_SECONDS` in ms: how often `npm start`'s rollout controller runs. */
  readonly rolloutIntervalMs: number;
  /** `ALARM_TOPIC_ARN`: where the deployed rollout controller publishes rollbacks. */
  readonly alarmTopicArn?: string;
  /** `AWS_ENDPOINT_URL_CLOUDWATCH`, `AWS_ENDPOINT_URL_SNS`: the rollout controller's endpoints; unset on AWS. */
  readonly serviceEndpoints: { readonly cloudwatch?: string; readonly sns?: string };
  /** `PRELOAD=true`: load the latest version during init. */
  readonly preload: boolean;
  /**
   * `RESPONSE_STREAMING=true`: the front streams answers, so the infer handler streams them (up to Lambda's streamed
   * limit instead of the 6 MB of a buffered result). Infra sets it from the front; unset, `undefined`: deployed,
   * buffered; under `npm start`, the emulated front's default (`frontStreams`: a function URL streams).
   */
  readonly responseStreaming?: boolean;
  /** `STORAGE_TIMEOUT_SECONDS`: deadline of a storage read while serving (the model file gets more per MB). */
  readonly storageTimeoutSeconds?: number;
  /** `MODEL_DOWNLOAD_PART_MB` (default 8) and `MODEL_DOWNLOAD_CONCURRENCY` (default 8): the serving download. */
  readonly download: { readonly partBytes: number; readonly concurrency: number };
  /** `MODEL_SCRATCH_DIR`: where model files are downloaded; unset, the OS temp dir (`/tmp` on Lambda). */
  readonly scratchDir?: string;
  /** `SESSION_BUDGET_MB` in bytes: model files kept loaded across models; unset, no limit. */
  readonly maxLoadedBytes?: number;
  /** `MAX_MODEL_BYTES` for registration, default 1 GiB. */
  readonly maxModelBytes: number;
  /** `MAX_GRAPH_BYTES`: largest model graph registration holds in memory (see {@link maxGraphBytesDefault}). */
  readonly maxGraphBytes: number;
  /** `BATCH_ITEMS_PER_CHILD` and `BATCH_MAX_CONCURRENCY`: the local batch engine (see `BATCH_DEFAULTS`). */
  readonly batch: { readonly itemsPerChild: number; readonly maxConcurrency: number };
  /** `AWS_LAMBDA_RUNTIME_API` (set by Lambda): where the inference watchdog posts a 504 for a stuck run. */
  readonly lambdaRuntimeApi?: string;
  /** This function's name (`AWS_LAMBDA_FUNCTION_NAME`), for the warmers' self-invocations and async jobs. */
  readonly functionName?: string;
  /** `AWS_ENDPOINT_URL_LAMBDA`: the Lambda API's endpoint for those invocations; unset on AWS. */
  readonly lambdaEndpoint?: string;
  /** `REGISTRATION_TIMEOUT_SECONDS`: deadline of an upload's isolated load and smoke inference, default 100. */
  readonly registrationTimeoutSeconds: number;
  /**
   * `REGISTRATION_MEMORY_MB`: resident-memory cap of that isolated process; default 75% of the function's memory
   * on Lambda, 2048 locally.
   */
  readonly registrationMemoryMb: number;
  /**
   * `ONNXRUNTIME_THREAD`: where serving runs onnxruntime: `main` (default), `worker` (a worker thread of this
   * process) or `process` (a supervised child process per session, `npm start`'s default).
   */
  readonly onnxruntimeThread: OnnxruntimeThread;
  /** `FAULT_KILL_AFTER_REGISTRATION_STEP`: crash tests only; register kills its process after this step. */
  readonly faultKillAfterStep?: RegistrationStep;
  /** `POWERTOOLS_TRACE_ENABLED=true`: load the Powertools Tracer. */
  readonly tracing: boolean;
  /** How onnxruntime sessions are created. */
  readonly sessionOptions: SessionOptions;
  /** The local gateway's read bounds (`npm start` only; API Gateway reads deployed bodies). */
  readonly gateway: GatewayReadLimits;
}

/** Read bounds of the local gateway, in the units of its options (`startGateway`). */
export interface GatewayReadLimits {
  /** `GATEWAY_BODY_TIMEOUT_SECONDS`, default 30. */
  readonly bodyTimeoutMs: number;
  /** `GATEWAY_MIN_BODY_RATE` in bytes per second, default 16384; 0 disables the check. */
  readonly minBodyBytesPerSecond: number;
  /** `GATEWAY_LINGER_SECONDS`, default 5. */
  readonly lingerMs: number;
}

/**
 * Defaults of {@link GatewayReadLimits} (and the fixed 5 s window of the rate check); the README's limits table
 * states them. API Gateway documents no body-read deadline of its own: its fleet reads a slow upload without holding
 * the function, which is invoked once the body is whole. One local process holding four stalled 10 MB bodies would
 * refuse every other POST, so the local gateway gives a body 30 s (about the 29 s API Gateway gives the whole
 * integration) and drops one that falls under 16 KiB/s over 5 s (a stall). A refused body is still read for up to
 * 5 s and twice `maxBodyBytes`: enough for a client sending up to twice the limit, on loopback, to finish writing and
 * read its 413 (a close before that resets its connection).
 */
export const GATEWAY_READ_LIMIT_DEFAULTS = {
  bodyTimeoutSeconds: 30,
  minBodyBytesPerSecond: 16 * 1024,
  bodyRateWindowSeconds: 5,
  lingerSeconds: 5,
} as const;

/**
 * Bounds of registration's isolated session. The deadline leaves the register function's 5-minute timeout room
 * for a locale fallback (a second session) and the writes; the cap leaves the handler's own process a quarter.
 */
export const REGISTRATION_DEFAULTS = { timeoutSeconds: 100, memoryShare: 0.75, localMemoryMb: 2048 } as const;

function registrationMemoryDefault(env: NodeJS.ProcessEnv): number {
  const memory = Number(env[ENV.functionMemorySize]);
  return memory > 0 ? Math.floor(memory * REGISTRATION_DEFAULTS.memoryShare) : REGISTRATION_DEFAULTS.localMemoryMb;
}

/** Lambda gives one vCPU per 1,769 MB of memory. */
const MB_PER_VCPU = 1769;

/** `MAX_MODEL_BYTES` when unset: the largest upload registration accepts (the infra sizes register's `/tmp` by it). */
export const DEFAULT_MAX_MODEL_BYTES = 1024 * 1024 * 1024;

/**
 * How `MAX_GRAPH_BYTES` is derived when unset. Registration holds a model's graph (the `.onnx` without its weights'
 * values) in the register process, at most 2.5 x the graph + 64 MiB (measured: bench `register_memory`), never the
 * weights; the isolated onnxruntime process has `REGISTRATION_MEMORY_MB`. Deployed, the register process gets the
 * rest of the function's memory less `baseMb` for Node, the handler and that 64 MiB, so the two together never
 * exceed the function's memory (3,008 MB: 752 MB, graphs up to about 200 MB). Locally, `localMb`.
 */
export const GRAPH_BYTES_DEFAULTS = { baseMb: 256, factor: 2.5, minMb: 16, localMb: 256 } as const;

function maxGraphBytesDefault(env: NodeJS.ProcessEnv, registrationMemoryMb: number): number {
  const memory = Number(env[ENV.functionMemorySize]);
  const { baseMb, factor, minMb, localMb } = GRAPH_BYTES_DEFAULTS;
  const mb = memory > 0 ? Math.max(minMb, Math.floor((memory - registrationMemoryMb - baseMb) / factor)) : localMb;
  return mb * 1024 * 1024;
}

/** Thrown at init when the environment is wrong: the function should not start half-configured. */
export class ConfigurationError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

function nonNegativeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new ConfigurationError(`${name} must be a number of 0 or more, got "${raw}"`);
  return value;
}

/** A per-model setting of the catalog passed as JSON in `name` (empty when unset); the parser names what is wrong. */
function catalogMap<T>(
  env: NodeJS.ProcessEnv,
  name: string,
  parse: (json: string) => ReadonlyMap<string, T>,
): ReadonlyMap<string, T> {
  const json = env[name];
  if (json === undefined || json === '') return new Map();
  try {
    return parse(json);
  } catch (error) {
    throw new ConfigurationError(`${name} is invalid: ${(error as Error).message}`);
  }
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new ConfigurationError(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/**
 * onnxruntime's intra-op threads: the whole vCPUs Lambda gives this memory size (one per 1,769 MB, at least 1, at
 * most 6 at 10,240 MB); locally, the machine's. Not `os.availableParallelism()` on Lambda: it reports the host's
 * cores whatever the memory size. A fractional vCPU is a CPU-time quota, not a core: a thread beyond the whole vCPUs
 * would spin against that quota between operators instead of adding compute.
 */
export function intraOpThreads(env: NodeJS.ProcessEnv): number {
  const memory = env[ENV.functionMemorySize];
  if (memory !== undefined && memory !== '') return Math.max(1, Math.min(6, Math.floor(Number(memory) / MB_PER_VCPU)));
  return Math.max(1, os.availableParallelism());
}

/**
 * The credentials of the function's role, as the SDK's default chain finds them on Lambda: the key pair Lambda sets
 * (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else a container credential endpoint
 * (`AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI`), fetched and refreshed before they expire; throws
 * {@link ConfigurationError} when there is neither.
 */
export function credentialsFromEnvironment(env: NodeJS.ProcessEnv = process.env): CredentialsSource {
  const accessKeyId = env[ENV.accessKeyId];
  const secretAccessKey = env[ENV.secretAccessKey];
  if (accessKeyId && secretAccessKey) {
    const sessionToken = env[ENV.sessionToken];
    return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  }
  if (env[ENV.containerCredentialsFullUri] || env[ENV.containerCredentialsRelativeUri])
    return containerCredentials(env);
  throw new ConfigurationError(
    `set ${ENV.accessKeyId} and ${ENV.secretAccessKey} (Lambda sets them from the function's role), or ` +
      `${ENV.containerCredentialsFullUri}, to read MODEL_BUCKET`,
  );
}

/** Where serving runs onnxruntime (`ONNXRUNTIME_THREAD`). */
export type OnnxruntimeThread = 'main' | 'worker' | 'process';

const ONNXRUNTIME_THREADS: readonly OnnxruntimeThread[] = ['main', 'worker', 'process'];

const OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/** Reads the configuration; throws {@link ConfigurationError} naming the variable at fault. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const registrationMemoryMb = positiveNumber(env, ENV.registrationMemoryMb, registrationMemoryDefault(env));
  let limits = DEFAULT_LIMITS;
  const limitsJson = env[ENV.modelLimits];
  let json: { timeoutMs?: unknown } | undefined;
  if (limitsJson !== undefined && limitsJson !== '') {
    try {
      json = JSON.parse(limitsJson);
    } catch {
      throw new ConfigurationError(`${ENV.modelLimits} is not valid JSON`);
    }
    const parsed = limitsSchema.safeParse(json);
    if (!parsed.success) throw new ConfigurationError(`${ENV.modelLimits} is invalid: ${parsed.error.message}`);
    limits = parsed.data;
  }
  if (json?.timeoutMs === undefined && env[ENV.inferenceTimeoutMs]) {
    limits = { ...limits, timeoutMs: Math.round(positiveNumber(env, ENV.inferenceTimeoutMs, limits.timeoutMs)) };
  }
  const catalogPreprocess: ReadonlyMap<string, Preprocess> = catalogMap(
    env,
    ENV.catalogPreprocess,
    parseCatalogPreprocess,
  );
  const catalogRollout: ReadonlyMap<string, RolloutPolicy> = catalogMap(env, ENV.catalogRollout, parseCatalogRollout);
  let capture = NO_CAPTURE;
  const captureJson = env[ENV.dataCapture];
  if (captureJson !== undefined && captureJson !== '') {
    try {
      capture = resolveCapturePolicy(JSON.parse(captureJson));
    } catch (error) {
      throw new ConfigurationError(`${ENV.dataCapture} is invalid: ${(error as Error).message}`);
    }
  }
  const modelName = env[ENV.modelName] || undefined;
  if (modelName !== undefined && !isValidModelName(modelName)) {
    throw new ConfigurationError(`${ENV.modelName} "${modelName}" is not a valid model name`);
  }
  const level = (env[ENV.graphOptimizationLevel] ?? 'all') as GraphOptimizationLevel;
  if (!OPTIMIZATION_LEVELS.includes(level)) {
    throw new ConfigurationError(`${ENV.graphOptimizationLevel} must be one of ${OPTIMIZATION_LEVELS.join(', ')}`);
  }
  const thread = (env[ENV.onnxruntimeThread] || 'main') as OnnxruntimeThread;
  if (!ONNXRUNTIME_THREADS.includes(thread)) {
    throw new ConfigurationError(
      `${ENV.onnxruntimeThread} must be one of ${ONNXRUNTIME_THREADS.join(', ')}, got "${thread}"`,
    );
  }
  const streaming = env[ENV.responseStreaming] || undefined;
  if (streaming !== undefined && streaming !== 'true' && streaming !== 'false') {
    throw new ConfigurationError(`${ENV.responseStreaming} must be true or false, got "${streaming}"`);
  }
  const killAfter = env[ENV.faultKillAfterStep] || undefined;
  if (killAfter !== undefined && !(REGISTRATION_STEPS as readonly string[]).includes(killAfter)) {
    throw new ConfigurationError(`${ENV.faultKillAfterStep} must be one of ${REGISTRATION_STEPS.join(', ')}`);
  }
  return {
    ...(killAfter === undefined ? {} : { faultKillAfterStep: killAfter as RegistrationStep }),
    onnxruntimeThread: thread,
    bucket: env[ENV.modelBucket] || undefined,
    region: env[ENV.region] || S3_CLIENT_DEFAULTS.region,
    s3Endpoint: env[ENV.s3Endpoint] || undefined,
    modelDir: env[ENV.modelDir] || undefined,
    modelName,
    manifestTtlSeconds: positiveNumber(env, ENV.manifestTtlSeconds, MODEL_SERVICE_DEFAULTS.manifestTtlMs / 1000),
    limits,
    catalogPreprocess,
    capture,
    catalogRollout,
    ...(env[ENV.alarmTopicArn] ? { alarmTopicArn: env[ENV.alarmTopicArn] } : {}),
    serviceEndpoints: {
      ...(env[ENV.cloudwatchEndpoint] ? { cloudwatch: env[ENV.cloudwatchEndpoint] } : {}),
      ...(env[ENV.snsEndpoint] ? { sns: env[ENV.snsEndpoint] } : {}),
    },
    rolloutIntervalMs:
      positiveNumber(env, ENV.rolloutIntervalSeconds, ROLLOUT_DEFAULTS.controllerIntervalSeconds) * 1000,
    preload: env[ENV.preload] === 'true',
    ...(streaming === undefined ? {} : { responseStreaming: streaming === 'true' }),
    storageTimeoutSeconds: env[ENV.storageTimeoutSeconds]
      ? positiveNumber(env, ENV.storageTimeoutSeconds, 10)
      : undefined,
    download: {
      partBytes: Math.round(
        positiveNumber(env, ENV.downloadPartMb, MODEL_SERVICE_DEFAULTS.downloadPartBytes / 1024 ** 2) * 1024 ** 2,
      ),
      concurrency: Math.max(
        1,
        Math.round(positiveNumber(env, ENV.downloadConcurrency, MODEL_SERVICE_DEFAULTS.downloadConcurrency)),
      ),
    },
    scratchDir: env[ENV.scratchDir] || undefined,
    maxLoadedBytes: env[ENV.sessionBudgetMb] ? positiveNumber(env, ENV.sessionBudgetMb, 1) * 1024 * 1024 : undefined,
    maxModelBytes: positiveNumber(env, ENV.maxModelBytes, DEFAULT_MAX_MODEL_BYTES),
    batch: {
      itemsPerChild: Math.round(positiveNumber(env, ENV.batchItemsPerChild, BATCH_DEFAULTS.itemsPerChild)),
      maxConcurrency: Math.round(positiveNumber(env, ENV.batchMaxConcurrency, BATCH_DEFAULTS.localMaxConcurrency)),
    },
    maxGraphBytes: positiveNumber(env, ENV.maxGraphBytes, maxGraphBytesDefault(env, registrationMemoryMb)),
    registrationTimeoutSeconds: positiveNumber(
      env,
      ENV.registrationTimeoutSeconds,
      REGISTRATION_DEFAULTS.timeoutSeconds,
    ),
    registrationMemoryMb,
    functionName: env[ENV.functionName] || undefined,
    lambdaEndpoint: env[ENV.lambdaEndpoint] || undefined,
    lambdaRuntimeApi: env[ENV.lambdaRuntimeApi] || undefined,
    tracing: env[ENV.traceEnabled] === 'true',
    sessionOptions: { intraOpNumThreads: intraOpThreads(env), graphOptimizationLevel: level },
    gateway: {
      bodyTimeoutMs:
        positiveNumber(env, ENV.gatewayBodyTimeoutSeconds, GATEWAY_READ_LIMIT_DEFAULTS.bodyTimeoutSeconds) * 1000,
      minBodyBytesPerSecond: nonNegativeNumber(
        env,
        ENV.gatewayMinBodyRate,
        GATEWAY_READ_LIMIT_DEFAULTS.minBodyBytesPerSecond,
      ),
      lingerMs: nonNegativeNumber(env, ENV.gatewayLingerSeconds, GATEWAY_READ_LIMIT_DEFAULTS.lingerSeconds) * 1000,
    },
  };
}
