/**
 * Batch throughput (docs/batch.md): a batch job of `items` binary-extension requests in the embedded S3, run by the
 * local engine of `npm start` (listing, batches of 32, the batch handler, S3 reads and writes, the supervised
 * onnxruntime process), against a plain `session.run` loop over the same tensors in this process with the same
 * session options: `batch.throughput_ratio` = job items/s over loop items/s (target >= 0.8). Rounds alternate loop
 * and job; medians are kept. Standalone: `npx tsx bench/batch.ts [--model <path.onnx>]`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions, toOrtTensor } from '../functions/adapters/onnxruntime-session.js';
import { mapBounded } from '../functions/core/batch/index.js';
import type { SessionOptions } from '../functions/core/session.js';
import type { Tensor } from '../functions/core/types.js';
import { startLocal, type LocalStack } from '../functions/local/local-runtime.js';
import { readConfig } from '../functions/wiring/config.js';
import { binaryRequest, inputTensor } from './inputs.js';
import { median } from './stats.js';

/** Settings of {@link measureBatch}. */
export interface BatchBenchOptions {
  readonly stack: LocalStack;
  /** A registered model and its file (the loop's session reads the same bytes). */
  readonly model: string;
  readonly modelPath: string;
  readonly sessionOptions: SessionOptions;
  /** Items per job. @default 96 (three batches of 32) */
  readonly items?: number;
  /** Loop/job pairs. @default 3 */
  readonly rounds?: number;
}

/** Items per second of a job and of the loop, and their ratio. */
export async function measureBatch(options: BatchBenchOptions): Promise<Record<string, number>> {
  const { stack, model } = options;
  const count = options.items ?? 96;
  const rounds = options.rounds ?? 3;
  const target = await stack.runtime.service.resolve(model);
  const inputs: Tensor[][] = Array.from({ length: count }, (_, i) =>
    target.metadata.inputs.map((spec, n) => inputTensor(spec, 1000 + i * 8 + n)),
  );
  await mapBounded(inputs, 8, (tensors, i) =>
    stack.runtime.store.put(`batch/bench-in/${String(i).padStart(5, '0')}.bin`, binaryRequest(tensors).body),
  );
  const session = await ort.InferenceSession.create(options.modelPath, ortSessionOptions(options.sessionOptions));
  const loop = async () => {
    const started = performance.now();
    for (const tensors of inputs) {
      await session.run(Object.fromEntries(tensors.map((t) => [t.name, toOrtTensor(t)])));
    }
    return count / ((performance.now() - started) / 1000);
  };
  let job = 0;
  const runJob = async () => {
    const started = performance.now();
    const record = await stack.batch.start({
      model,
      version: 'latest',
      input: 's3://models/batch/bench-in/',
      output: `s3://models/batch/bench-out-${job++}/`,
    });
    await stack.batch.settled();
    const seconds = (performance.now() - started) / 1000;
    const done = await stack.batch.status(model, record.jobId);
    if (done.counts?.results !== count) throw new Error(`bench job ended with ${JSON.stringify(done.counts)}`);
    return count / seconds;
  };
  try {
    // Warm both: the loop's session, and the batch function's (its first item loads the model).
    await loop();
    await runJob();
    const loopRates: number[] = [];
    const jobRates: number[] = [];
    for (let round = 0; round < rounds; round++) {
      loopRates.push(await loop());
      jobRates.push(await runJob());
    }
    const loopRate = median(loopRates);
    const jobRate = median(jobRates);
    return {
      items_per_second: Math.round(jobRate * 10) / 10,
      loop_items_per_second: Math.round(loopRate * 10) / 10,
      throughput_ratio: Math.round((jobRate / loopRate) * 1000) / 1000,
      items: count,
    };
  } finally {
    await session.release();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, items: { type: 'string' } } });
  const corpus =
    process.env['CONFORMANCE_DIR'] ?? resolve(fileURLToPath(import.meta.url), '../../../shared/conformance');
  const modelPath = resolve(values.model ?? join(corpus, 'onnx-light', 'light_inception_v1', 'model.onnx'));
  const workDir = mkdtempSync(join(os.tmpdir(), 'onnx-serverless-bench-batch-'));
  const env = { ...process.env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3538' };
  const stack = await startLocal({ port: 0, s3Port: 0, dataDir: join(workDir, 's3'), silent: true, env });
  try {
    await stack.runtime.store.put('uploads/bench/model.onnx', new Uint8Array(readFileSync(modelPath)));
    await stack.settled();
    const results = await measureBatch({
      stack,
      model: 'bench',
      modelPath,
      sessionOptions: readConfig(env).sessionOptions,
      ...(values.items === undefined ? {} : { items: Number(values.items) }),
    });
    process.stdout.write(`${JSON.stringify({ batch: results }, null, 2)}\n`);
  } finally {
    await stack.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
