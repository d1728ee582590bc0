/**
 * Warmers (DESIGN.md): `{"warmer": true, "concurrency": N}` from an EventBridge rule makes sure the latest
 * version's session is loaded, and keeps N instances warm by invoking the function N-1 more times in parallel,
 * each holding briefly so that the invocations cannot share an instance.
 */
import type { ModelService } from './model-service.js';

/** The event an EventBridge warmer rule sends. */
export interface WarmerEvent {
  readonly warmer: true;
  readonly concurrency?: number;
  /** Set on fan-out invocations: hold this long, and do not fan out again. */
  readonly holdMs?: number;
}

/** What a warmer invocation answers. */
export interface WarmerResult {
  readonly warmed: true;
  readonly model: string;
  readonly version: string;
  readonly coldStart: boolean;
  /** Whether this invocation had to load the session. */
  readonly loaded: boolean;
  /** Fan-out self-invocations that answered. */
  readonly invoked: number;
  /** Fan-out self-invocations that failed (throttled, timed out, or the instance could not load the model). */
  readonly failed: number;
}

/**
 * Invokes this same function with a payload and waits for it (the Lambda client in production). `target` is the
 * ARN the warmer itself was invoked through (its alias, with provisioned concurrency), so that the fan-out warms the
 * instances that serve traffic rather than `$LATEST`; without it, the function's own name.
 */
export type SelfInvoker = (payload: WarmerEvent, target?: string) => Promise<void>;

/** Most instances one warmer may keep warm. */
export const MAX_WARMER_CONCURRENCY = 50;
/** How long a fan-out invocation holds its instance. */
export const DEFAULT_HOLD_MS = 150;

/** True for a warmer event (anything else is an API Gateway event). */
export function isWarmerEvent(event: unknown): event is WarmerEvent {
  return typeof event === 'object' && event !== null && (event as { warmer?: unknown }).warmer === true;
}

/** Handles a warmer event for `model`, without touching the inference path. */
export async function warm(
  event: WarmerEvent,
  options: { service: ModelService; model: string; coldStart: boolean; invoke?: SelfInvoker; target?: string },
): Promise<WarmerResult> {
  const target = await options.service.resolve(options.model, undefined, { refresh: true });
  const { loaded } = await options.service.ensureLoaded(target);
  const concurrency = Math.min(MAX_WARMER_CONCURRENCY, Math.max(1, Math.floor(event.concurrency ?? 1)));
  let invoked = 0;
  let failed = 0;
  if (event.holdMs !== undefined) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(event.holdMs ?? 0, 5_000)));
  } else if (concurrency > 1 && options.invoke !== undefined) {
    const invoke = options.invoke;
    const results = await Promise.allSettled(
      Array.from({ length: concurrency - 1 }, () =>
        invoke({ warmer: true, concurrency: 1, holdMs: DEFAULT_HOLD_MS }, options.target),
      ),
    );
    // A failed fan-out leaves one instance cold, not the model unserved: report it, do not fail the warmer.
    invoked = results.filter((r) => r.status === 'fulfilled').length;
    failed = results.length - invoked;
  }
  return {
    warmed: true,
    model: options.model,
    version: target.version,
    coldStart: options.coldStart,
    loaded,
    invoked,
    failed,
  };
}
