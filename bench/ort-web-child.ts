/**
 * One backend's `session.run` median on a model, in its own process: `web` (onnxruntime-web, WebAssembly) or
 * `node` (onnxruntime-node). Arguments: backend, model path, inputs file (from `warm.ts`), threads.
 * Prints `p50 <ms>`.
 */
import { readFileSync } from 'node:fs';
import type { InputJson } from './inputs.js';
import { median } from './stats.js';

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  float16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
} as const;

const [backend, modelPath, inputsFile, threadsArg] = process.argv.slice(2);
if (modelPath === undefined || inputsFile === undefined)
  throw new Error('usage: ort-web-child <web|node> <model> <inputs> <threads>');
const threads = Number(threadsArg ?? '1');
// Both packages follow onnxruntime-common's API; the web one is typed the same.
const ort = backend === 'web' ? await import('onnxruntime-web') : await import('onnxruntime-node');
if (backend === 'web') ort.env.wasm.numThreads = threads;
const session = await ort.InferenceSession.create(readFileSync(modelPath), {
  executionProviders: [backend === 'web' ? 'wasm' : 'cpu'],
  graphOptimizationLevel: 'all',
  ...(backend === 'web'
    ? {}
    : { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' as const }),
});
const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
for (const input of JSON.parse(readFileSync(inputsFile, 'utf8')) as InputJson[]) {
  if (typeof input.data !== 'string') {
    feeds[input.name] = new ort.Tensor('string', [...input.data], [...input.dims]);
  } else {
    const bytes = Buffer.from(input.data, 'base64');
    const Typed = TYPED[input.type as keyof typeof TYPED];
    const data = new Typed(new Uint8Array(bytes).buffer);
    feeds[input.name] = new ort.Tensor(input.type as 'float32', data as Float32Array, [...input.dims]);
  }
}
for (let i = 0; i < 3; i++) await session.run(feeds);
const samples: number[] = [];
for (let i = 0; i < 15; i++) {
  const started = performance.now();
  await session.run(feeds);
  samples.push(performance.now() - started);
}
console.log(`p50 ${median(samples)}`);
process.exit(0);
