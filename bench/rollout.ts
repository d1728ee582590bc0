/**
 * Guarded rollouts on the warm path (docs/rollouts.md), in process as `warm.ts` measures it: the deployed `infer`
 * handler of a model with a canary running (10 % of unpinned requests to the candidate) and of one with a shadow
 * rollout (every request copied to the candidate after the answer), each against the handler of a model without a
 * rollout, alternating, on the same small model. `npx tsx bench/rollout.ts` prints the figures alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../functions/adapters/fs-blob-store.js';
import { ModelRepository } from '../functions/core/model-repository.js';
import { registerUpload } from '../functions/core/registration.js';
import { registrationOptions } from '../functions/transport/register-handler.js';
import { readConfig } from '../functions/wiring/config.js';
import { createRuntime } from '../functions/wiring/runtime.js';
import { buildScaledLinearModel } from '../tools/onnx/sample-models.js';
import { inferEvent, jsonRequest, modelInputs } from './inputs.js';
import { medians, timeAlternating } from './stats.js';
import { answerOnce, deployedHandler, quietly } from './warm.js';

/** What {@link measureRollout} reports (under `rollout.` in bench/results.json). */
export interface RolloutResults {
  readonly none_p50_ms: number;
  readonly canary_p50_ms: number;
  /** Client p50 with a canary active over none: the cost of routing by weight. */
  readonly split_overhead_ratio: number;
  readonly shadow_p50_ms: number;
  /** Client p50 with a 100 % shadow over none, back-to-back requests on one instance (copies included). */
  readonly shadow_client_p50_ratio: number;
}

/** Registers `v1` and `v2` of `model` through the real registration, `v2` under `rollout` when given. */
async function twoVersions(
  store: FsBlobStore,
  options: ReturnType<typeof registrationOptions>,
  model: string,
  rollout?: Record<string, unknown>,
): Promise<void> {
  const encoder = new TextEncoder();
  await store.put(`uploads/${model}/v1.onnx`, buildScaledLinearModel(1));
  await registerUpload(`uploads/${model}/v1.onnx`, options);
  if (rollout !== undefined) {
    await store.put(`uploads/${model}/v2.onnx.json`, encoder.encode(JSON.stringify({ rollout })));
  }
  // The same answers to 1e-4: both versions cost the same, so any difference is the rollout's.
  await store.put(`uploads/${model}/v2.onnx`, buildScaledLinearModel(1, 0.0001));
  const outcome = await registerUpload(`uploads/${model}/v2.onnx`, options);
  if (outcome.kind !== 'registered') throw new Error(`${model} v2 was not registered: ${JSON.stringify(outcome)}`);
}

/** Measures the routing and shadow overheads (see {@link RolloutResults}). */
export async function measureRollout(env: Readonly<Record<string, string>> = {}): Promise<RolloutResults> {
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-rollout-'));
  try {
    const store = new FsBlobStore(dir);
    const registering = createRuntime(readConfig({ ...env, MODEL_DIR: dir }), { store });
    const options = registrationOptions(registering);
    await twoVersions(store, options, 'plain');
    await twoVersions(store, options, 'canary', { strategy: 'canary', percent: 10, bakingSeconds: 3600 });
    await twoVersions(store, options, 'shadowed', { strategy: 'shadow', samplingPercent: 100, bakingSeconds: 3600 });
    const repository = new ModelRepository(store);
    for (const model of ['canary', 'shadowed']) {
      const rollout = (await repository.readManifest(model))?.manifest.rollout;
      if (rollout?.state !== 'baking') throw new Error(`${model} has no rollout running`);
    }
    return await quietly(async () => {
      const handlers = Object.fromEntries(
        ['plain', 'canary', 'shadowed'].map((model) => [model, deployedHandler(store, model, env)]),
      );
      const target = await handlers.plain!.runtime.service.resolve('plain');
      const request = jsonRequest(modelInputs(target.metadata.inputs));
      const events = Object.fromEntries(Object.keys(handlers).map((model) => [model, inferEvent(model, request)]));
      for (const model of Object.keys(handlers)) {
        await answerOnce(handlers[model]!.handler, events[model]!, target.metadata.outputs.length);
      }
      const times = medians(
        await timeAlternating(
          {
            none: () => handlers.plain!.handler(events.plain!),
            canary: () => handlers.canary!.handler(events.canary!),
            shadow: () => handlers.shadowed!.handler(events.shadowed!),
          },
          { warmup: 300, blocks: 40, perBlock: 50 },
        ),
      );
      return {
        none_p50_ms: times.none,
        canary_p50_ms: times.canary,
        split_overhead_ratio: times.canary / times.none,
        shadow_p50_ms: times.shadow,
        shadow_client_p50_ratio: times.shadow / times.none,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('rollout.ts') === true) {
  console.log(JSON.stringify(await measureRollout({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3538' }), null, 2));
}
