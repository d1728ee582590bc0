/**
 * The rollout controller's one pass over the repository, deployed (the scheduled `rollout` function, figures read
 * from CloudWatch) and under `npm start` (a timer, figures kept by the local runtime) alike: for each model whose
 * manifest has a running rollout, judge its figures ({@link decideRollout}), write the decision with a conditional
 * write, and report promotions and rollbacks.
 */
import type { ModelRepository } from './model-repository.js';
import {
  decideRollout,
  isActive,
  type RolloutFigures,
  type RolloutState,
  type ShadowFigures,
  type VersionFigures,
} from './rollout.js';
import type { Manifest } from './types.js';

/** Where the controller reads a rollout's figures: CloudWatch deployed, the local runtime's {@link FigureLog}. */
export interface FigureSource {
  figures(model: string, rollout: RolloutState, now: number): Promise<RolloutFigures>;
}

/** A rollout that ended (or advanced), as logged and notified. */
export interface RolloutNotice {
  readonly model: string;
  readonly outcome: 'promoted' | 'rolled-back' | 'advanced';
  readonly stable: string;
  readonly candidate: string;
  readonly weight: number;
  readonly reason: string;
  readonly at: string;
}

/** Dependencies of {@link runRolloutController}. */
export interface RolloutControllerOptions {
  readonly repository: ModelRepository;
  readonly figures: FigureSource;
  /** Receives every promotion and rollback (deployed: the alarm topic gets the rollbacks). */
  readonly notify: (notice: RolloutNotice) => Promise<void> | void;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * The manifest once `next` (a rollout's new state) is applied: a promotion moves `latest` to the candidate, a
 * rollback keeps it on (or moves it back to) the stable version.
 */
export function applyRollout(manifest: Manifest, next: RolloutState): Manifest {
  const latest =
    next.state === 'promoted' ? next.candidate : next.state === 'rolled-back' ? next.stable : manifest.latest;
  return { ...manifest, latest, rollout: next };
}

/**
 * One pass: every model with a running rollout is judged once. A write whose condition fails because a
 * registration or an operator changed the rollout meanwhile is dropped (the next pass judges what is there now);
 * any other manifest change (a version appended) is kept, the decision applied on top. Returns what it did.
 */
export async function runRolloutController(options: RolloutControllerOptions): Promise<RolloutNotice[]> {
  const now = options.now ?? Date.now;
  const notices: RolloutNotice[] = [];
  for (const model of await options.repository.listModels()) {
    const rollout = (await options.repository.readManifest(model))?.manifest.rollout;
    if (!isActive(rollout)) continue;
    const at = now();
    const figures = await options.figures.figures(model, rollout, at);
    const decision = decideRollout(rollout, figures, at);
    // The judged figures go into the manifest with the decision (or alone): `rollout <m> status` shows them.
    const judged = { ...figures, at: new Date(at).toISOString() };
    const next = { ...(decision.next ?? rollout), figures: judged };
    const written = await options.repository.updateManifest(model, (manifest) =>
      sameRollout(manifest.rollout, rollout) ? applyRollout(manifest, next) : undefined,
    );
    if (written === undefined || decision.outcome === undefined) continue;
    const notice: RolloutNotice = {
      model,
      outcome: decision.outcome,
      stable: next.stable,
      candidate: next.candidate,
      weight: next.weight,
      reason: next.reason ?? `step ${next.step}: candidate ${next.candidate} takes ${next.weight}%`,
      at: next.updated,
    };
    notices.push(notice);
    await options.notify(notice);
  }
  return notices;
}

/** True when `current` is still the rollout a decision was made on (no registration or operator changed it). */
function sameRollout(current: RolloutState | undefined, decided: RolloutState): boolean {
  return current !== undefined && current.candidate === decided.candidate && current.updated === decided.updated;
}

/** Latencies kept per version: the p99 of the most recent ones. */
const MAX_SAMPLES = 10_000;

interface Sample {
  readonly at: number;
  readonly latencyMs: number;
  readonly failed: boolean;
}

interface ShadowSample {
  readonly at: number;
  readonly failed: boolean;
  readonly absDiff: number;
  readonly relDiff: number;
  /** `undefined` when the model has no label output. */
  readonly labelsAgree?: boolean;
}

/**
 * The per-version figures the local runtime keeps, as CloudWatch keeps the EMF metrics deployed: requests, failures
 * and latencies of each version, and shadow comparisons, each with its time, the most recent {@link MAX_SAMPLES}
 * per version. The controller reads the window since a rollout started.
 */
export class FigureLog implements FigureSource {
  private readonly served = new Map<string, Sample[]>();
  private readonly shadows = new Map<string, ShadowSample[]>();

  public constructor(private readonly now: () => number = Date.now) {}

  /** Records one inference of `version` of `model`. */
  public recordServed(event: { model: string; version: string; latencyMs: number; error?: string }): void {
    push(this.served, key(event.model, event.version), {
      at: this.now(),
      latencyMs: event.latencyMs,
      failed: event.error !== undefined,
    });
  }

  /** Records one shadow comparison of `candidate` against the stable answer. */
  public recordShadow(event: {
    model: string;
    candidate: string;
    failed: boolean;
    absDiff?: number;
    relDiff?: number;
    labelsAgree?: boolean;
  }): void {
    push(this.shadows, key(event.model, event.candidate), {
      at: this.now(),
      failed: event.failed,
      absDiff: event.absDiff ?? 0,
      relDiff: event.relDiff ?? 0,
      ...(event.labelsAgree === undefined ? {} : { labelsAgree: event.labelsAgree }),
    });
  }

  public figures(model: string, rollout: RolloutState): Promise<RolloutFigures> {
    const since = Date.parse(rollout.started);
    const shadow = this.shadowFigures(model, rollout.candidate, since);
    return Promise.resolve({
      stable: this.versionFigures(model, rollout.stable, since),
      candidate: this.versionFigures(model, rollout.candidate, since),
      ...(shadow === undefined ? {} : { shadow }),
    });
  }

  /** One version's figures since `since` (ms since the epoch). */
  public versionFigures(model: string, version: string, since: number): VersionFigures {
    const samples = (this.served.get(key(model, version)) ?? []).filter((s) => s.at >= since);
    const latencies = samples.map((s) => s.latencyMs);
    const p99 = percentile(latencies, 0.99);
    return {
      requests: samples.length,
      errors: samples.filter((s) => s.failed).length,
      ...(p99 === undefined ? {} : { p99Ms: p99 }),
    };
  }

  private shadowFigures(model: string, candidate: string, since: number): ShadowFigures | undefined {
    const samples = (this.shadows.get(key(model, candidate)) ?? []).filter((s) => s.at >= since);
    if (samples.length === 0) return undefined;
    const ok = samples.filter((s) => !s.failed);
    const labelled = ok.filter((s) => s.labelsAgree !== undefined);
    return {
      compared: ok.length,
      failed: samples.length - ok.length,
      maxAbsDiff: Math.max(0, ...ok.map((s) => s.absDiff)),
      maxRelDiff: Math.max(0, ...ok.map((s) => s.relDiff)),
      labelsCompared: labelled.length,
      labelsAgreed: labelled.filter((s) => s.labelsAgree === true).length,
    };
  }
}

/** The `q` quantile (nearest rank) of `values`, or `undefined` when there are none. */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function key(model: string, version: string): string {
  return `${model}\u0000${version}`;
}

function push<T>(map: Map<string, T[]>, at: string, sample: T): void {
  let samples = map.get(at);
  if (samples === undefined) {
    samples = [];
    map.set(at, samples);
  }
  samples.push(sample);
  if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
}
