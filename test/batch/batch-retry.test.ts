/**
 * Transient failures, injected: the serving session factory fails its first loads (as a model that cannot be
 * loaded right now, a 503). A batch that meets one writes nothing for its items and is retried; past its attempts
 * its items stay pending (no failure record: the input was not at fault) and the job record says so; a resume, once
 * the model loads, completes exactly those items. The real batch handler and local engine, over a folder store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import type { SessionFactory } from '../../functions/core/session.js';
import { createLocalBatchEngine } from '../../functions/local/batch-engine.js';
import { createBatchHandler } from '../../functions/transport/batch-handler.js';
import { createRegisterHandler } from '../../functions/transport/register-handler.js';
import { readConfig } from '../../functions/wiring/config.js';
import { createObservability } from '../../functions/wiring/observability.js';
import { createRuntime, type Runtime } from '../../functions/wiring/runtime.js';
import { s3Event } from '../../tools/lambda-events.js';
import { buildIdentityModel } from '../../tools/onnx/index.js';

let dir: string;
let runtime: Runtime;
/** Loads still to fail. */
let failingLoads = 0;
/** Inferences run so far. */
let runs = 0;

const faulty: SessionFactory = {
  ...onnxruntimeSessionFactory,
  createFromFile: async (file, options) => {
    if (failingLoads > 0) {
      failingLoads--;
      throw new Error('injected: the model cannot be loaded right now');
    }
    return onnxruntimeSessionFactory.createFromFile(file, options);
  },
};

const keysUnder = async (prefix: string) => (await runtime.store.list(prefix)).sort();

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'batch-retry-'));
  runs = 0;
  runtime = createRuntime(readConfig({ MODEL_DIR: dir, MODEL_BUCKET: 'models' }), {
    servingSessionFactory: faulty,
    telemetry: { inferred: () => runs++ },
  });
  const observability = createObservability('batch-retry', false);
  observability.logger.setLogLevel('SILENT');
  await runtime.store.put('uploads/echo/echo.onnx', buildIdentityModel('FP32'));
  const { outcomes } = await createRegisterHandler(runtime, observability)(s3Event(['uploads/echo/echo.onnx']));
  expect(outcomes[0]?.kind).toBe('registered');
  for (const [i, data] of [[1], [2, 3], [4], [5, 6]].entries()) {
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [data.length], data }] });
    await runtime.store.put(`batch/in/${i}.json`, new TextEncoder().encode(body));
  }
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function engine() {
  return createLocalBatchEngine({
    handler: createBatchHandler(runtime, { engine: 'local' }),
    lister: runtime.store,
    records: runtime.store,
    batchSize: 2,
    concurrency: 1,
    attempts: 3,
    retryDelayMs: 5,
  });
}

const job = { model: 'echo', version: 'latest', input: 's3://models/batch/in/', output: 's3://models/batch/out/' };

it('retries a batch that met a 503, and writes no failure record for it', async () => {
  failingLoads = 2;
  const batch = engine();
  const { jobId } = await batch.start(job);
  await batch.settled();
  expect((await batch.status('echo', jobId)).counts).toEqual({ inputs: 4, results: 4, failures: 0, pending: 0 });
  expect(failingLoads).toBe(0);
  expect(await keysUnder('batch/out/')).toEqual([0, 1, 2, 3].map((i) => `batch/out/${i}.json.result.json`));
});

it('leaves a batch pending past its attempts, and running the job again completes exactly those items', async () => {
  // Three loads fail: the first batch's three attempts; the second batch loads and succeeds.
  failingLoads = 3;
  const first = engine();
  const { jobId } = await first.start(job);
  await first.settled();
  expect((await first.status('echo', jobId)).counts).toEqual({ inputs: 4, results: 2, failures: 0, pending: 2 });
  expect(await keysUnder('batch/out/')).toEqual(['batch/out/2.json.result.json', 'batch/out/3.json.result.json']);
  expect(runs).toBe(2);

  // The job ended (its record says what is pending): running it again does only what is left.
  const second = engine();
  const again = await second.start(job);
  await second.settled();
  expect(again.jobId).not.toBe(jobId);
  expect((await second.status('echo', again.jobId)).counts).toEqual({ inputs: 4, results: 4, failures: 0, pending: 0 });
  expect(await keysUnder('batch/out/')).toEqual([0, 1, 2, 3].map((i) => `batch/out/${i}.json.result.json`));
  // Only the two pending items ran: the finished ones were skipped, not redone.
  expect(runs).toBe(4);
});
