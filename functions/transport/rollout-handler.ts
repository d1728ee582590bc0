/**
 * The rollout controller as a handler: one pass of `runRolloutController` per call, each promotion, step and
 * rollback logged, and handed to `publish` (deployed: rollbacks to the alarm topic; `npm start`: the local notice
 * sink). Deployed, an EventBridge rule calls it every minute; `npm start` calls it from a timer.
 */
import type { ModelRepository } from '../core/model-repository.js';
import { runRolloutController, type FigureSource, type RolloutNotice } from '../core/rollout-controller.js';
import type { Observability } from '../wiring/observability.js';

/** What one controller pass reports. */
export interface RolloutPassResult {
  readonly notices: readonly RolloutNotice[];
}

/** Builds the controller handler. A failed `publish` is logged: the decision is already in the manifest. */
export function createRolloutHandler(
  repository: ModelRepository,
  observability: Observability,
  options: {
    readonly figures: FigureSource;
    readonly publish?: (notice: RolloutNotice) => Promise<void> | void;
    /** @default Date.now */
    readonly now?: () => number;
  },
): () => Promise<RolloutPassResult> {
  const { logger } = observability;
  return async () => {
    try {
      const notices = await runRolloutController({
        repository,
        figures: options.figures,
        ...(options.now === undefined ? {} : { now: options.now }),
        notify: async (notice) => {
          if (notice.outcome === 'rolled-back') logger.warn('rollout rolled back', { ...notice });
          else logger.info(`rollout ${notice.outcome}`, { ...notice });
          try {
            await options.publish?.(notice);
          } catch (error) {
            logger.error('rollout notice not published', { model: notice.model, error: error as Error });
          }
        },
      });
      return { notices };
    } finally {
      observability.flush();
    }
  };
}
