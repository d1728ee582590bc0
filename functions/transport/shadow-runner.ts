/**
 * Where shadow copies run (docs/rollouts.md, "Shadow"): in the instance that answered, after its answer, one at a
 * time. A copy is started on the next turn of the event loop, once the client's answer has been handed back, and
 * never awaited by the request; while one runs, further copies are skipped (and counted), so that a slow or
 * failing candidate can neither queue work behind the client's requests nor grow memory.
 */

/** Schedules one shadow copy; see {@link createShadowRunner}. */
export type ShadowRunner = (copy: () => Promise<void>) => void;

/**
 * The per-process shadow runner: at most one copy in flight, the others skipped (`onSkipped` counts them).
 * @example const shadow = createShadowRunner(); shadow(() => service.shadow(model, '3', request, answer));
 */
export function createShadowRunner(onSkipped: () => void = () => undefined): ShadowRunner {
  let inFlight = false;
  return (copy) => {
    if (inFlight) {
      onSkipped();
      return;
    }
    inFlight = true;
    setImmediate(() => {
      copy()
        .catch(() => undefined)
        .finally(() => {
          inFlight = false;
        });
    });
  };
}
