/**
 * Serving: resolves versions from the manifest (re-read at most every TTL), loads and verifies model files,
 * keeps sessions in the {@link SessionCache}, checks requests against the model's metadata and runs them.
 * Everything here is independent of HTTP, Lambda and the storage technology.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  BadRequestError,
  CorruptObjectError,
  InferenceServerError,
  InferenceTimeoutError,
  NotFoundError,
  ServiceUnavailableError,
  StorageAccessDeniedError,
} from './errors.js';
import type { ManifestSnapshot, ModelRepository } from './model-repository.js';
import { isValidModelName } from './catalog.js';
import type { ModelSession, SessionFactory, SessionOptions } from './session.js';
import { SessionCache } from './session-cache.js';
import {
  compareOutputs,
  errorClassOf,
  isActive,
  routeUnpinned,
  type ErrorClass,
  type OutputDifference,
  type RoutedVersion,
} from './rollout.js';
import { batchesFirstDimension, classify } from './triton.js';
import type {
  InferenceRequest,
  InferenceResponse,
  Manifest,
  ModelMetadata,
  Rejection,
  Tensor,
  TensorSpec,
} from './types.js';

/** Hooks for metrics; the handlers implement them with Powertools. */
export interface ServingTelemetry {
  modelLoaded?(event: { model: string; version: string; bytes: number; fetchMs: number; createMs: number }): void;
  inferred?(event: { model: string; version: string; runMs: number }): void;
  /** A version could not be loaded: the reason an operator acts on (the client gets a 503 saying the same). */
  loadFailed?(event: { model: string; version: string; reason: string }): void;
  /**
   * One inference of a version ended, answered or failed (its inputs had passed the checks against the metadata):
   * the per-version figures that rollout guards judge. `latencyMs` includes a load the request waited for.
   */
  served?(event: ServedEvent): void;
  /** A shadow copy ran on a rollout's candidate: failed, or compared with the stable version's answer. */
  shadowed?(event: ShadowedEvent): void;
}

/** What {@link ServingTelemetry.shadowed} reports. */
export interface ShadowedEvent extends Partial<OutputDifference> {
  readonly model: string;
  readonly candidate: string;
  readonly failed: boolean;
}

/** What {@link ServingTelemetry.served} reports. */
export interface ServedEvent {
  readonly model: string;
  readonly version: string;
  readonly latencyMs: number;
  /** Why it failed, when it did. */
  readonly error?: ErrorClass;
}

/** Dependencies and settings of a {@link ModelService}. */
export interface ModelServiceOptions {
  readonly repository: ModelRepository;
  readonly sessionFactory: SessionFactory;
  readonly sessionOptions: SessionOptions;
  /** How long a manifest read is trusted before it is read again. @default 15_000 */
  readonly manifestTtlMs?: number;
  /** Seconds suggested to clients in `Retry-After` when storage fails. @default 1 */
  readonly retryAfterSeconds?: number;
  readonly telemetry?: ServingTelemetry;
  /** @default Date.now */
  readonly now?: () => number;
  /** Watches each run whose engine this process cannot stop (see {@link RunWatchdog}). @default none */
  readonly runWatchdog?: RunWatchdog;
  /** Loaded versions kept per model. @default 2 */
  readonly maxVersionsPerModel?: number;
  /** Model-file bytes kept loaded across all models (see `SessionCacheOptions.maxLoadedBytes`). @default no limit */
  readonly maxLoadedBytes?: number;
  /**
   * Longest wait for one read of a manifest or metadata, and the fixed part of a model file's deadline. Storage
   * that does not answer in time is a 503 with `Retry-After`, before API Gateway's 29 s timeout, and the load is
   * forgotten so that the next request starts a fresh one.
   * @default 10_000
   */
  readonly storageTimeoutMs?: number;
  /**
   * Slowest model download still waited for: a model file's deadline is `storageTimeoutMs` plus its size at this
   * rate, so that a large model is never cut off by a deadline sized for a manifest.
   * @default 10 MiB/s
   */
  readonly minFetchBytesPerSecond?: number;
  /**
   * Folder the model files are downloaded to before onnxruntime reads them (`/tmp` on Lambda: its ephemeral
   * storage). Each load uses its own subfolder, removed once the session is created.
   * @default `<os.tmpdir()>/onnx-serverless-models`
   */
  readonly scratchDir?: string;
  /** Bytes per ranged GET of a model file. @default 8 MiB */
  readonly downloadPartBytes?: number;
  /** Ranged GETs of one model file in flight at once. @default 8 */
  readonly downloadConcurrency?: number;
  /** Uniform draws in [0, 1) that split unpinned requests during a rollout. @default Math.random */
  readonly random?: () => number;
}

/** Defaults of {@link ModelServiceOptions}, as constants so the README can quote them. */
export const MODEL_SERVICE_DEFAULTS = {
  manifestTtlMs: 15_000,
  retryAfterSeconds: 1,
  storageTimeoutMs: 10_000,
  minFetchBytesPerSecond: 10 * 1024 * 1024,
  downloadPartBytes: 8 * 1024 * 1024,
  downloadConcurrency: 8,
} as const;

/** Room kept free on the scratch disk beyond the model file itself (onnxruntime and Node write little there). */
const SCRATCH_HEADROOM_BYTES = 16 * 1024 * 1024;

/**
 * Scratch disk (`/tmp`) a model file of `modelBytes` needs while it loads, in whole MB: the infrastructure sizes
 * each function's ephemeral storage with it, and a load refuses to start without it.
 */
export function scratchMbFor(modelBytes: number): number {
  return Math.ceil((modelBytes + SCRATCH_HEADROOM_BYTES) / (1024 * 1024));
}

/** One row of `POST /v2/repository/index`. */
export interface RepositoryIndexRow {
  readonly name: string;
  readonly version: string;
  readonly state: 'READY' | 'UNAVAILABLE';
  readonly reason: string;
}

/** Request parameter that adds scikit-learn's `{label: probability}` rows to outputs that had a ZipMap. */
export const ZIPMAP_PARAMETER = 'zipmap';

/**
 * Request parameters of Triton's sequence extension, with the type Triton requires of each. Every model served here
 * is stateless, and Triton serves a request carrying them to a model without a sequence batcher as an ordinary
 * request: so are they here, once their types are checked as Triton checks them.
 */
export const SEQUENCE_PARAMETERS = {
  sequence_id: 'a non-negative integer or a string',
  sequence_start: 'true or false',
  sequence_end: 'true or false',
} as const;

/** Whether `value` has the type Triton requires of the sequence parameter `key`. */
function isSequenceParameterValue(key: keyof typeof SEQUENCE_PARAMETERS, value: unknown): boolean {
  if (key !== 'sequence_id') return typeof value === 'boolean';
  return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value) && value >= 0);
}

/** A version resolved from a route (a number, a label or `latest`): its model, its version number and its metadata. */
export interface ResolvedVersion {
  readonly model: string;
  readonly version: string;
  readonly metadata: ModelMetadata;
}

/** A version an unpinned or pinned inference request goes to, and its role in a running rollout. */
export interface RoutedTarget extends ResolvedVersion {
  /** `stable` or `candidate` while a rollout splits this model's unpinned traffic. */
  readonly role?: RoutedVersion['role'] | undefined;
  /** A shadow rollout's candidate, to receive a copy of this request. */
  readonly shadow?: string | undefined;
}

/** A timer this late means the event loop was blocked rather than storage slow. */
const BLOCKED_LOOP_MS = 20;

/** Deadline of the repository index, which reads every manifest and rejection. */
const INDEX_DEADLINE_MS = 25_000;

/** A storage read that did not settle within its deadline. */
class StorageTimeoutError extends Error {
  public constructor(public readonly timeoutMs: number) {
    super(`storage read timed out after ${timeoutMs} ms`);
    this.name = 'StorageTimeoutError';
  }
}

function isStorageFailure(error: unknown): boolean {
  // A denial is a configuration error (a 500), not an outage to retry.
  return !(error instanceof InferenceServerError) && !(error instanceof StorageAccessDeniedError);
}

/**
 * Watches runs that their engine cannot stop from this process's event loop (onnxruntime on the main thread blocks
 * it for the whole run): something else (a watchdog thread) answers `expired` past `timeoutMs` and ends the process.
 */
export interface RunWatchdog {
  /** Called as a run starts; returns what to call when it ends. */
  watch(timeoutMs: number, expired: InferenceTimeoutError): () => void;
}

/**
 * `session.run` under a deadline: past `timeoutMs` the session is aborted with an {@link InferenceTimeoutError};
 * with a `watchdog`, that watches the run too.
 */
async function runWithin(
  session: ModelSession,
  inputs: readonly Tensor[],
  outputNames: readonly string[],
  target: ResolvedVersion,
  timeoutMs: number | undefined,
  watchdog: RunWatchdog | undefined,
): Promise<Tensor[]> {
  if (timeoutMs === undefined) return session.run(inputs, outputNames);
  const controller = new AbortController();
  const seconds = Number((timeoutMs / 1000).toFixed(3));
  const expired = new InferenceTimeoutError(
    `model "${target.model}" version ${target.version} did not finish the inference within ${seconds} s ` +
      '(its limits.timeoutMs), so it was stopped: send fewer rows or smaller inputs, or raise the limit',
  );
  const timer = setTimeout(() => controller.abort(expired), timeoutMs);
  const unwatch = watchdog?.watch(timeoutMs, expired);
  const running = session.run(inputs, outputNames, controller.signal);
  // The answer is due at the deadline even from an engine that cannot stop (it settles later, unobserved).
  running.catch(() => undefined);
  const deadline = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  try {
    return await Promise.race([running, deadline]);
  } catch (error) {
    // Whatever the engine reported as it was stopped, the client's answer is the deadline.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    unwatch?.();
  }
}

/** The serving core. One instance per process; it owns the session cache. */
export class ModelService {
  private readonly manifests = new Map<string, { snapshot: ManifestSnapshot; readAt: number }>();
  private readonly metadataCache = new Map<string, Promise<ModelMetadata>>();
  private readonly sessions: SessionCache;
  private readonly manifestTtlMs: number;
  private readonly retryAfterSeconds: number;
  private readonly storageTimeoutMs: number;
  private readonly minFetchBytesPerSecond: number;
  private readonly scratchDir: string;
  private readonly downloadPartBytes: number;
  private readonly downloadConcurrency: number;
  private readonly now: () => number;
  private readonly random: () => number;
  /** What each loaded session costs beyond its model file, charged against `maxLoadedBytes`. */
  private readonly sessionOverheadBytes: number;

  public constructor(private readonly options: ModelServiceOptions) {
    this.sessionOverheadBytes = options.sessionFactory.sessionOverheadBytes ?? 0;
    this.manifestTtlMs = options.manifestTtlMs ?? MODEL_SERVICE_DEFAULTS.manifestTtlMs;
    this.retryAfterSeconds = options.retryAfterSeconds ?? MODEL_SERVICE_DEFAULTS.retryAfterSeconds;
    this.storageTimeoutMs = options.storageTimeoutMs ?? MODEL_SERVICE_DEFAULTS.storageTimeoutMs;
    this.minFetchBytesPerSecond = options.minFetchBytesPerSecond ?? MODEL_SERVICE_DEFAULTS.minFetchBytesPerSecond;
    this.scratchDir = options.scratchDir ?? path.join(os.tmpdir(), 'onnx-serverless-models');
    this.downloadPartBytes = options.downloadPartBytes ?? MODEL_SERVICE_DEFAULTS.downloadPartBytes;
    this.downloadConcurrency = options.downloadConcurrency ?? MODEL_SERVICE_DEFAULTS.downloadConcurrency;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.sessions = new SessionCache((model, version) => this.loadSession(model, version), {
      maxVersionsPerModel: options.maxVersionsPerModel,
      maxLoadedBytes: options.maxLoadedBytes,
    });
  }

  /**
   * Resolves `version` (a number, a label such as `stable`, or `undefined` for `latest`) of `model`.
   * @throws NotFoundError for an unknown model, version or label; ServiceUnavailableError when storage fails.
   */
  public async resolve(model: string, version?: string, options: { refresh?: boolean } = {}): Promise<ResolvedVersion> {
    if (!isValidModelName(model)) {
      throw new NotFoundError(
        `unknown model "${model.slice(0, 128)}": model names are letters, digits, "_", "." and "-"`,
      );
    }
    let manifest = await this.manifest(model, options.refresh ?? false);
    let resolved = manifest === undefined ? undefined : this.pick(manifest, version);
    if (resolved === undefined && !(options.refresh ?? false)) {
      // A version registered since the last read must be reachable at once by its pinned route.
      manifest = await this.manifest(model, true);
      resolved = manifest === undefined ? undefined : this.pick(manifest, version);
    }
    if (manifest === undefined) throw new NotFoundError(`unknown model "${model}"`);
    if (resolved === undefined) {
      const available = manifest.versions.filter((v) => v.state === 'READY').map((v) => v.version);
      throw new NotFoundError(
        `model "${model}" has no version "${version ?? ''}"; available: ${available.join(', ') || 'none'}` +
          (Object.keys(manifest.labels).length > 0 ? `; labels: ${Object.keys(manifest.labels).join(', ')}` : ''),
      );
    }
    return { model, version: resolved, metadata: await this.metadata(model, resolved) };
  }

  /**
   * Resolves the version an inference request goes to: a pinned version or label as {@link resolve} does (never
   * redirected); an unpinned request by the running rollout's weight (docs/rollouts.md), else `latest`.
   */
  public async route(model: string, version?: string): Promise<RoutedTarget> {
    if (version !== undefined) return this.resolve(model, version);
    // The manifest is the one resolve reads (cached within the TTL): no rollout, no other work.
    const manifest = isValidModelName(model) ? await this.manifest(model) : undefined;
    const routed: Partial<RoutedVersion> = isActive(manifest?.rollout)
      ? routeUnpinned(manifest.latest, manifest.rollout, this.random())
      : {};
    const target = await this.resolve(model, routed.version);
    // One object shape for every answer, rollout or not: the serving path's property reads stay monomorphic (a
    // second shape measurably slowed every request; bench `rollout.split_overhead_ratio`).
    return { model, version: target.version, metadata: target.metadata, role: routed.role, shadow: routed.shadow };
  }

  /**
   * The manifest of `model` as last read (within the TTL), or `undefined` if the model has none. When a refresh
   * that was only due to the TTL fails, the last good manifest is kept for another TTL: a warm instance keeps
   * serving its loaded versions through a storage outage instead of answering 503.
   */
  public async manifest(model: string, refresh = false): Promise<Manifest | undefined> {
    const cached = this.manifests.get(model);
    if (!refresh && cached !== undefined && this.now() - cached.readAt < this.manifestTtlMs) {
      return cached.snapshot.manifest;
    }
    let snapshot: ManifestSnapshot | undefined;
    try {
      snapshot = await this.storage(() => this.options.repository.readManifest(model), this.storageTimeoutMs);
    } catch (error) {
      if (refresh || cached === undefined || !(error instanceof ServiceUnavailableError)) throw error;
      this.manifests.set(model, { snapshot: cached.snapshot, readAt: this.now() });
      return cached.snapshot.manifest;
    }
    if (snapshot === undefined) {
      this.manifests.delete(model);
      return undefined;
    }
    this.manifests.set(model, { snapshot, readAt: this.now() });
    return snapshot.manifest;
  }

  /**
   * Runs an inference on the resolved version. Inputs and outputs are checked against its metadata first. Past
   * `options.timeoutMs` (the model's `limits.timeoutMs`) the session is told to stop and the request gets an
   * {@link InferenceTimeoutError} (504); how far the work stops depends on the session's engine (see
   * `ModelSession.run`).
   */
  public async infer(
    target: ResolvedVersion,
    request: InferenceRequest,
    options: { readonly timeoutMs?: number } = {},
  ): Promise<InferenceResponse> {
    const { metadata } = target;
    const inputs = checkInputs(request.inputs, metadata.inputs);
    const outputNames = request.outputs?.map((o) => o.name) ?? metadata.outputs.map((o) => o.name);
    const known = new Set(metadata.outputs.map((o) => o.name));
    for (const name of outputNames) {
      if (!known.has(name)) {
        throw new BadRequestError(`unknown output "${name}"; the model's outputs are: ${[...known].join(', ')}`);
      }
    }
    for (const [key, expected] of Object.entries(SEQUENCE_PARAMETERS) as [keyof typeof SEQUENCE_PARAMETERS, string][]) {
      const value = request.parameters[key];
      if (value !== undefined && !isSequenceParameterValue(key, value)) {
        throw new BadRequestError(`parameter "${key}" must be ${expected}`);
      }
    }
    const zipmap = request.parameters[ZIPMAP_PARAMETER];
    if (zipmap !== undefined && typeof zipmap !== 'boolean') {
      throw new BadRequestError(`parameter "${ZIPMAP_PARAMETER}" must be true or false`);
    }
    const served = performance.now();
    const report = (error?: unknown) =>
      this.options.telemetry?.served?.({
        model: target.model,
        version: target.version,
        latencyMs: performance.now() - served,
        ...(error === undefined ? {} : { error: errorClassOf((error as { statusCode?: number }).statusCode) }),
      });
    let outputs: Tensor[];
    try {
      outputs = await this.sessions.use(
        target.model,
        target.version,
        async (session) => {
          const started = this.now();
          const result = await runWithin(
            session,
            inputs,
            outputNames,
            target,
            options.timeoutMs,
            this.options.runWatchdog,
          );
          this.options.telemetry?.inferred?.({
            model: target.model,
            version: target.version,
            runMs: this.now() - started,
          });
          return result;
        },
        metadata.size + this.sessionOverheadBytes,
      );
    } catch (error) {
      report(error);
      throw error;
    }
    report();
    return {
      modelName: target.model,
      modelVersion: target.version,
      id: request.id,
      outputs: classifyOutputs(outputs, request, metadata),
      outputParameters: zipmap === true ? zipmapRows(outputs, metadata) : undefined,
    };
  }

  /**
   * Runs a shadow copy of `request` on `candidate` and compares its outputs with `answered` (the stable version's
   * answer, already sent): telemetry (`shadowed`, and the candidate's `served`) and, for data capture, the copy's
   * answer with the comparison. It never throws, so that a failing shadow is a figure and nothing else.
   */
  public async shadow(
    model: string,
    candidate: string,
    request: InferenceRequest,
    answered: InferenceResponse,
    options: { readonly timeoutMs?: number } = {},
  ): Promise<{ readonly copy?: InferenceResponse; readonly comparison: ShadowedEvent }> {
    let comparison: ShadowedEvent;
    let copy: InferenceResponse | undefined;
    try {
      const target = await this.resolve(model, candidate);
      copy = await this.infer(target, request, options);
      comparison = { model, candidate, failed: false, ...compareOutputs(answered.outputs, copy.outputs) };
    } catch {
      comparison = { model, candidate, failed: true };
    }
    this.options.telemetry?.shadowed?.(comparison);
    return { ...(copy === undefined ? {} : { copy }), comparison };
  }

  /** Makes sure the version's session is loaded; `loaded` tells whether this call loaded it. */
  public async ensureLoaded(target: ResolvedVersion): Promise<{ loaded: boolean }> {
    return this.sessions.ensure(target.model, target.version, target.metadata.size + this.sessionOverheadBytes);
  }

  /** Models with a session loaded (or loading) in this process. */
  public loadedModels(): string[] {
    return this.sessions.cachedModels();
  }

  /** True when the version's session is loaded in this process. */
  public isLoaded(target: ResolvedVersion): Promise<boolean> {
    return this.sessions.isLoaded(target.model, target.version);
  }

  /** The repository index: one row per version of every model, and one per refused upload. */
  public async repositoryIndex(): Promise<RepositoryIndexRow[]> {
    const repository = this.options.repository;
    // One read per model and per rejection: a longer deadline than one read's, still under API Gateway's 29 s.
    return this.storage(async () => {
      const rows: RepositoryIndexRow[] = [];
      for (const model of await repository.listModels()) {
        let manifest: Manifest | undefined;
        try {
          manifest = (await repository.readManifest(model))?.manifest;
        } catch (error) {
          // One corrupt manifest is its model's problem: a row says which object, the other models are listed.
          if (!(error instanceof CorruptObjectError)) throw error;
          rows.push({ name: model, version: '', state: 'UNAVAILABLE', reason: error.message });
          continue;
        }
        for (const v of manifest?.versions ?? []) {
          rows.push({ name: model, version: v.version, state: v.state, reason: v.reason ?? '' });
        }
      }
      for (const rejection of await repository.listRejections()) {
        rows.push({ name: rejection.model, version: '', state: 'UNAVAILABLE', reason: rejectionReason(rejection) });
      }
      return rows;
    }, INDEX_DEADLINE_MS);
  }

  /** Refused uploads of one model, oldest first; with `latest`, only that many of the newest. */
  public rejections(model: string, latest?: number): Promise<Rejection[]> {
    return this.storage(() => this.options.repository.listRejections(model, { latest }), this.storageTimeoutMs);
  }

  private pick(manifest: Manifest, version: string | undefined): string | undefined {
    const wanted = version === undefined ? manifest.latest : (manifest.labels[version] ?? version);
    return manifest.versions.find((v) => v.version === wanted && v.state === 'READY')?.version;
  }

  private metadata(model: string, version: string): Promise<ModelMetadata> {
    const key = `${model}\u0000${version}`;
    let cached = this.metadataCache.get(key);
    if (cached === undefined) {
      // Versions are immutable: their metadata is read once per process. The manifest lists the version, so a
      // missing metadata file is the repository's inconsistency (as a missing model file is), not the client's 404.
      cached = this.storage(() => this.options.repository.readMetadata(model, version), this.storageTimeoutMs).catch(
        (error: unknown) => {
          if (!(error instanceof NotFoundError)) throw error;
          throw new ServiceUnavailableError(
            `version ${version} of "${model}" is listed but its metadata.json is missing from storage; retry later`,
            this.retryAfterSeconds,
            { cause: error },
          );
        },
      );
      this.metadataCache.set(key, cached);
      cached.catch(() => this.metadataCache.delete(key));
    }
    return cached;
  }

  /**
   * Downloads the version's file into its own scratch folder (parallel ranged GETs, hashed while streaming), checks
   * the sha256, and lets onnxruntime read the file. Any failure removes the folder and is a 503: the session cache
   * forgets failed loads, so the next request starts afresh.
   */
  private async loadSession(model: string, version: string): Promise<ModelSession> {
    const metadata = await this.metadata(model, version);
    const folder = path.join(this.scratchDir, `${model}-${version}-${randomUUID().slice(0, 8)}`);
    try {
      const fetchStarted = this.now();
      const totalBytes = metadata.size + (metadata.externalData ?? []).reduce((sum, data) => sum + data.size, 0);
      await this.ensureScratchRoom(model, version, totalBytes);
      await mkdir(folder, { recursive: true });
      const file = path.join(folder, 'model.onnx');
      const deadlineMs = this.storageTimeoutMs + Math.ceil((totalBytes / this.minFetchBytesPerSecond) * 1000);
      const fetch = <T>(what: string, download: (signal: AbortSignal) => Promise<T>): Promise<T> =>
        this.storage(download, deadlineMs).catch((error: unknown) => {
          if (error instanceof ServiceUnavailableError && isNoSpace(error.cause)) {
            throw this.noRoom(model, version, totalBytes, error.cause);
          }
          // The manifest lists the version, so a missing file is the repository's inconsistency (a copy still
          // replicating, a hand-deleted key): not the client's 404.
          if (!(error instanceof NotFoundError)) throw error;
          throw new ServiceUnavailableError(
            `version ${version} of "${model}" is listed but its ${what} is missing from storage; retry later`,
            this.retryAfterSeconds,
            { cause: error },
          );
        });
      const parts = { partBytes: this.downloadPartBytes, concurrency: this.downloadConcurrency };
      const downloaded = await fetch('model file', (signal) =>
        this.options.repository.downloadModelFile(model, version, file, { ...parts, signal }),
      );
      // External data (a version registered from a .zip): each file beside model.onnx, where onnxruntime looks.
      let bytes = downloaded.size;
      for (const data of metadata.externalData ?? []) {
        const target = path.join(folder, ...data.location.split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        const got = await fetch(`data file "${data.location}"`, (signal) =>
          this.options.repository.downloadDataFile(model, version, data.location, target, { ...parts, signal }),
        );
        if (got.sha256 !== data.sha256) {
          throw new ServiceUnavailableError(
            `version ${version} of "${model}" could not be loaded: its data file "${data.location}" does not match its checksum; retry`,
            this.retryAfterSeconds,
          );
        }
        bytes += got.size;
      }
      const fetchMs = this.now() - fetchStarted;
      if (downloaded.sha256 !== metadata.sha256) {
        throw new ServiceUnavailableError(
          `version ${version} of "${model}" could not be loaded: the stored file does not match its checksum; retry`,
          this.retryAfterSeconds,
        );
      }
      const createStarted = this.now();
      let session: ModelSession;
      try {
        session = await this.options.sessionFactory.createFromFile(file, this.options.sessionOptions);
      } catch (error) {
        throw new ServiceUnavailableError(
          `version ${version} of "${model}" could not be loaded by onnxruntime`,
          this.retryAfterSeconds,
          { cause: error },
        );
      }
      this.options.telemetry?.modelLoaded?.({
        model,
        version,
        bytes,
        fetchMs,
        createMs: this.now() - createStarted,
      });
      return session;
    } catch (error) {
      if (error instanceof ServiceUnavailableError) {
        this.options.telemetry?.loadFailed?.({ model, version, reason: error.message });
      }
      throw error;
    } finally {
      // onnxruntime has read the file (or failed to): the disk is free for the next version.
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** Refuses a load up front when the scratch disk cannot hold the file, rather than failing half-way. */
  private async ensureScratchRoom(model: string, version: string, bytes: number): Promise<void> {
    await mkdir(this.scratchDir, { recursive: true });
    const stats = await statfs(this.scratchDir);
    const free = stats.bavail * stats.bsize;
    if (free < bytes + SCRATCH_HEADROOM_BYTES) throw this.noRoom(model, version, bytes, undefined, free);
  }

  private noRoom(
    model: string,
    version: string,
    bytes: number,
    cause: unknown,
    free?: number,
  ): ServiceUnavailableError {
    const mb = (n: number) => Math.ceil(n / (1024 * 1024));
    const needed = scratchMbFor(bytes);
    return new ServiceUnavailableError(
      `version ${version} of "${model}" (${mb(bytes)} MB) does not fit in the function's temporary storage ` +
        `(${free === undefined ? 'it ran out' : `${mb(free)} MB free`}): give the function at least ${needed} MB of ` +
        `ephemeral storage (the catalog's "ephemeralStorageMb" in models/${model}.json, then deploy)`,
      this.retryAfterSeconds,
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Storage failures (network, 5xx, timeouts) are a 503 with `Retry-After`, never a 500. With `timeoutMs`, a read
   * that has not settled by then is a 503 too; it cannot be cancelled through the `BlobStore` interface, so it
   * finishes (or fails) in the background, and its result is dropped.
   */
  private async storage<T>(read: (signal: AbortSignal) => Promise<T>, timeoutMs?: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    try {
      if (timeoutMs === undefined) return await read(controller.signal);
      const deadline = new Promise<never>((_, reject) => {
        // Time the event loop spent blocked (a session created on it, a large response encoded) is not storage's
        // slowness: a timer that fires late by more than a tick waits that much longer (in all at most three more
        // deadlines), so that the answer already waiting in the poll phase is taken instead of a false 503.
        const limit = performance.now() + 4 * timeoutMs;
        const arm = (delayMs: number) => {
          const due = performance.now() + delayMs;
          timer = setTimeout(() => {
            const now = performance.now();
            const late = now - due;
            if (late > BLOCKED_LOOP_MS && now < limit) arm(Math.min(late, limit - now));
            else {
              const error = new StorageTimeoutError(timeoutMs);
              // A read that can be cancelled (a model download) stops and removes its partial file.
              controller.abort(error);
              reject(error);
            }
          }, delayMs);
        };
        arm(timeoutMs);
      });
      return await Promise.race([read(controller.signal), deadline]);
    } catch (error) {
      if (!isStorageFailure(error)) throw error;
      // The message names the object and what is wrong with it: the operator's to fix, and no secret.
      if (error instanceof CorruptObjectError)
        throw new ServiceUnavailableError(error.message, this.retryAfterSeconds, { cause: error });
      const message =
        error instanceof StorageTimeoutError
          ? `model storage did not answer within ${Number(((timeoutMs ?? 0) / 1000).toFixed(1))} s; retry shortly`
          : 'model storage is unavailable right now; retry shortly';
      throw new ServiceUnavailableError(message, this.retryAfterSeconds, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A write that failed because the disk is full. */
function isNoSpace(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC';
}

function rejectionReason(rejection: Rejection): string {
  return `upload ${rejection.sourceKey} was rejected at ${rejection.rejectedAt}: ${rejection.reason}`;
}

/** Checks the request's inputs against the model's: names, datatypes, ranks and fixed dimensions. */
function checkInputs(inputs: readonly Tensor[], specs: readonly TensorSpec[]): Tensor[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const expected = () => specs.map((s) => `"${s.name}" ${s.datatype} [${s.shape.join(', ')}]`).join(', ');
  const seen = new Set<string>();
  for (const input of inputs) {
    const spec = byName.get(input.name);
    if (spec === undefined) throw new BadRequestError(`unknown input "${input.name}"; the model expects ${expected()}`);
    seen.add(input.name);
    if (input.datatype !== spec.datatype) {
      throw new BadRequestError(`input "${input.name}" must be ${spec.datatype}, got ${input.datatype}`);
    }
    const fits =
      input.shape.length === spec.shape.length && spec.shape.every((dim, i) => dim < 0 || dim === input.shape[i]);
    if (!fits) {
      throw new BadRequestError(
        `input "${input.name}" has shape [${input.shape.join(', ')}]; the model takes [${spec.shape.join(', ')}] (-1 = any size)`,
      );
    }
  }
  const missing = specs.filter((s) => !seen.has(s.name)).map((s) => `"${s.name}"`);
  if (missing.length > 0)
    throw new BadRequestError(`missing input ${missing.join(', ')}; the model expects ${expected()}`);
  // onnxruntime wants the inputs in any order but only once each; the codec has refused duplicates.
  return [...inputs];
}

/** Outputs asked for with Triton's `classification` parameter, replaced by their top classes. */
function classifyOutputs(
  outputs: readonly Tensor[],
  request: InferenceRequest,
  metadata: ModelMetadata,
): readonly Tensor[] {
  const counts = new Map(
    request.outputs?.flatMap((o) => (o.classCount === undefined ? [] : [[o.name, o.classCount] as const])),
  );
  if (counts.size === 0) return outputs;
  const batched = batchesFirstDimension(metadata);
  return outputs.map((output) => {
    const count = counts.get(output.name);
    return count === undefined ? output : classify(output, count, batched, metadata.classLabels?.[output.name]);
  });
}

/** `{label: probability}` rows for each output whose ZipMap was removed at registration. */
function zipmapRows(
  outputs: readonly Tensor[],
  metadata: ModelMetadata,
): Record<string, Record<string, unknown>> | undefined {
  const result: Record<string, Record<string, unknown>> = {};
  for (const output of outputs) {
    const labels = metadata.classLabels?.[output.name];
    if (labels === undefined || typeof output.data[0] === 'bigint') continue;
    const columns = labels.length;
    const data = output.data as ArrayLike<number>;
    const rows: Record<string, number>[] = [];
    for (let start = 0; start + columns <= data.length; start += columns) {
      const row: Record<string, number> = {};
      labels.forEach((label, column) => {
        row[String(label)] = data[start + column] as number;
      });
      rows.push(row);
    }
    result[output.name] = { [ZIPMAP_PARAMETER]: rows };
  }
  return Object.keys(result).length > 0 ? result : undefined;
}
