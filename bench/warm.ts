/**
 * The warm path, in process: the `infer` handler called with API Gateway events, against onnxruntime's own
 * `session.run` on the same tensors with the same session options; and the peers: a session created per request
 * (the common sample pattern), and onnxruntime-web's WebAssembly backend (in a separate process, so that its
 * backend registration cannot touch onnxruntime-node's).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyResult } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions } from '../functions/adapters/onnxruntime-session.js';
import { decodeInferenceResponse } from '../functions/core/codec/index.js';
import type { SessionOptions } from '../functions/core/session.js';
import type { Tensor } from '../functions/core/types.js';
import { createInferHandler, type InferHandler } from '../functions/handlers/http-handlers.js';
import { createObservability } from '../functions/handlers/observability.js';
import type { Runtime } from '../functions/handlers/runtime.js';
import { ORT_TYPE, binaryRequest, inferEvent, jsonRequest, modelInputs, writeInputsFile } from './inputs.js';
import { median, medians, timeAlternating } from './stats.js';

/** onnxruntime feeds for `tensors` (what a program calling onnxruntime directly would pass). */
export function ortFeeds(tensors: readonly Tensor[]): Record<string, ort.Tensor> {
  return Object.fromEntries(
    tensors.map((t) => [t.name, new ort.Tensor(ORT_TYPE[t.datatype], t.data as ort.Tensor.DataType, [...t.shape])]),
  );
}

function handlerFor(runtime: Runtime, model: string): InferHandler {
  const observability = createObservability('bench', false);
  observability.logger.setLogLevel('SILENT');
  return createInferHandler(runtime, observability, { model });
}

/** Calls the handler once and checks that it answered 200 with every output. */
async function answerOnce(handler: InferHandler, event: ReturnType<typeof inferEvent>, outputs: number): Promise<void> {
  const result = (await handler(event)) as APIGatewayProxyResult;
  if (result.statusCode !== 200) throw new Error(`the handler answered ${result.statusCode}: ${result.body.slice(0, 300)}`);
  const body = Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8');
  const decoded = decodeInferenceResponse(body, result.headers as Record<string, string>);
  if (decoded.outputs.length !== outputs) throw new Error(`the handler answered ${decoded.outputs.length} outputs, expected ${outputs}`);
}

/** What {@link measureWarm} reports. */
export interface WarmResults {
  readonly handler_binary_p50_ms: number;
  readonly session_run_p50_ms: number;
  readonly warm_overhead_ratio: number;
  readonly handler_small_json_p50_ms: number;
  readonly session_run_small_p50_ms: number;
  readonly warm_overhead_ms_small_json: number;
  readonly session_per_request_p50_ms: number;
  readonly session_per_request_ratio: number;
}

/**
 * `model` and `small` are registered versions (their names) served by `runtime`; `modelBytes` and `smallBytes`
 * are the same files, for the direct onnxruntime sessions.
 */
export async function measureWarm(options: {
  readonly runtime: Runtime;
  readonly model: string;
  readonly modelBytes: Uint8Array;
  readonly small: string;
  readonly smallBytes: Uint8Array;
  readonly sessionOptions: SessionOptions;
}): Promise<WarmResults> {
  const { runtime, sessionOptions } = options;
  const ortOptions = ortSessionOptions(sessionOptions);

  // The image model, binary request and response.
  const target = await runtime.service.resolve(options.model);
  const tensors = modelInputs(target.metadata.inputs);
  const handler = handlerFor(runtime, options.model);
  const event = inferEvent(options.model, binaryRequest(tensors));
  await answerOnce(handler, event, target.metadata.outputs.length);
  const session = await ort.InferenceSession.create(options.modelBytes, ortOptions);
  const feeds = ortFeeds(tensors);
  const image = medians(
    await timeAlternating({ handler: () => handler(event), run: () => session.run(feeds) }, { warmup: 5, blocks: 10, perBlock: 4 }),
  );

  // The tiny model, V2 JSON request and response.
  const small = await runtime.service.resolve(options.small);
  const smallTensors = modelInputs(small.metadata.inputs);
  const smallHandler = handlerFor(runtime, options.small);
  const smallEvent = inferEvent(options.small, jsonRequest(smallTensors));
  await answerOnce(smallHandler, smallEvent, small.metadata.outputs.length);
  const smallSession = await ort.InferenceSession.create(options.smallBytes, ortOptions);
  const smallFeeds = ortFeeds(smallTensors);
  const tiny = medians(
    await timeAlternating(
      { handler: () => smallHandler(smallEvent), run: () => smallSession.run(smallFeeds) },
      { warmup: 300, blocks: 20, perBlock: 100 },
    ),
  );

  // The sample pattern: a new session for every request.
  const perRequest: number[] = [];
  for (let i = 0; i < 7; i++) {
    const started = performance.now();
    const fresh = await ort.InferenceSession.create(options.modelBytes, ortOptions);
    await fresh.run(feeds);
    perRequest.push(performance.now() - started);
    await fresh.release();
  }
  await session.release();
  await smallSession.release();
  const perRequestMs = median(perRequest);
  return {
    handler_binary_p50_ms: image.handler,
    session_run_p50_ms: image.run,
    warm_overhead_ratio: image.handler / image.run,
    handler_small_json_p50_ms: tiny.handler,
    session_run_small_p50_ms: tiny.run,
    warm_overhead_ms_small_json: tiny.handler - tiny.run,
    session_per_request_p50_ms: perRequestMs,
    session_per_request_ratio: perRequestMs / image.handler,
  };
}

/** What {@link measureOrtWeb} reports. */
export interface OrtWebResults {
  readonly ort_web_wasm_run_p50_ms: number;
  readonly ort_node_run_p50_ms: number;
  readonly ort_web_wasm_ratio: number;
}

const CHILD = fileURLToPath(new URL('./ort-web-child.ts', import.meta.url));

/**
 * onnxruntime-web (WebAssembly, `threads` threads) against onnxruntime-node on the same model file and inputs,
 * each in its own fresh process, timed by the same loop.
 */
export async function measureOrtWeb(modelPath: string, tensors: readonly Tensor[], threads: number, workDir: string): Promise<OrtWebResults> {
  const inputsFile = join(workDir, 'ort-web-inputs.json');
  writeInputsFile(inputsFile, tensors);
  const run = (backend: 'web' | 'node') =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, backend, modelPath, inputsFile, String(threads)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
      child.on('error', reject);
      child.on('close', (code) => {
        const p50 = Number(/p50 (\S+)/.exec(out)?.[1]);
        if (code !== 0 || !Number.isFinite(p50)) reject(new Error(`ort ${backend} run failed (${code}): ${err.trim()}`));
        else resolve(p50);
      });
    });
  const web = await run('web');
  const node = await run('node');
  return { ort_web_wasm_run_p50_ms: web, ort_node_run_p50_ms: node, ort_web_wasm_ratio: web / node };
}
