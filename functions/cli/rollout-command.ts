/**
 * `npm run models -- rollout <m> status|start|pause|resume|promote|rollback|policy`: an operator's view of and hand
 * on a model's guarded rollout (docs/rollouts.md). Every change is a conditional write of the manifest
 * (`ModelRepository.updateManifest`), as the controller's and registration's are, so none is lost to the others.
 */
import { applyRollout } from '../core/rollout-controller.js';
import {
  finish,
  isActive,
  parseRolloutPolicy,
  type RolloutPolicy,
  type RolloutState,
  startRollout,
} from '../core/rollout.js';
import type { Manifest } from '../core/types.js';
import { checkModelName, type CommandContext } from './commands.js';
import { CommandFailedError, EXIT_CODES, UsageError } from './errors.js';

/** The actions of `rollout`. */
export const ROLLOUT_ACTIONS = ['status', 'start', 'pause', 'resume', 'promote', 'rollback', 'policy'] as const;
/** One of {@link ROLLOUT_ACTIONS}. */
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

/** Options of {@link rolloutCommand}. */
export interface RolloutCommandOptions {
  readonly model: string;
  readonly action: string;
  /** `start`: the version to roll out (default: the highest READY version above `latest`). */
  readonly version?: string;
  /** `start` and `policy`: the policy as JSON (`start` defaults to the model's policy). */
  readonly policy?: string;
}

/** Runs one `rollout` action and prints the rollout as it is afterwards. */
export async function rolloutCommand(ctx: CommandContext, options: RolloutCommandOptions): Promise<number> {
  if (!(ROLLOUT_ACTIONS as readonly string[]).includes(options.action)) {
    throw new UsageError(`rollout takes one of ${ROLLOUT_ACTIONS.join('|')}, got "${options.action}"`);
  }
  checkModelName(options.model);
  const action = options.action as RolloutAction;
  if (options.version !== undefined && action !== 'start') throw new UsageError(`rollout ${action} takes no version`);
  if (options.policy !== undefined && action !== 'start' && action !== 'policy') {
    throw new UsageError(`rollout ${action} does not take --policy`);
  }
  const policy = options.policy === undefined ? undefined : parsePolicyFlag(options.policy);
  if (action === 'policy' && policy === undefined) {
    throw new UsageError(`rollout policy needs --policy '<json>', e.g. '{"strategy":"canary","percent":10}'`);
  }
  const now = new Date((ctx.now ?? Date.now)()).toISOString();
  let manifest = await read(ctx, options.model);
  if (action !== 'status') {
    const change = (current: Manifest): Manifest => changeFor(action, current, { ...options, policy }, now);
    // Checked on the manifest as read first, so that a refusal is a clear message rather than a retry.
    change(manifest);
    manifest = (await ctx.repository.updateManifest(options.model, change)) ?? manifest;
  }
  print(ctx, options.model, manifest);
  return EXIT_CODES.ok;
}

function parsePolicyFlag(json: string): RolloutPolicy {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new UsageError(`--policy is not JSON: ${json.slice(0, 200)}`);
  }
  const parsed = parseRolloutPolicy(value);
  if (!parsed.ok) throw new UsageError(`--policy is invalid: ${parsed.message}`);
  return parsed.value;
}

async function read(ctx: CommandContext, model: string): Promise<Manifest> {
  const manifest = (await ctx.repository.readManifest(model))?.manifest;
  if (manifest === undefined) throw new CommandFailedError(`unknown model "${model}" in ${ctx.where}`);
  return manifest;
}

/** The manifest once `action` is applied to `manifest`; throws {@link CommandFailedError} when it cannot apply. */
function changeFor(
  action: Exclude<RolloutAction, 'status'>,
  manifest: Manifest,
  options: { version?: string; policy?: RolloutPolicy | undefined },
  now: string,
): Manifest {
  const rollout = manifest.rollout;
  const running = (): RolloutState => {
    if (isActive(rollout)) return rollout;
    const last = manifest.rollout?.state;
    throw new CommandFailedError(
      `"${manifest.name}" has no rollout running${last === undefined ? '' : ` (the last one was ${last})`}: start one with rollout ${manifest.name} start`,
    );
  };
  switch (action) {
    case 'policy':
      return { ...manifest, rolloutPolicy: options.policy as RolloutPolicy };
    case 'pause':
      return { ...manifest, rollout: { ...running(), paused: true, updated: now } };
    case 'resume':
      return { ...manifest, rollout: { ...running(), paused: false, stepStarted: now, updated: now } };
    case 'promote':
      return applyRollout(manifest, finish(running(), 'promoted', 'promoted by an operator (CLI)', now));
    case 'rollback':
      return applyRollout(manifest, finish(running(), 'rolled-back', 'rolled back by an operator (CLI)', now));
    case 'start': {
      if (isActive(rollout)) {
        throw new CommandFailedError(
          `"${manifest.name}" already rolls out version ${rollout.candidate}: promote or roll it back first`,
        );
      }
      const policy = options.policy ?? manifest.rolloutPolicy;
      if (policy === undefined || policy.strategy === 'all-at-once') {
        throw new CommandFailedError(
          `"${manifest.name}" has no guarded rollout policy: pass --policy '<json>' or set one with rollout ${manifest.name} policy`,
        );
      }
      const ready = manifest.versions.filter((v) => v.state === 'READY').map((v) => v.version);
      const candidate = options.version ?? waiting(manifest)[0];
      if (candidate === undefined || !ready.includes(candidate) || candidate === manifest.latest) {
        throw new CommandFailedError(
          `no version to roll out against latest ${manifest.latest}: give a READY version other than it (READY: ${ready.join(', ')})`,
        );
      }
      return { ...manifest, rollout: startRollout(policy, manifest.latest, candidate, now) };
    }
  }
}

/** READY versions above `latest` that no rollout has taken yet, highest first. */
function waiting(manifest: Manifest): string[] {
  const done = new Set([manifest.latest, manifest.rollout?.candidate]);
  return manifest.versions
    .filter((v) => v.state === 'READY' && Number(v.version) > Number(manifest.latest) && !done.has(v.version))
    .map((v) => v.version)
    .sort((a, b) => Number(b) - Number(a));
}

/** Prints the rollout: state, weights, guards and the figures the controller last judged. */
function print(ctx: CommandContext, model: string, manifest: Manifest): void {
  const rollout = manifest.rollout;
  if (ctx.json) {
    ctx.out(
      JSON.stringify({
        model,
        latest: manifest.latest,
        policy: manifest.rolloutPolicy ?? null,
        rollout: rollout ?? null,
        waiting: waiting(manifest),
      }),
    );
    return;
  }
  ctx.out(
    `${model}: latest ${manifest.latest}; policy ${JSON.stringify(manifest.rolloutPolicy ?? { strategy: 'all-at-once' })}`,
  );
  if (rollout === undefined) {
    ctx.out('no rollout yet');
  } else {
    const { policy } = rollout;
    const share = policy.strategy === 'shadow' ? 'copied to candidate' : 'to candidate';
    ctx.out(
      `rollout: ${rollout.state}${rollout.paused ? ' (paused)' : ''}; stable ${rollout.stable} ${100 - (policy.strategy === 'shadow' ? 0 : rollout.weight)}%, ` +
        `candidate ${rollout.candidate} ${rollout.weight}% ${share}; step ${rollout.step}; started ${rollout.started}`,
    );
    ctx.out(`policy: ${JSON.stringify(policy)}`);
    const f = rollout.figures;
    if (f !== undefined) {
      const rate = (errors: number, requests: number) =>
        requests === 0 ? '-' : `${Math.round((errors / requests) * 10000) / 100}%`;
      ctx.out(
        `figures at ${f.at}: candidate ${f.candidate.requests} requests, errors ${rate(f.candidate.errors, f.candidate.requests)}, p99 ${f.candidate.p99Ms ?? '-'} ms; ` +
          `stable ${f.stable.requests} requests, errors ${rate(f.stable.errors, f.stable.requests)}, p99 ${f.stable.p99Ms ?? '-'} ms` +
          (f.shadow === undefined
            ? ''
            : `; shadow ${f.shadow.compared} compared, ${f.shadow.failed} failed, max abs diff ${f.shadow.maxAbsDiff}, max rel diff ${f.shadow.maxRelDiff}`),
      );
    }
    if (rollout.reason !== undefined) ctx.out(`reason: ${rollout.reason}`);
  }
  const queued = waiting(manifest);
  if (queued.length > 0 && !isActive(rollout)) {
    ctx.out(`waiting: version(s) ${queued.join(', ')}; roll out with: npm run models -- rollout ${model} start`);
  }
}
