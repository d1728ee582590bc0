/**
 * Cold starts, each in a fresh Node process timed from its spawn to its first answer:
 * - ours: the staged infer bundle with the staged layer, as Lambda runs it, answering a binary inference request
 *   for a model it first fetches from the embedded S3 server (manifest, metadata, model file) and verifies;
 * - the floor: a script that imports onnxruntime-node from the same layer, creates a session from the same model
 *   file on local disk and runs it once on the same inputs.
 * And the memory of loading a large model the same way (a warmer event), against its file size.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printedNumber, runTsxChild } from './child.js';
import * as ort from 'onnxruntime-node';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { runInLambdaProcess, type LambdaProcessResult } from '../tools/lambda-process.js';
import type { Tensor } from '../functions/core/types.js';
import type { InferArtifact } from './artifacts.js';
import { binaryRequest, inferEvent, writeInputsFile } from './inputs.js';
import { median } from './stats.js';

/** Where the staged function finds the model repository. */
export interface S3Access {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

// The floor: what a program that only wants one answer from onnxruntime does.
const FLOOR = `import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
const TYPED = { float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, float16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array };
export const handler = async () => {
  const session = await ort.InferenceSession.create(readFileSync(process.env.FLOOR_MODEL),
    { intraOpNumThreads: Number(process.env.FLOOR_THREADS) });
  const feeds = {};
  for (const input of JSON.parse(readFileSync(process.env.FLOOR_INPUTS, 'utf8'))) {
    feeds[input.name] = typeof input.data === 'string'
      ? new ort.Tensor(input.type, new TYPED[input.type](new Uint8Array(Buffer.from(input.data, 'base64')).buffer), input.dims)
      : new ort.Tensor('string', input.data, input.dims);
  }
  const outputs = await session.run(feeds);
  return Object.keys(outputs);
};
`;

/** The staged function's environment, as the template declares it, pointed at the local S3 server. */
export function functionEnvironment(
  infer: InferArtifact,
  s3: S3Access,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const declared = Object.fromEntries(
    Object.entries(infer.environment).map(([name, value]) => [name, typeof value === 'string' ? value : s3.bucket]),
  );
  return {
    ...declared,
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    S3_ENDPOINT: s3.endpoint,
    // No X-Ray daemon here: Powertools' tracer is told so instead of emitting to a closed UDP port.
    POWERTOOLS_TRACE_ENABLED: 'false',
    ...overrides,
  };
}

function firstAnswer(run: LambdaProcessResult, what: string): number {
  const first = run.responseMs[0];
  const result = run.results[0] as APIGatewayProxyResult | undefined;
  if (first === undefined || (result !== undefined && 'statusCode' in result && result.statusCode !== 200)) {
    throw new Error(`${what} did not answer 200: ${JSON.stringify(result).slice(0, 300)}`);
  }
  return first;
}

/** What {@link measureColdStart} reports. */
export interface ColdResults {
  readonly cold_start_ms: number;
  readonly floor_ms: number;
  readonly cold_start_ratio: number;
  /** Ours: the end of the init phase (bundle and onnxruntime imported, clients built). */
  readonly cold_init_ms: number;
  /** Ours, from the function's own "model loaded" log: the model file's download, and the session's creation. */
  readonly cold_model_fetch_ms: number;
  readonly cold_session_create_ms: number;
  /** Ours with `NODE_OPTIONS` cleared: what `--enable-source-maps` costs a cold start. */
  readonly cold_start_without_source_maps_ms: number;
  readonly cold_runs: number;
}

/** Medians of fields of the function's "model loaded" log lines. */
function loadLog(stdout: string): { fetchMs: number; createMs: number } | undefined {
  for (const line of stdout.split('\n')) {
    if (!line.includes('"model loaded"')) continue;
    try {
      const entry = JSON.parse(line) as { fetchMs?: unknown; createMs?: unknown };
      if (typeof entry.fetchMs === 'number' && typeof entry.createMs === 'number')
        return { fetchMs: entry.fetchMs, createMs: entry.createMs };
    } catch {
      // Not a JSON log line.
    }
  }
  return undefined;
}

/**
 * Runs `runs` cold starts of the staged infer function and of the floor script, alternating, in fresh processes,
 * and reports their medians and ratio (a ratio, not an absolute time, is what the README compares).
 */
export async function measureColdStart(options: {
  readonly infer: InferArtifact;
  readonly model: string;
  readonly modelPath: string;
  readonly tensors: readonly Tensor[];
  readonly threads: number;
  readonly s3: S3Access;
  readonly workDir: string;
  readonly runs: number;
}): Promise<ColdResults> {
  const { infer, workDir } = options;
  const layerDir = infer.layerDirs[0];
  const floorDir = join(workDir, 'floor-bundle');
  mkdirSync(floorDir, { recursive: true });
  writeFileSync(join(floorDir, 'index.mjs'), FLOOR);
  const inputsFile = join(workDir, 'floor-inputs.json');
  writeInputsFile(inputsFile, options.tensors);
  const event = inferEvent(options.model, binaryRequest(options.tensors));
  const ours: number[] = [];
  const inits: number[] = [];
  const fetches: number[] = [];
  const creates: number[] = [];
  const withoutMaps: number[] = [];
  const floor: number[] = [];
  const runOurs = (run: number, tag: string, overrides: Record<string, string>) =>
    runInLambdaProcess({
      bundleDir: infer.bundleDir,
      layerDir,
      taskDir: join(workDir, `${tag}-${run}`),
      functionName: infer.logicalId,
      memoryMb: infer.memoryMb,
      environment: functionEnvironment(infer, options.s3, overrides),
      events: [event],
      captureStdout: true,
    });
  // The three kinds take turns, so that load from the rest of the machine falls on all of them alike.
  for (let run = 0; run < options.runs; run++) {
    const floorRun = await runInLambdaProcess({
      bundleDir: floorDir,
      layerDir,
      taskDir: join(workDir, `floor-${run}`),
      functionName: 'floor',
      memoryMb: infer.memoryMb,
      environment: { FLOOR_MODEL: options.modelPath, FLOOR_INPUTS: inputsFile, FLOOR_THREADS: String(options.threads) },
      events: [{}],
    });
    floor.push(firstAnswer(floorRun, 'the floor'));
    const ourRun = await runOurs(run, 'cold', {});
    ours.push(firstAnswer(ourRun, 'the infer function'));
    inits.push(ourRun.initMs);
    const logged = loadLog(ourRun.stdout);
    if (logged !== undefined) {
      fetches.push(logged.fetchMs);
      creates.push(logged.createMs);
    }
    withoutMaps.push(
      firstAnswer(await runOurs(run, 'nomaps', { NODE_OPTIONS: '' }), 'the infer function without source maps'),
    );
  }
  const coldMs = median(ours);
  const floorMs = median(floor);
  return {
    cold_start_ms: coldMs,
    floor_ms: floorMs,
    cold_start_ratio: coldMs / floorMs,
    cold_init_ms: median(inits),
    cold_model_fetch_ms: median(fetches),
    cold_session_create_ms: median(creates),
    cold_start_without_source_maps_ms: median(withoutMaps),
    cold_runs: options.runs,
  };
}

/** What {@link measureLoadMemory} reports. */
export interface MemoryResults {
  readonly large_model_bytes: number;
  readonly load_peak_rss_growth_bytes: number;
  readonly load_peak_rss_over_file: number;
}

/**
 * Peak RSS growth of the staged infer function while a warmer event loads `model` (fetch into one buffer,
 * sha256, session creation), from the end of its init phase, over the model's file size.
 */
export async function measureLoadMemory(options: {
  readonly infer: InferArtifact;
  readonly model: string;
  readonly modelBytes: number;
  readonly s3: S3Access;
  readonly workDir: string;
}): Promise<MemoryResults> {
  const run = await runInLambdaProcess({
    bundleDir: options.infer.bundleDir,
    layerDir: options.infer.layerDirs[0],
    taskDir: join(options.workDir, 'memory'),
    functionName: options.infer.logicalId,
    memoryMb: options.infer.memoryMb,
    environment: functionEnvironment(options.infer, options.s3, { MODEL_NAME: options.model }),
    events: [{ warmer: true }],
  });
  const warmed = run.results[0] as { warmed?: boolean; loaded?: boolean } | undefined;
  if (warmed?.warmed !== true || warmed.loaded !== true)
    throw new Error(`the warmer did not load ${options.model}: ${JSON.stringify(warmed)}`);
  const growth = (run.peakRssBytes[0] ?? NaN) - run.initRssBytes;
  return {
    large_model_bytes: options.modelBytes,
    load_peak_rss_growth_bytes: growth,
    load_peak_rss_over_file: growth / options.modelBytes,
  };
}

/** What {@link measureLoadAlternatives} reports. */
export interface LoadAlternativesResults {
  /** onnxruntime reading the `.onnx` file itself. */
  readonly path_load_peak_rss_over_file: number;
  readonly ort_format_bytes: number;
  /** The ORT-format file in one buffer, weights used in place. */
  readonly ort_format_load_peak_rss_over_file: number;
  /** onnxruntime's one-time setup, which every first load includes (measured with a tiny model). */
  readonly ort_init_rss_bytes: number;
}

const LOAD_MEMORY_CHILD = fileURLToPath(new URL('./load-memory-child.ts', import.meta.url));

async function loadMemoryChild(
  mode: 'path' | 'ort' | 'init',
  file: string,
  threads: number,
): Promise<{ growth: number; size: number }> {
  const label = `${mode} load`;
  const out = await runTsxChild(LOAD_MEMORY_CHILD, [mode, file, String(threads)], label);
  return { growth: printedNumber(out, 'growth', label), size: printedNumber(out, 'size', label) };
}

/**
 * The same measure for two other ways of loading the model, each in a fresh process: onnxruntime reading the file
 * from disk, and the model converted to onnxruntime's ORT format (portable `extended` optimizations) loaded from
 * one buffer with its weights used in place (what storing that form at registration would give).
 */
export async function measureLoadAlternatives(
  modelPath: string,
  tinyModelPath: string,
  threads: number,
  workDir: string,
): Promise<LoadAlternativesResults> {
  const init = await loadMemoryChild('init', tinyModelPath, threads);
  const fromPath = await loadMemoryChild('path', modelPath, threads);
  const ortFile = join(workDir, 'large.ort');
  const converter = await ort.InferenceSession.create(modelPath, {
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: ortFile,
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
    extra: { session: { save_model_format: 'ORT' } },
  });
  await converter.release();
  const ortFormat = await loadMemoryChild('ort', ortFile, threads);
  return {
    path_load_peak_rss_over_file: fromPath.growth / fromPath.size,
    ort_format_bytes: ortFormat.size,
    ort_format_load_peak_rss_over_file: ortFormat.growth / ortFormat.size,
    ort_init_rss_bytes: init.growth,
  };
}
