/**
 * Sessions kept across invocations, keyed by model and version: created lazily, once (concurrent first callers
 * share one promise), and released when a model has more loaded versions than the budget allows, or when all
 * models together weigh more than the byte budget (least recently used first), but only once no request is still
 * running on them.
 */
import { ServiceUnavailableError } from './errors.js';
import type { ModelSession } from './session.js';

interface Entry {
  readonly key: string;
  readonly model: string;
  readonly version: string;
  readonly session: Promise<ModelSession>;
  /** The model file's size: what the byte budget counts (onnxruntime's share in memory grows with it). */
  readonly bytes: number;
  inFlight: number;
  lastUsed: number;
  evicted: boolean;
}

/** Options of a {@link SessionCache}. */
export interface SessionCacheOptions {
  /** Loaded versions kept per model; the least recently used beyond it are released. @default 2 */
  readonly maxVersionsPerModel?: number;
  /**
   * Model-file bytes kept loaded across all models (the shared function serves many): beyond it, the least
   * recently used sessions are released. The session just used always stays, even alone over the budget.
   * @default no limit
   */
  readonly maxLoadedBytes?: number;
}

/** Loads one version's session; failures are not cached, so the next call tries again. */
export type SessionLoader = (model: string, version: string) => Promise<ModelSession>;

/**
 * @example
 * const cache = new SessionCache((m, v) => loadFromStore(m, v));
 * const outputs = await cache.use('iris', '3', (session) => session.run(inputs, ['label']));
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxVersionsPerModel: number;
  private readonly maxLoadedBytes: number;
  private clock = 0;

  public constructor(
    private readonly load: SessionLoader,
    options: SessionCacheOptions = {},
  ) {
    this.maxVersionsPerModel = Math.max(1, options.maxVersionsPerModel ?? 2);
    this.maxLoadedBytes = options.maxLoadedBytes ?? Number.POSITIVE_INFINITY;
  }

  /** True when the session of this version is loaded (not merely loading). */
  public async isLoaded(model: string, version: string): Promise<boolean> {
    const entry = this.entries.get(`${model}\u0000${version}`);
    if (entry === undefined) return false;
    try {
      await entry.session;
      return this.entries.get(entry.key) === entry;
    } catch {
      return false;
    }
  }

  /** Loads the session if needed, without running anything (warmers, preloading). */
  public async ensure(model: string, version: string, bytes = 0): Promise<{ loaded: boolean }> {
    const existing = this.entries.has(`${model}\u0000${version}`);
    await this.use(model, version, async () => undefined, bytes);
    return { loaded: !existing };
  }

  /**
   * Runs `work` on the version's session, loading it first if needed; the session stays alive meanwhile.
   * `bytes` (the model file's size) counts against `maxLoadedBytes`.
   */
  public async use<T>(
    model: string,
    version: string,
    work: (session: ModelSession) => Promise<T>,
    bytes = 0,
  ): Promise<T> {
    // A session whose engine is gone (its process died, or was stopped at a deadline) is loaded again, once.
    for (let attempt = 0; ; attempt += 1) {
      const entry = this.entryFor(model, version, bytes);
      entry.inFlight += 1;
      entry.lastUsed = ++this.clock;
      try {
        const session = await entry.session;
        if (session.alive === false) {
          this.forget(entry);
          if (attempt === 0) continue;
          throw new ServiceUnavailableError(`the engine of model "${model}" stopped while loading it; retry`, 1);
        }
        this.evictBeyondBudget(model);
        this.evictBeyondBytes(entry);
        return await work(session);
      } finally {
        entry.inFlight -= 1;
        if (entry.evicted && entry.inFlight === 0) void this.release(entry);
      }
    }
  }

  /** Drops an entry (if still cached); it is released once no request runs on it. */
  private forget(entry: Entry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    entry.evicted = true;
  }

  /** Versions of `model` currently cached (loaded or loading). */
  public cachedVersions(model: string): string[] {
    return [...this.entries.values()].filter((e) => e.model === model).map((e) => e.version);
  }

  /** Models with at least one cached version. */
  public cachedModels(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.model))];
  }

  private entryFor(model: string, version: string, bytes: number): Entry {
    const key = `${model}\u0000${version}`;
    const existing = this.entries.get(key);
    if (existing !== undefined) return existing;
    const session = this.load(model, version);
    const entry: Entry = { key, model, version, session, bytes, inFlight: 0, lastUsed: ++this.clock, evicted: false };
    this.entries.set(key, entry);
    // A failed load must not poison the cache: forget it so that the next request loads again.
    session.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry;
  }

  private evictBeyondBudget(model: string): void {
    const ofModel = [...this.entries.values()].filter((e) => e.model === model).sort((a, b) => b.lastUsed - a.lastUsed);
    for (const entry of ofModel.slice(this.maxVersionsPerModel)) {
      this.entries.delete(entry.key);
      entry.evicted = true;
      if (entry.inFlight === 0) void this.release(entry);
    }
  }

  /** Least recently used first, never `current`; one in flight is released when its last request ends. */
  private evictBeyondBytes(current: Entry): void {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    if (total <= this.maxLoadedBytes) return;
    const candidates = [...this.entries.values()].filter((e) => e !== current).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of candidates) {
      if (total <= this.maxLoadedBytes) break;
      this.entries.delete(entry.key);
      entry.evicted = true;
      total -= entry.bytes;
      if (entry.inFlight === 0) void this.release(entry);
    }
  }

  private async release(entry: Entry): Promise<void> {
    try {
      await (await entry.session).release();
    } catch {
      // A session that failed to load has nothing to release.
    }
  }
}
