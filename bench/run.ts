/**
 * `npm run bench [-- --model <path.onnx>] [--runs N]`: the performance figures of the README, measured in one run
 * on this machine, printed as a table and written to `bench/results.json` (git-ignored).
 *
 * The default model is the conformance corpus's `onnx-light/light_inception_v1` (1x3x224x224 FP32 in), read from
 * `$CONFORMANCE_DIR` or `../shared/conformance`. Every figure is a ratio against a baseline measured in the same
 * run (or a size); timings are medians. See README "Performance" for what each key means.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isValidModelName } from '../functions/core/catalog.js';
import { buildLinearExample } from '../tools/onnx/examples.js';
import { buildLargeModel } from '../tools/onnx/sample-models.js';
import { readConfig } from '../functions/wiring/config.js';
import { startLocal, type LocalStack } from '../functions/local/local-runtime.js';
import { layerSizes, synthesizeInfer } from './artifacts.js';
import { measureBatch } from './batch.js';
import { measureCodec } from './codec.js';
import { measureDecodeStarvation } from './decode-starvation.js';
import { measureImagePreprocess } from './image.js';
import { measureColdStart, measureLoadMemory, measureLoadAlternatives, type S3Access } from './cold.js';
import { modelInputs } from './inputs.js';
import { measureLarge } from './large.js';
import { measureRegisterMemory } from './register-memory.js';
import { measureOptimizedGraph } from './optimized-graph.js';
import { measureCapture } from './capture.js';
import { measureOrtWeb, measureWarm } from './warm.js';
import { measureRollout } from './rollout.js';
import { measureServingEngines } from './serving-engines.js';
import { measureStreaming } from './streaming.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_FILE = join(REPO_ROOT, 'bench', 'results.json');
/** Lambda memory of the benchmarked function: 2 vCPUs (1,769 MB each), as many cores as the reference machine. */
const MEMORY_MB = 3538;
/** About 100 MB of weights for the memory figure. */
const LARGE_WEIGHT_BYTES = 100 * 1024 * 1024;

/** A target of the issue: `max` (at most) or `min` (at least). */
interface Target {
  readonly key: string;
  readonly bound: 'max' | 'min';
  readonly limit: number;
  readonly label: string;
}

const TARGETS: readonly Target[] = [
  { key: 'warm_overhead_ratio', bound: 'max', limit: 1.05, label: '<= 1.05' },
  { key: 'warm_overhead_ms_small_json', bound: 'max', limit: 0.3, label: '<= 0.3 ms' },
  { key: 'rollout.split_overhead_ratio', bound: 'max', limit: 1.02, label: '<= 1.02' },
  { key: 'json_decode_over_parse', bound: 'max', limit: 1.2, label: '<= 1.2' },
  { key: 'binary_speedup_vs_json', bound: 'min', limit: 50, label: '>= 50' },
  { key: 'cold_start_ratio', bound: 'max', limit: 1.15, label: '<= 1.15' },
  { key: 'bundle_bytes', bound: 'max', limit: 1_000_000, label: '<= 1 MB' },
  { key: 'layer_unzipped_bytes.x86_64', bound: 'max', limit: 70_000_000, label: '<= 70 MB' },
  { key: 'layer_unzipped_bytes.arm64', bound: 'max', limit: 48_000_000, label: '<= 48 MB' },
  { key: 'load_peak_rss_over_file', bound: 'max', limit: 2.5, label: '<= 2.5' },
  { key: 'large.fetch_speedup', bound: 'min', limit: 4, label: '>= 4' },
  { key: 'large.load_peak_rss_over_file', bound: 'max', limit: 1.5, label: '<= 1.5' },
  { key: 'large.register_peak_rss_over_file', bound: 'max', limit: 2.5, label: '<= 2.5' },
  { key: 'large.swap_rss_growth_ratio', bound: 'max', limit: 1.2, label: '<= 1.2' },
  { key: 'register_memory.legacy_rewrite.peak_rss_over_bound', bound: 'max', limit: 1, label: '<= 1' },
  { key: 'register_memory.zip_embedded_weights.peak_rss_over_bound', bound: 'max', limit: 1, label: '<= 1' },
  { key: 'register_memory.large_attribute.peak_rss_over_bound', bound: 'max', limit: 1, label: '<= 1' },
  { key: 'image_preprocess_ms', bound: 'max', limit: 20, label: '<= 20 ms' },
  { key: 'capture.overhead_ratio', bound: 'max', limit: 1.05, label: '<= 1.05' },
  { key: 'batch.throughput_ratio', bound: 'min', limit: 0.8, label: '>= 0.8' },
];

/** Keys printed without a target: context and peers. */
const INFORMATIVE = [
  'batch.items_per_second',
  'batch.loop_items_per_second',
  'cold_start_ms',
  'floor_ms',
  'cold_init_ms',
  'cold_model_fetch_ms',
  'cold_session_create_ms',
  'cold_start_without_source_maps_ms',
  'handler_binary_p50_ms',
  'session_run_p50_ms',
  'json_parse_ms',
  'json_decode_ms',
  'json_decode_standard_ms',
  'binary_decode_ms',
  'image_json_bytes',
  'ocr_batch_json_bytes',
  'ocr_batch_binary_base64_bytes',
  'source_map_bytes',
  'large_model_bytes',
  'ort_init_rss_bytes',
  'path_load_peak_rss_over_file',
  'ort_format_load_peak_rss_over_file',
  'session_create_ms',
  'optimized_graph_bytes',
  'optimized_graph_create_ratio',
  'session_per_request_ratio',
  'ort_web_wasm_ratio',
  'engines.small_process_over_worker',
  'engines.image_process_over_worker',
  'engines.small_watchdog_over_main',
  'large.fetch_single_ms',
  'large.fetch_parallel_ms',
  'large.time_to_first_inference_ms.100MB',
  'large.time_to_first_inference_ms.400MB',
  'large.load_peak_rss_over_file_by_size.400MB',
  'large.register_peak_rss_over_file_by_size.1GiB',
  'register_memory.legacy_rewrite.peak_rss_over_model',
  'register_memory.zip_embedded_weights.peak_rss_over_model',
  'register_memory.large_attribute.peak_rss_over_model',
  'register_memory.large_attribute.peak_rss_growth_bytes',
  'image_preprocess_cpu_ms',
  'image_decode_ms',
  'image_resize_normalize_ms',
  'image_decode_cpu_ms',
  'image_resize_normalize_cpu_ms',
  'image_load_average',
  'image_jpeg_bytes',
  'image_tensor_binary_base64_bytes',
  'capture.mean_overhead_ratio',
  'capture.overhead_ratio_small_json',
  'capture.batch_write_ms',
  'capture.buffered_request_ms',
] as const;

function defaultModel(): string {
  const corpus = process.env['CONFORMANCE_DIR'] ?? resolve(REPO_ROOT, '../shared/conformance');
  return join(corpus, 'onnx-light', 'light_inception_v1', 'model.onnx');
}

function modelNameOf(path: string): string {
  const stem = basename(path) === 'model.onnx' ? basename(dirname(path)) : basename(path).replace(/\.onnx$/, '');
  const name =
    stem
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 100) || 'model';
  return isValidModelName(name) ? name : 'model';
}

function machine(): Record<string, unknown> {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memory_gb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

async function register(stack: LocalStack, name: string, file: string, bytes: Uint8Array): Promise<void> {
  await stack.runtime.store.put(`uploads/${name}/${file}`, bytes);
  await stack.settled();
  const outcome = stack.registrations.flatMap((r) => r.outcomes).find((o) => o.key === `uploads/${name}/${file}`);
  if (outcome?.kind !== 'registered' && outcome?.kind !== 'duplicate') {
    throw new Error(`registration of ${name} failed: ${JSON.stringify(outcome)}`);
  }
}

function lookup(results: Record<string, unknown>, key: string): number {
  let value: unknown = results;
  for (const part of key.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return typeof value === 'number' ? value : NaN;
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1000) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toFixed(3);
}

function step(what: string): void {
  process.stderr.write(`bench: ${what}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string' } } });
  const modelPath = resolve(values.model ?? defaultModel());
  let modelBytes: Uint8Array;
  try {
    modelBytes = new Uint8Array(readFileSync(modelPath));
  } catch {
    throw new Error(
      `cannot read the model ${modelPath}: pass --model <path.onnx>, or set CONFORMANCE_DIR to the conformance corpus`,
    );
  }
  const runs = Math.max(1, Number(values.runs ?? 5));
  const name = modelNameOf(modelPath);
  const architecture = process.arch === 'arm64' ? 'arm64' : 'x86_64';
  const workDir = mkdtempSync(join(os.tmpdir(), 'onnx-serverless-bench-'));
  const env = { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(MEMORY_MB) };
  const { sessionOptions } = readConfig(env);
  let stack: LocalStack | undefined;
  try {
    step('codec (1x3x224x224 FP32: V2 JSON, JSON.parse, binary)');
    const codec = await measureCodec();

    step('image preprocessing (1280x720 JPEG -> [1, 3, 640, 640] FP32 letterbox)');
    const image = await measureImagePreprocess();

    step('image decodes against the embedded S3 server (4 slow decodes, gated vs ungated)');
    const starvation = await measureDecodeStarvation();

    step(`registering ${name}, linear and a ${LARGE_WEIGHT_BYTES / 1024 ** 2} MB model in the embedded S3 server`);
    stack = await startLocal({ port: 0, s3Port: 0, dataDir: join(workDir, 's3'), silent: true, env });
    await register(stack, name, 'model.onnx', modelBytes);
    const linear = buildLinearExample().bytes;
    await register(stack, 'linear', 'linear.onnx', linear);
    const large = buildLargeModel(LARGE_WEIGHT_BYTES);
    await register(stack, 'large', 'large.onnx', large);
    const s3: S3Access = {
      endpoint: stack.s3.endpoint,
      bucket: stack.s3.bucket,
      region: stack.s3.region,
      credentials: stack.s3.credentials,
    };
    const metadata = (await stack.runtime.service.resolve(name)).metadata;
    const tensors = modelInputs(metadata.inputs);

    step('warm path (handler in process against session.run)');
    const warm = await measureWarm({
      store: stack.runtime.store,
      env,
      model: name,
      modelBytes,
      small: 'linear',
      smallBytes: linear,
    });

    step('data capture on the warm path (100% vs off, batches written to the embedded S3 server)');
    const capture = await measureCapture({ store: stack.runtime.store, env, model: name, small: 'linear' });
    step('guarded rollouts: a canary and a shadow on the warm path, against none');
    const rollout = await measureRollout(env);
    step('batch job through the local engine against a plain session.run loop (96 items, 32 per child)');
    const batch = await measureBatch({ stack, model: name, modelPath, sessionOptions });

    step('serving engines (main thread, worker thread, supervised process, deployed watchdog)');
    const engines = await measureServingEngines(modelBytes, sessionOptions);

    step('response streaming (a 20 MB binary answer through the local gateway, against session.run)');
    const streaming = await measureStreaming(workDir);

    step('saving the optimized graph: does it pay?');
    const optimizedGraph = await measureOptimizedGraph(modelBytes, sessionOptions, workDir);

    step('peer: onnxruntime-web (WebAssembly)');
    const web = await measureOrtWeb(modelPath, tensors, sessionOptions.intraOpNumThreads, workDir);

    step('synthesizing the app (esbuild bundle, onnxruntime layer)');
    const infer = synthesizeInfer(name, { architecture, memoryMb: MEMORY_MB, warmer: false }, workDir);

    step(`cold starts (${runs} fresh processes each: the staged function, and the floor)`);
    const cold = await measureColdStart({
      infer,
      model: name,
      modelPath,
      tensors,
      threads: sessionOptions.intraOpNumThreads,
      s3,
      workDir,
      runs,
    });

    step('memory while loading the large model');
    const memory = await measureLoadMemory({ infer, model: 'large', modelBytes: large.byteLength, s3, workDir });
    const largePath = join(workDir, 'large.onnx');
    writeFileSync(largePath, large);
    const linearPath = join(workDir, 'linear.onnx');
    writeFileSync(linearPath, linear);
    const alternatives = await measureLoadAlternatives(
      largePath,
      linearPath,
      sessionOptions.intraOpNumThreads,
      workDir,
    );

    const largeResults = await measureLarge({
      stack,
      infer,
      s3,
      workDir,
      large100: large,
      large100Name: 'large',
      step,
    });

    const registerMemory = await measureRegisterMemory(join(workDir, 'register-memory'), step);

    step('layer sizes');
    const layers = layerSizes(workDir);

    const results: Record<string, unknown> = {
      machine: machine(),
      model: {
        path: modelPath,
        name,
        bytes: modelBytes.byteLength,
        inputs: metadata.inputs,
        outputs: metadata.outputs,
      },
      settings: {
        lambda_memory_mb: MEMORY_MB,
        intra_op_threads: sessionOptions.intraOpNumThreads,
        graph_optimization_level: sessionOptions.graphOptimizationLevel,
        cold_runs: runs,
      },
      ...warm,
      rollout,
      ...codec,
      ...image,
      ...starvation,
      ...cold,
      ...optimizedGraph,
      bundle_bytes: infer.bundleBytes,
      source_map_bytes: infer.sourceMapBytes,
      layer_unzipped_bytes: layers,
      ...memory,
      ...alternatives,
      ...web,
      large: largeResults,
      register_memory: registerMemory,
      engines,
      capture,
      streaming,
      batch,
    };
    results.targets = Object.fromEntries(
      TARGETS.map((t) => {
        const value = lookup(results, t.key);
        return [t.key, { target: t.label, met: t.bound === 'max' ? value <= t.limit : value >= t.limit }];
      }),
    );
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);

    const rows = [
      ...TARGETS.map((t) => {
        const value = lookup(results, t.key);
        const met = t.bound === 'max' ? value <= t.limit : value >= t.limit;
        return [t.key, format(value), t.label, met ? 'met' : 'MISSED'];
      }),
      ...INFORMATIVE.map((key) => [key, format(lookup(results, key)), '', '']),
    ];
    const widths = [0, 1, 2, 3].map((i) =>
      Math.max(...rows.map((r) => (r[i] ?? '').length), ['key', 'value', 'target', ''][i]?.length ?? 0),
    );
    const line = (cells: readonly string[]) =>
      cells
        .map((c, i) => (i === 1 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    const m = results.machine as Record<string, unknown>;
    console.log(
      `\n${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB, Node ${m.node}; model ${name} (${modelBytes.byteLength} bytes)\n`,
    );
    console.log(line(['key', 'value', 'target', '']));
    for (const row of rows) console.log(line(row));
    console.log(`\nwritten to ${RESULTS_FILE}`);
  } finally {
    await stack?.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
