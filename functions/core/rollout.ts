/**
 * Guarded rollouts (docs/rollouts.md): the one definition of a model's rollout policy (catalog entry, upload sidecar,
 * CLI), of the rollout state the manifest carries, of how an unpinned request is split between the stable version
 * and the candidate, and of the controller's state machine that advances, promotes or rolls back. Pure: no clock,
 * no storage, no randomness of its own; callers pass them in.
 *
 * Names and defaults follow SageMaker deployment guardrails and CodeDeploy: `canary` is SageMaker's `CANARY`
 * (`CanarySize` ≤ 50 %, `WaitIntervalInSeconds` 0–3600) and CodeDeploy's `Canary10Percent5Minutes`; `linear` is
 * `LINEAR` (steps of 10–50 %) and `Linear10PercentEvery1Minute`; `shadow` is a shadow variant's `SamplingPercentage`.
 */
import { z } from 'zod';

/** Rollout strategies. `all-at-once` is the behaviour without a policy: a new version takes all traffic at once. */
export const ROLLOUT_STRATEGIES = ['all-at-once', 'canary', 'linear', 'shadow'] as const;
/** One of {@link ROLLOUT_STRATEGIES}. */
export type RolloutStrategy = (typeof ROLLOUT_STRATEGIES)[number];

/** Defaults of each strategy and guard, quoted by docs/rollouts.md. */
export const ROLLOUT_DEFAULTS = {
  /** CodeDeploy's `Canary10Percent5Minutes`. */
  canary: { percent: 10, bakingSeconds: 300 },
  /** CodeDeploy's `Linear10PercentEvery1Minute`. */
  linear: { stepPercent: 10, intervalSeconds: 60 },
  /** SageMaker shadow variants' `SamplingPercentage` default (100), compared for five minutes. */
  shadow: { samplingPercent: 100, bakingSeconds: 300 },
  /** Candidate's failed inferences over its requests: above it, rolled back. */
  maxErrorRate: 0.05,
  /** Candidate requests needed before the latency and output guards are judged (few samples make noisy ratios). */
  minRequests: 10,
  /** How often the controller runs: the deployed EventBridge schedule (its finest rate), and `npm start`'s timer. */
  controllerIntervalSeconds: 60,
} as const;

const errorRate = z.number().min(0).max(1);

/** Guards of the strategies that send the candidate real traffic. */
const trafficGuards = {
  /** Largest share (0–1) of the candidate's inferences that may fail (run errors, timeouts, crashes). */
  maxErrorRate: errorRate.default(ROLLOUT_DEFAULTS.maxErrorRate),
  /** Largest p99 latency of the candidate over the stable version's, in the same window; unset: not guarded. */
  maxLatencyP99Ratio: z.number().min(1).max(100).optional(),
  /** Candidate requests needed before `maxLatencyP99Ratio` (and the shadow guards) are judged. */
  minRequests: z.number().int().min(1).max(100_000).default(ROLLOUT_DEFAULTS.minRequests),
};

const seconds = z.number().int().min(0).max(3600);

/** A model's rollout policy: strategy, its settings, and its guards. */
export const rolloutPolicySchema = z.discriminatedUnion('strategy', [
  z.object({ strategy: z.literal('all-at-once') }).strict(),
  z
    .object({
      strategy: z.literal('canary'),
      /** Share of unpinned requests the candidate answers while it bakes (SageMaker's CanarySize ≤ 50 %). */
      percent: z.number().int().min(1).max(50).default(ROLLOUT_DEFAULTS.canary.percent),
      /** How long the canary bakes before it is promoted (SageMaker's WaitIntervalInSeconds). */
      bakingSeconds: seconds.default(ROLLOUT_DEFAULTS.canary.bakingSeconds),
      ...trafficGuards,
    })
    .strict(),
  z
    .object({
      strategy: z.literal('linear'),
      /** Share added at each step (SageMaker's LINEAR step, 10–50 %). */
      stepPercent: z.number().int().min(10).max(50).default(ROLLOUT_DEFAULTS.linear.stepPercent),
      /** Seconds between steps. */
      intervalSeconds: seconds.default(ROLLOUT_DEFAULTS.linear.intervalSeconds),
      ...trafficGuards,
    })
    .strict(),
  z
    .object({
      strategy: z.literal('shadow'),
      /** Share of unpinned requests copied to the candidate (whose answers are discarded). */
      samplingPercent: z.number().int().min(1).max(100).default(ROLLOUT_DEFAULTS.shadow.samplingPercent),
      /** How long the shadow is compared before it is promoted. */
      bakingSeconds: seconds.default(ROLLOUT_DEFAULTS.shadow.bakingSeconds),
      ...trafficGuards,
      /** Largest absolute difference of any output element from the stable version's answer. */
      maxAbsDiff: z.number().min(0).optional(),
      /** Largest relative difference (|a - b| / max(|b|, 1e-12)) of any output element. */
      maxRelDiff: z.number().min(0).optional(),
      /** Smallest share (0–1) of requests whose label outputs (BYTES or integer) equal the stable version's. */
      minLabelAgreement: errorRate.optional(),
    })
    .strict(),
]);

/** A resolved rollout policy (defaults applied). */
export type RolloutPolicy = z.infer<typeof rolloutPolicySchema>;

/**
 * A policy and who declared it: the catalog entry's is the model's policy (the manifest keeps it as
 * `rolloutPolicy`); a sidecar's applies to its upload only.
 */
export interface DeclaredRollout {
  readonly policy: RolloutPolicy;
  readonly declaredBy: 'catalog' | 'sidecar';
}

/** The policy without one: today's behaviour. */
export const ALL_AT_ONCE: RolloutPolicy = { strategy: 'all-at-once' };

/**
 * Parses a policy from JSON (a catalog entry's, a sidecar's or the CLI's `rollout`): the policy, or every problem
 * in one message prefixed `rollout.`, saying what to change.
 */
export function parseRolloutPolicy(json: unknown): { ok: true; value: RolloutPolicy } | { ok: false; message: string } {
  if (json === null || typeof json !== 'object' || !('strategy' in json)) {
    return { ok: false, message: `rollout.strategy: required, one of ${ROLLOUT_STRATEGIES.join(', ')}` };
  }
  const parsed = rolloutPolicySchema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const where = ['rollout', ...issue.path].join('.');
    if (issue.code === 'invalid_union_discriminator') {
      return `${where}: unknown strategy ${JSON.stringify((json as { strategy: unknown }).strategy)}; use one of ${ROLLOUT_STRATEGIES.join(', ')}`;
    }
    if (issue.code === 'unrecognized_keys') {
      return `${where}: ${issue.keys.join(', ')} cannot be evaluated for strategy "${String((json as { strategy: unknown }).strategy)}" (output guards apply to shadow only; each strategy's settings are in docs/rollouts.md)`;
    }
    return `${where}: ${issue.message}`;
  });
  return { ok: false, message: problems.join('; ') };
}

/** The zod schema of a catalog entry's `rollout`, refusing what {@link parseRolloutPolicy} refuses. */
export const catalogRolloutSchema = z.unknown().transform((value, ctx): RolloutPolicy => {
  const parsed = parseRolloutPolicy(value);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.message });
  return z.NEVER;
});

/**
 * The `CATALOG_ROLLOUT` value for `register`: `{"<model>": <policy>}` of every catalog entry that declares one, or
 * `undefined` when none does.
 */
export function catalogRolloutJson(entries: readonly { name: string; rollout?: RolloutPolicy }[]): string | undefined {
  const declared = entries.filter((entry) => entry.rollout !== undefined);
  if (declared.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(declared.map((entry) => [entry.name, entry.rollout])));
}

/** Reads a `CATALOG_ROLLOUT` value; throws an `Error` naming the model at fault. */
export function parseCatalogRollout(json: string): ReadonlyMap<string, RolloutPolicy> {
  const byModel = new Map<string, RolloutPolicy>();
  for (const [model, value] of Object.entries(JSON.parse(json) as Record<string, unknown>)) {
    const parsed = parseRolloutPolicy(value);
    if (!parsed.ok) throw new Error(`model "${model.slice(0, 128)}": ${parsed.message}`);
    byModel.set(model, parsed.value);
  }
  return byModel;
}

/** Phases of a rollout, as the manifest records them. */
export const ROLLOUT_PHASES = ['progressing', 'baking', 'promoted', 'rolled-back'] as const;
/** One of {@link ROLLOUT_PHASES}. */
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];

/** `manifest.rollout`: the one rollout of a model, running or finished. */
export const rolloutStateSchema = z
  .object({
    policy: rolloutPolicySchema,
    /** The version that answers unpinned requests the candidate does not (the manifest's `latest`). */
    stable: z.string(),
    candidate: z.string(),
    /** Percent of unpinned requests the candidate answers (shadow: percent copied to it). */
    weight: z.number().min(0).max(100),
    /** Steps taken (linear: weight = step × stepPercent). */
    step: z.number().int().min(0),
    /** When the rollout started, and when its current step started (ISO 8601). */
    started: z.string(),
    stepStarted: z.string(),
    state: z.enum(ROLLOUT_PHASES),
    /** An operator paused it: weights stay, steps do not advance, guards still roll back. */
    paused: z.boolean().default(false),
    /** Why it was promoted or rolled back (a tripped guard's figures, or who did it). */
    reason: z.string().optional(),
    updated: z.string(),
    /** The figures the controller last judged, and when: what `rollout <m> status` shows. */
    figures: z
      .object({
        at: z.string(),
        stable: z.object({ requests: z.number(), errors: z.number(), p99Ms: z.number().optional() }),
        candidate: z.object({ requests: z.number(), errors: z.number(), p99Ms: z.number().optional() }),
        shadow: z
          .object({
            compared: z.number(),
            failed: z.number(),
            maxAbsDiff: z.number(),
            maxRelDiff: z.number(),
            labelsCompared: z.number(),
            labelsAgreed: z.number(),
          })
          .optional(),
      })
      .optional(),
  })
  .passthrough();

/** A model's rollout, as the manifest records it. */
export type RolloutState = z.infer<typeof rolloutStateSchema>;

/** True while a rollout splits or copies traffic (not finished). */
export function isActive(rollout: RolloutState | undefined): rollout is RolloutState {
  return rollout !== undefined && (rollout.state === 'progressing' || rollout.state === 'baking');
}

/**
 * Starts a rollout of `candidate` against `stable` under `policy` (not `all-at-once`), at `now` (ISO 8601).
 * @example startRollout(canary, '1', '2', '2026-01-01T00:00:00Z').weight // 10
 */
export function startRollout(policy: RolloutPolicy, stable: string, candidate: string, now: string): RolloutState {
  const weight =
    policy.strategy === 'canary'
      ? policy.percent
      : policy.strategy === 'linear'
        ? policy.stepPercent
        : policy.strategy === 'shadow'
          ? policy.samplingPercent
          : 100;
  return {
    policy,
    stable,
    candidate,
    weight,
    step: 1,
    started: now,
    stepStarted: now,
    state: policy.strategy === 'linear' ? 'progressing' : 'baking',
    paused: false,
    updated: now,
  };
}

/** Where an unpinned request goes: the version that answers it, and the one that gets a shadow copy, if any. */
export interface RoutedVersion {
  readonly version: string;
  /** `stable` or `candidate` while a rollout splits traffic; `undefined` outside a rollout. */
  readonly role?: 'stable' | 'candidate';
  /** A shadow rollout copies this request to this version. */
  readonly shadow?: string;
}

/**
 * Routes an unpinned request: by weight between stable and candidate (canary, linear), or to stable with a sampled
 * copy to the candidate (shadow). `draw` is uniform in [0, 1): each request is routed independently (no
 * stickiness: the versions are stateless and answer the same contract).
 */
export function routeUnpinned(latest: string, rollout: RolloutState | undefined, draw: number): RoutedVersion {
  if (!isActive(rollout) || rollout.stable !== latest) return { version: latest };
  const hit = draw * 100 < rollout.weight;
  if (rollout.policy.strategy === 'shadow') {
    return hit ? { version: latest, role: 'stable', shadow: rollout.candidate } : { version: latest, role: 'stable' };
  }
  return hit ? { version: rollout.candidate, role: 'candidate' } : { version: latest, role: 'stable' };
}

/**
 * The per-version metrics (EMF, namespace `OnnxServerless`, dimensions `model` and `version`) that the deployed
 * controller reads back from CloudWatch: one of each per inference of a version.
 */
export const VERSION_METRICS = {
  requests: 'VersionRequests',
  /** 1 for a failed inference, 0 for an answered one: its average is the error rate. */
  errors: 'VersionErrors',
  latency: 'VersionLatency',
  /** Prefix of the per-class error counts (`VersionErrors_timeout`...). */
  errorClassPrefix: 'VersionErrors_',
  /** Shadow copies on the candidate (dimension `version` = the candidate): 1 failed, 0 compared. */
  shadowErrors: 'ShadowErrors',
  /** Largest absolute and relative difference of one compared copy (read back as Maximum). */
  shadowAbsDiff: 'ShadowAbsDiff',
  shadowRelDiff: 'ShadowRelDiff',
  /** 1 when a compared copy's labels agreed, 0 when not; absent for models without label outputs. */
  shadowLabelAgreement: 'ShadowLabelAgreement',
} as const;

/** Output datatypes whose elements are class labels, whose agreement shadow comparisons count. */
export const LABEL_DATATYPES: ReadonlySet<string> = new Set(['BYTES', 'INT64', 'INT32', 'UINT8', 'INT8', 'BOOL']);

/** How a shadow candidate's outputs differ from the stable version's answer to the same request. */
export interface OutputDifference {
  /** Largest |candidate - stable| over every numeric element (Infinity when shapes or NaN-ness differ). */
  readonly absDiff: number;
  /** Largest |candidate - stable| / max(|stable|, 1e-12). */
  readonly relDiff: number;
  /** Whether every label element (BYTES or integer outputs) is equal; `undefined` without label outputs. */
  readonly labelsAgree?: boolean;
}

/**
 * Compares the candidate's outputs with the stable version's, output by output (by name): numeric elements by
 * absolute and relative difference, label outputs by equality. An output missing or shaped differently is an
 * infinite difference (and a disagreement): the candidate does not answer the same contract.
 */
export function compareOutputs(
  stable: readonly { name: string; datatype: string; shape: readonly number[]; data: ArrayLike<unknown> }[],
  candidate: readonly { name: string; datatype: string; shape: readonly number[]; data: ArrayLike<unknown> }[],
): OutputDifference {
  let absDiff = 0;
  let relDiff = 0;
  let labelsAgree: boolean | undefined;
  for (const want of stable) {
    const got = candidate.find((c) => c.name === want.name);
    const label = LABEL_DATATYPES.has(want.datatype) && want.datatype !== 'BOOL';
    const sameShape =
      got !== undefined &&
      got.datatype === want.datatype &&
      got.shape.length === want.shape.length &&
      got.shape.every((d, i) => d === want.shape[i]);
    if (!sameShape) {
      absDiff = Number.POSITIVE_INFINITY;
      relDiff = Number.POSITIVE_INFINITY;
      if (label) labelsAgree = false;
      continue;
    }
    for (let i = 0; i < want.data.length; i += 1) {
      const a = got.data[i];
      const b = want.data[i];
      if (label) {
        labelsAgree = (labelsAgree ?? true) && String(a) === String(b);
        continue;
      }
      const x = Number(a);
      const y = Number(b);
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      const diff = Math.abs(x - y);
      absDiff = Math.max(absDiff, Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff);
      relDiff = Math.max(relDiff, Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff / Math.max(Math.abs(y), 1e-12));
    }
  }
  return { absDiff, relDiff, ...(labelsAgree === undefined ? {} : { labelsAgree }) };
}

/** Classes of failed inferences the guards count (of the version that ran them). */
export const ERROR_CLASSES = ['refused', 'timeout', 'crashed', 'unavailable', 'internal'] as const;
/** One of {@link ERROR_CLASSES}. */
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** The error class of an HTTP status of a failed inference. */
export function errorClassOf(statusCode: number | undefined): ErrorClass {
  if (statusCode === 504) return 'timeout';
  if (statusCode === 502) return 'crashed';
  if (statusCode === 503) return 'unavailable';
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return 'refused';
  return 'internal';
}

/** What was measured of one version in a window: the controller's input. */
export interface VersionFigures {
  readonly requests: number;
  readonly errors: number;
  /** p99 latency in ms of its inferences, when it had any. */
  readonly p99Ms?: number;
}

/** Shadow comparisons in a window. */
export interface ShadowFigures {
  readonly compared: number;
  readonly failed: number;
  readonly maxAbsDiff: number;
  readonly maxRelDiff: number;
  /** Comparisons whose label outputs agreed, of those with label outputs. */
  readonly labelsCompared: number;
  readonly labelsAgreed: number;
}

/** What the controller knows of a rollout's window (since the rollout started). */
export interface RolloutFigures {
  readonly stable: VersionFigures;
  readonly candidate: VersionFigures;
  readonly shadow?: ShadowFigures;
}

/** The controller's decision for one rollout. */
export interface RolloutDecision {
  /** The state to write, or `undefined` when nothing changes. */
  readonly next?: RolloutState;
  /** Set when it finished: promoted, or rolled back (with the reason). */
  readonly outcome?: 'promoted' | 'rolled-back' | 'advanced';
}

/** Why a guard tripped, or `undefined` when every guard holds. */
export function trippedGuard(rollout: RolloutState, figures: RolloutFigures): string | undefined {
  const { policy } = rollout;
  if (policy.strategy === 'all-at-once') return undefined;
  const { candidate, stable } = figures;
  const shadow = policy.strategy === 'shadow';
  // A shadow's failures are its copies' failures (the client never saw them).
  const requests = shadow ? (figures.shadow?.compared ?? 0) + (figures.shadow?.failed ?? 0) : candidate.requests;
  const errors = shadow ? (figures.shadow?.failed ?? 0) : candidate.errors;
  if (requests > 0 && errors / requests > policy.maxErrorRate) {
    return `candidate ${rollout.candidate} failed ${errors} of ${requests} inferences (${percent(errors / requests)}), over maxErrorRate ${percent(policy.maxErrorRate)}`;
  }
  if (requests < policy.minRequests) return undefined;
  const ratio = policy.maxLatencyP99Ratio;
  if (ratio !== undefined && candidate.p99Ms !== undefined && stable.p99Ms !== undefined && stable.p99Ms > 0) {
    const measured = candidate.p99Ms / stable.p99Ms;
    if (measured > ratio) {
      return `candidate ${rollout.candidate} p99 latency ${round(candidate.p99Ms)} ms is ${round(measured)}x stable ${rollout.stable}'s ${round(stable.p99Ms)} ms, over maxLatencyP99Ratio ${ratio}`;
    }
  }
  if (policy.strategy === 'shadow' && figures.shadow !== undefined) {
    const s = figures.shadow;
    if (policy.maxAbsDiff !== undefined && s.maxAbsDiff > policy.maxAbsDiff) {
      return `candidate ${rollout.candidate}'s outputs differ from stable ${rollout.stable}'s by up to ${s.maxAbsDiff} (absolute), over maxAbsDiff ${policy.maxAbsDiff}`;
    }
    if (policy.maxRelDiff !== undefined && s.maxRelDiff > policy.maxRelDiff) {
      return `candidate ${rollout.candidate}'s outputs differ from stable ${rollout.stable}'s by up to ${s.maxRelDiff} (relative), over maxRelDiff ${policy.maxRelDiff}`;
    }
    if (policy.minLabelAgreement !== undefined && s.labelsCompared > 0) {
      const agreement = s.labelsAgreed / s.labelsCompared;
      if (agreement < policy.minLabelAgreement) {
        return `candidate ${rollout.candidate}'s labels agree with stable ${rollout.stable}'s on ${percent(agreement)} of ${s.labelsCompared} requests, under minLabelAgreement ${percent(policy.minLabelAgreement)}`;
      }
    }
  }
  return undefined;
}

/**
 * The controller's state machine, for one rollout at `now` (ms since the epoch): roll back when a guard trips (even
 * paused), else, unless paused, advance a linear step or promote once the last step's interval (or the baking time)
 * has passed. A shadow is promoted only with enough compared requests (its guards must have been judged).
 */
export function decideRollout(rollout: RolloutState, figures: RolloutFigures, now: number): RolloutDecision {
  if (!isActive(rollout)) return {};
  const at = new Date(now).toISOString();
  const tripped = trippedGuard(rollout, figures);
  if (tripped !== undefined) {
    return { next: finish(rollout, 'rolled-back', `rolled back: ${tripped}`, at), outcome: 'rolled-back' };
  }
  const { policy } = rollout;
  if (rollout.paused || policy.strategy === 'all-at-once') return {};
  const waitSeconds = policy.strategy === 'linear' ? policy.intervalSeconds : policy.bakingSeconds;
  if (now - Date.parse(rollout.stepStarted) < waitSeconds * 1000) return {};
  if (policy.strategy === 'linear' && rollout.weight + policy.stepPercent < 100) {
    const next = { ...rollout, step: rollout.step + 1, weight: rollout.weight + policy.stepPercent };
    return { next: { ...next, stepStarted: at, updated: at }, outcome: 'advanced' };
  }
  if (policy.strategy === 'shadow') {
    const compared = figures.shadow?.compared ?? 0;
    if (compared < policy.minRequests) return {};
  }
  const summary =
    policy.strategy === 'shadow'
      ? `${figures.shadow?.compared ?? 0} shadow comparisons within the guards`
      : `${figures.candidate.requests} candidate requests, ${figures.candidate.errors} failed`;
  return { next: finish(rollout, 'promoted', `promoted: ${summary}`, at), outcome: 'promoted' };
}

/** A finished rollout: promoted (the candidate takes all traffic) or rolled back (the stable version does). */
export function finish(
  rollout: RolloutState,
  state: 'promoted' | 'rolled-back',
  reason: string,
  at: string,
): RolloutState {
  return { ...rollout, state, weight: state === 'promoted' ? 100 : 0, reason, updated: at, stepStarted: at };
}

function percent(share: number): string {
  return `${round(share * 100)}%`;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
