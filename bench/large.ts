/**
 * The `large` section: models of about 100 MB and 400 MB (generated, deterministic, weights onnxruntime cannot fold
 * away) served by the embedded S3 server behind a loopback proxy that caps each connection's bandwidth as S3 does
 * (`BENCH_S3_MBPS`, default 90 MB/s per connection; 0 turns the cap off). Measures the model download with one GET
 * and with the default parallel ranged GETs (and the grid of settings the defaults were chosen from), the first
 * inference of a fresh staged function, its peak memory, registration's peak memory, and RSS across version swaps.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { createS3Client } from '../functions/adapters/s3-client.js';
import { S3BlobStore } from '../functions/adapters/s3-blob-store.js';
import { MODEL_SERVICE_DEFAULTS } from '../functions/core/model-service.js';
import type { LocalStack } from '../functions/local/local-runtime.js';
import { runInLambdaProcess } from '../tools/lambda-process.js';
import { buildLargeModel } from '../tools/onnx/sample-models.js';
import { S3_CONNECTION_BYTES_PER_SECOND, startS3Proxy } from '../tools/s3-proxy.js';
import type { InferArtifact } from './artifacts.js';
import { printedNumber, runTsxChild } from './child.js';
import { functionEnvironment, type S3Access } from './cold.js';
import { binaryRequest, inferEvent, modelInputs } from './inputs.js';
import { median } from './stats.js';

const MB = 1024 * 1024;
const LARGE_CHILD = fileURLToPath(new URL('./large-child.ts', import.meta.url));
/** Version swaps of the leak measure (onnxruntime-node issue #25325). */
const SWAPS = 20;

/** What {@link measureLarge} reports, under `large` in `bench/results.json`. */
export interface LargeResults {
  readonly s3_bytes_per_second_per_connection: number;
  readonly model_bytes: Readonly<Record<string, number>>;
  readonly fetch_single_ms: number;
  readonly fetch_parallel_ms: number;
  readonly fetch_speedup: number;
  /** Download time of the 100 MB model per `<concurrency>x<part MiB>`. */
  readonly fetch_ms_by_setting: Readonly<Record<string, number>>;
  readonly time_to_first_inference_ms: Readonly<Record<string, number>>;
  /** Peak RSS growth of the staged function over the file, from its init to its first answer (the 100 MB model). */
  readonly load_peak_rss_over_file: number;
  readonly load_peak_rss_over_file_by_size: Readonly<Record<string, number>>;
  /** Peak RSS growth of registration over the upload, a single `.onnx` served unchanged (the 100 MB model). */
  readonly register_peak_rss_over_file: number;
  /** The same per upload size: 100 MB always, 1 GiB with `BENCH_REGISTER_1GIB=1` (about a minute more). */
  readonly register_peak_rss_over_file_by_size: Readonly<Record<string, number>>;
  readonly swap_rss_first_bytes: number;
  readonly swap_rss_last_bytes: number;
  readonly swap_rss_growth_ratio: number;
}

async function register(stack: LocalStack, name: string, bytes: Uint8Array): Promise<void> {
  await stack.runtime.store.put(`uploads/${name}/${name}.onnx`, bytes);
  await stack.settled();
  const outcome = stack.registrations.flatMap((r) => r.outcomes).find((o) => o.key === `uploads/${name}/${name}.onnx`);
  if (outcome?.kind !== 'registered' && outcome?.kind !== 'duplicate')
    throw new Error(`registration of ${name} failed: ${JSON.stringify(outcome)}`);
}

/** Runs the section. `large100` is the 100 MB model the caller registered as `large100Name`. */
export async function measureLarge(options: {
  readonly stack: LocalStack;
  readonly infer: InferArtifact;
  readonly s3: S3Access;
  readonly workDir: string;
  readonly large100: Uint8Array;
  readonly large100Name: string;
  readonly step: (what: string) => void;
}): Promise<LargeResults> {
  const { stack, infer, s3, step } = options;
  const rate =
    process.env['BENCH_S3_MBPS'] === undefined
      ? S3_CONNECTION_BYTES_PER_SECOND
      : Number(process.env['BENCH_S3_MBPS']) * 1000 * 1000;
  const dir = join(options.workDir, 'large');
  mkdirSync(dir, { recursive: true });
  const proxy = await startS3Proxy({ target: s3.endpoint, bytesPerSecond: rate });
  const client = createS3Client({ endpoint: proxy.endpoint, credentials: s3.credentials, region: s3.region });
  try {
    step('large: registering the 400 MB model');
    let large400: Uint8Array | undefined = buildLargeModel(400 * MB, 13);
    const sizes = { '100MB': options.large100.byteLength, '400MB': large400.byteLength };
    await register(stack, 'large400', large400);
    large400 = undefined;

    step(`large: fetching the 100 MB model at ${rate / 1e6} MB/s per connection`);
    const store = new S3BlobStore(client, s3.bucket);
    const key = `models/${options.large100Name}/1/model.onnx`;
    const file = join(dir, 'fetched.onnx');
    const timed = async (partBytes: number, concurrency: number): Promise<number> => {
      const started = performance.now();
      const object = await store.download(key, file, { partBytes, concurrency });
      const elapsed = performance.now() - started;
      if (object?.size !== options.large100.byteLength) throw new Error(`the download of ${key} came back short`);
      rmSync(file, { force: true });
      return elapsed;
    };
    const single: number[] = [];
    const parallel: number[] = [];
    for (let run = 0; run < 3; run++) {
      single.push(await timed(2 ** 40, 1));
      parallel.push(await timed(MODEL_SERVICE_DEFAULTS.downloadPartBytes, MODEL_SERVICE_DEFAULTS.downloadConcurrency));
    }
    const grid: Record<string, number> = {};
    for (const concurrency of [4, 8, 16]) {
      for (const partMb of [4, 8, 16]) grid[`${concurrency}x${partMb}MiB`] = await timed(partMb * MB, concurrency);
    }

    step('large: first inference of a fresh staged function (100 MB, 400 MB)');
    const metadata = (await stack.runtime.service.resolve(options.large100Name)).metadata;
    const request = binaryRequest(modelInputs(metadata.inputs));
    const ttfi: Record<string, number> = {};
    const peak: Record<string, number> = {};
    for (const [label, name] of [
      ['100MB', options.large100Name],
      ['400MB', 'large400'],
    ] as const) {
      const run = await runInLambdaProcess({
        bundleDir: infer.bundleDir,
        layerDir: infer.layerDirs[0],
        taskDir: join(dir, `first-${label}`),
        functionName: infer.logicalId,
        memoryMb: infer.memoryMb,
        environment: functionEnvironment(infer, { ...s3, endpoint: proxy.endpoint }, { MODEL_NAME: name }),
        events: [inferEvent(name, request)],
      });
      const answer = run.results[0] as APIGatewayProxyResult | undefined;
      if (answer?.statusCode !== 200)
        throw new Error(`the first inference of ${name} failed: ${JSON.stringify(answer).slice(0, 300)}`);
      ttfi[label] = run.responseMs[0] ?? NaN;
      peak[label] = ((run.peakRssBytes[0] ?? NaN) - run.initRssBytes) / sizes[label];
    }

    step('large: registration memory and version swaps (fresh processes)');
    mkdirSync(join(dir, 'repo', 'uploads', 'big'), { recursive: true });
    writeFileSync(join(dir, 'repo', 'uploads', 'big', 'a.onnx'), options.large100);
    writeFileSync(join(dir, 'repo', 'uploads', 'big', 'b.onnx'), buildLargeModel(100 * MB, 12));
    const registered = await runTsxChild(
      LARGE_CHILD,
      ['register', join(dir, 'repo'), 'uploads/big/a.onnx'],
      'register a',
    );
    await runTsxChild(LARGE_CHILD, ['register', join(dir, 'repo'), 'uploads/big/b.onnx'], 'register b');
    const registerBySize: Record<string, number> = {
      '100MB': printedNumber(registered, 'growth', 'register') / printedNumber(registered, 'size', 'register'),
    };
    if (process.env['BENCH_REGISTER_1GIB'] === '1') {
      step('large: registration memory of a 1 GiB upload');
      mkdirSync(join(dir, 'repo', 'uploads', 'huge'), { recursive: true });
      writeFileSync(join(dir, 'repo', 'uploads', 'huge', 'g.onnx'), buildLargeModel(1024 * MB, 14));
      const huge = await runTsxChild(
        LARGE_CHILD,
        ['register', join(dir, 'repo'), 'uploads/huge/g.onnx'],
        'register 1 GiB',
      );
      registerBySize['1GiB'] =
        printedNumber(huge, 'growth', 'register 1 GiB') / printedNumber(huge, 'size', 'register 1 GiB');
      rmSync(join(dir, 'repo', 'uploads', 'huge'), { recursive: true, force: true });
      rmSync(join(dir, 'repo', 'models', 'huge'), { recursive: true, force: true });
    }
    const swapped = await runTsxChild(LARGE_CHILD, ['swap', join(dir, 'repo'), 'big', String(SWAPS)], 'swaps');
    const first = printedNumber(swapped, 'first', 'swaps');
    const last = printedNumber(swapped, 'last', 'swaps');

    const singleMs = median(single);
    const parallelMs = median(parallel);
    return {
      s3_bytes_per_second_per_connection: rate,
      model_bytes: sizes,
      fetch_single_ms: singleMs,
      fetch_parallel_ms: parallelMs,
      fetch_speedup: singleMs / parallelMs,
      fetch_ms_by_setting: grid,
      time_to_first_inference_ms: ttfi,
      load_peak_rss_over_file: peak['100MB'] ?? NaN,
      load_peak_rss_over_file_by_size: peak,
      register_peak_rss_over_file: registerBySize['100MB'] ?? NaN,
      register_peak_rss_over_file_by_size: registerBySize,
      swap_rss_first_bytes: first,
      swap_rss_last_bytes: last,
      swap_rss_growth_ratio: last / first,
    };
  } finally {
    client.destroy();
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
