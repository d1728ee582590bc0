/**
 * Where serving runs onnxruntime, on the warm path: the same model and tensors through each session factory, timed
 * in alternating blocks in one process. `main` is onnxruntime on this thread (deployed), `worker` a worker thread,
 * `process` the supervised child process of `npm start` (a deadline can kill it, a crash costs one request), and
 * `main+watchdog` the deployed main thread with the Lambda watchdog armed and disarmed around each run.
 *
 * `npx tsx bench/serving-engines.ts [--model <path.onnx>]` prints the figures; `npm run bench` includes them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lambdaRunWatchdog } from '../functions/adapters/lambda-watchdog.js';
import { onnxruntimeSessionFactory } from '../functions/adapters/onnxruntime-session.js';
import { supervisedSessionFactory } from '../functions/adapters/supervised-session.js';
import { workerSessionFactory } from '../functions/adapters/worker-session.js';
import { InferenceTimeoutError } from '../functions/core/errors.js';
import type { ModelSession, SessionOptions } from '../functions/core/session.js';
import type { Tensor } from '../functions/core/types.js';
import { buildLinearExample } from '../tools/onnx/examples.js';
import { modelInputs } from './inputs.js';
import { medians, timeAlternating } from './stats.js';

/** What {@link measureServingEngines} reports: medians in ms, and ratios against the baselines of the same run. */
export interface ServingEngineResults {
  readonly small_main_p50_ms: number;
  readonly small_worker_p50_ms: number;
  readonly small_process_p50_ms: number;
  /** `npm start`'s supervised process against the worker thread it replaced, on a tiny model. */
  readonly small_process_over_worker: number;
  /** The deployed watchdog's arm and disarm around each run, against the bare run. */
  readonly small_watchdog_over_main: number;
  readonly image_main_p50_ms: number;
  readonly image_process_over_worker: number;
  readonly image_process_over_main: number;
  readonly image_watchdog_over_main: number;
}

async function medianRuns(
  bytes: Uint8Array,
  options: SessionOptions,
  sampling: { warmup: number; blocks: number; perBlock: number },
): Promise<Record<'main' | 'worker' | 'process' | 'main_watchdog', number>> {
  // The worker thread does not keep a process alive (a server's sockets do): this does, while the bench runs.
  const keepAlive = setInterval(() => undefined, 1000);
  const supervised = supervisedSessionFactory();
  const sessions: Record<'main' | 'worker' | 'process', ModelSession> = {
    main: await onnxruntimeSessionFactory.create(bytes, options),
    worker: await workerSessionFactory().create(bytes, options),
    process: await supervised.create(bytes, options),
  };
  const inputs: Tensor[] = modelInputs(sessions.main.inputs);
  const outputs = sessions.main.outputs.map((o) => o.name);
  // Armed far from its deadline and disarmed after each run: the cost of watching, never a firing.
  const watchdog = lambdaRunWatchdog({
    runtimeApi: '127.0.0.1:9',
    render: () => ({ headers: {}, body: new Uint8Array(0) }),
  });
  const expired = new InferenceTimeoutError('bench');
  try {
    return medians(
      await timeAlternating(
        {
          main: () => sessions.main.run(inputs, outputs),
          worker: () => sessions.worker.run(inputs, outputs),
          process: () => sessions.process.run(inputs, outputs),
          main_watchdog: () =>
            watchdog.around('bench', async () => {
              const unwatch = watchdog.watch(600_000, expired);
              try {
                return await sessions.main.run(inputs, outputs);
              } finally {
                unwatch();
              }
            }),
        },
        sampling,
      ),
    );
  } finally {
    for (const session of Object.values(sessions)) await session.release();
    supervised.close();
    clearInterval(keepAlive);
  }
}

/**
 * The warm-path cost of each engine on a tiny model (`linear`, JSON-sized) and on `modelBytes` (the bench's image
 * model), as ratios against the worker thread (what `npm start` used before) and the main thread (deployed).
 */
export async function measureServingEngines(
  modelBytes: Uint8Array,
  options: SessionOptions,
): Promise<ServingEngineResults> {
  const small = await medianRuns(buildLinearExample().bytes, options, { warmup: 200, blocks: 30, perBlock: 40 });
  const image = await medianRuns(modelBytes, options, { warmup: 3, blocks: 6, perBlock: 6 });
  return {
    small_main_p50_ms: small.main,
    small_worker_p50_ms: small.worker,
    small_process_p50_ms: small.process,
    small_process_over_worker: small.process / small.worker,
    small_watchdog_over_main: small.main_watchdog / small.main,
    image_main_p50_ms: image.main,
    image_process_over_worker: image.process / image.worker,
    image_process_over_main: image.process / image.main,
    image_watchdog_over_main: image.main_watchdog / image.main,
  };
}

if (fileURLToPath(import.meta.url) === resolve(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { model: { type: 'string' } } });
  const path = values.model ?? '../shared/conformance/onnx-light/light_inception_v1/model.onnx';
  const results = await measureServingEngines(new Uint8Array(readFileSync(path)), {
    intraOpNumThreads: 2,
    graphOptimizationLevel: 'all',
  });
  for (const [key, value] of Object.entries(results)) console.log(`engines.${key.padEnd(28)} ${value.toFixed(3)}`);
  process.exit(0);
}
