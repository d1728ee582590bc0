/**
 * The warm path, in process: the `infer` handler called with API Gateway events, against onnxruntime's own
 * `session.run` on the same tensors with the same session options; and the peers: a session created per request
 * (the common sample pattern), and onnxruntime-web's WebAssembly backend (in a separate process, so that its
 * backend registration cannot touch onnxruntime-node's).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printedNumber, runTsxChild } from './child.js';
import type { APIGatewayProxyResult } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions, toOrtTensor } from '../functions/adapters/onnxruntime-session.js';
import type { BlobStore } from '../functions/core/blob-store.js';
import { decodeInferenceResponse } from '../functions/core/codec/index.js';
import type { Tensor } from '../functions/core/types.js';
import { readConfig } from '../functions/wiring/config.js';
import { createInferHandler, type InferHandler } from '../functions/transport/http-handlers.js';
import { createObservability } from '../functions/wiring/observability.js';
import { createRuntime, type Runtime } from '../functions/wiring/runtime.js';
import { binaryRequest, inferEvent, jsonRequest, modelInputs, writeInputsFile } from './inputs.js';
import { medians, timeAlternating } from './stats.js';

/** onnxruntime feeds for `tensors` (what a program calling onnxruntime directly would pass). */
export function ortFeeds(tensors: readonly Tensor[]): Record<string, ort.Tensor> {
  return Object.fromEntries(tensors.map((t) => [t.name, toOrtTensor(t)]));
}

/**
 * The deployed `infer` function of `model`, built as `infer.ts` builds it (configuration from the environment, the
 * observability of a Lambda: metrics published on every invocation), over `store`.
 */
export function deployedHandler(
  store: BlobStore,
  model: string,
  env: Readonly<Record<string, string>>,
): { runtime: Runtime; handler: InferHandler } {
  const config = readConfig({
    ...env,
    MODEL_NAME: model,
    MODEL_BUCKET: 'bench',
    AWS_LAMBDA_FUNCTION_NAME: `infer-${model}`,
  });
  const observability = createObservability(model, true);
  const runtime = createRuntime(config, { store, telemetry: observability.telemetry });
  return { runtime, handler: createInferHandler(runtime, observability, { model }) };
}

/** Runs `work` with stdout discarded: the handlers' EMF metrics and logs would flood the bench's output. */
export async function quietly<T>(work: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await work();
  } finally {
    process.stdout.write = write;
  }
}

/** Calls the handler once and checks that it answered 200 with every output. */
export async function answerOnce(
  handler: InferHandler,
  event: ReturnType<typeof inferEvent>,
  outputs: number,
): Promise<void> {
  const result = (await handler(event)) as APIGatewayProxyResult;
  if (result.statusCode !== 200)
    throw new Error(`the handler answered ${result.statusCode}: ${result.body.slice(0, 300)}`);
  const body = Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8');
  const decoded = decodeInferenceResponse(body, result.headers as Record<string, string>);
  if (decoded.outputs.length !== outputs)
    throw new Error(`the handler answered ${decoded.outputs.length} outputs, expected ${outputs}`);
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
 * `model` and `small` are registered versions (their names) in `store`; `modelBytes` and `smallBytes` are the same
 * files, for the direct onnxruntime sessions. `env` is the function's environment (memory size and limits).
 */
export async function measureWarm(options: {
  readonly store: BlobStore;
  readonly env: Readonly<Record<string, string>>;
  readonly model: string;
  readonly modelBytes: Uint8Array;
  readonly small: string;
  readonly smallBytes: Uint8Array;
}): Promise<WarmResults> {
  return quietly(async () => {
    // The image model, binary request and response.
    const image = deployedHandler(options.store, options.model, options.env);
    const ortOptions = ortSessionOptions(image.runtime.config.sessionOptions);
    const target = await image.runtime.service.resolve(options.model);
    const tensors = modelInputs(target.metadata.inputs);
    const event = inferEvent(options.model, binaryRequest(tensors));
    await answerOnce(image.handler, event, target.metadata.outputs.length);
    const session = await ort.InferenceSession.create(options.modelBytes, ortOptions);
    const feeds = ortFeeds(tensors);
    // The sample pattern (a new session for every request) runs in the same rotation. Blocks of several calls:
    // after a run, onnxruntime's pool threads spin for a moment, which slows the next call of another session; the
    // medians of blocks skip that.
    const imageTimes = medians(
      await timeAlternating(
        {
          handler: () => image.handler(event),
          run: () => session.run(feeds),
          perRequest: async () => {
            const fresh = await ort.InferenceSession.create(options.modelBytes, ortOptions);
            await fresh.run(feeds);
            await fresh.release();
          },
        },
        { warmup: 3, blocks: 6, perBlock: 6 },
      ),
    );

    // The tiny model, V2 JSON request and response.
    const small = deployedHandler(options.store, options.small, options.env);
    const smallTarget = await small.runtime.service.resolve(options.small);
    const smallTensors = modelInputs(smallTarget.metadata.inputs);
    const smallEvent = inferEvent(options.small, jsonRequest(smallTensors));
    await answerOnce(small.handler, smallEvent, smallTarget.metadata.outputs.length);
    const smallSession = await ort.InferenceSession.create(options.smallBytes, ortOptions);
    const smallFeeds = ortFeeds(smallTensors);
    const tiny = medians(
      await timeAlternating(
        { handler: () => small.handler(smallEvent), run: () => smallSession.run(smallFeeds) },
        { warmup: 300, blocks: 40, perBlock: 50 },
      ),
    );

    await session.release();
    await smallSession.release();
    return {
      handler_binary_p50_ms: imageTimes.handler,
      session_run_p50_ms: imageTimes.run,
      warm_overhead_ratio: imageTimes.handler / imageTimes.run,
      handler_small_json_p50_ms: tiny.handler,
      session_run_small_p50_ms: tiny.run,
      warm_overhead_ms_small_json: tiny.handler - tiny.run,
      session_per_request_p50_ms: imageTimes.perRequest,
      session_per_request_ratio: imageTimes.perRequest / imageTimes.handler,
    };
  });
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
export async function measureOrtWeb(
  modelPath: string,
  tensors: readonly Tensor[],
  threads: number,
  workDir: string,
): Promise<OrtWebResults> {
  const inputsFile = join(workDir, 'ort-web-inputs.json');
  writeInputsFile(inputsFile, tensors);
  const run = async (backend: 'web' | 'node') => {
    const label = `ort ${backend} run`;
    return printedNumber(
      await runTsxChild(CHILD, [backend, modelPath, inputsFile, String(threads)], label),
      'p50',
      label,
    );
  };
  const web = await run('web');
  const node = await run('node');
  return { ort_web_wasm_run_p50_ms: web, ort_node_run_p50_ms: node, ort_web_wasm_ratio: web / node };
}
