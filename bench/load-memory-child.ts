/**
 * The alternatives the memory figure is compared with, each in a fresh process. Arguments: mode, file, threads.
 * - `path`: onnxruntime reads the `.onnx` file itself (no copy of it in JavaScript memory);
 * - `ort`: the model saved in onnxruntime's ORT format (as registration could store it), read into one buffer and
 *   loaded with `session.use_ort_model_bytes_directly` and `session.use_ort_model_bytes_for_initializers`, so that
 *   onnxruntime neither parses a protobuf copy nor copies the weights.
 * - `init`: a tiny model, for onnxruntime's one-time setup (environment, thread pools), which every first load pays.
 * Prints `growth <bytes> size <bytes>`: peak RSS growth from before the file is read to after one run.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [mode, file, threads] = process.argv.slice(2);
if ((mode !== 'path' && mode !== 'ort' && mode !== 'init') || file === undefined) {
  throw new Error('usage: load-memory-child <path|ort|init> <file> <threads>');
}
const options: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: Number(threads ?? '1'),
  executionProviders: ['cpu'],
  logSeverityLevel: 3,
};
/** Peak RSS since the last reset (Linux `VmHWM`; a spawned child's maxRSS would include its parent's). */
function peakRss(): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (kb === undefined) throw new Error('this measure needs Linux /proc/self/status');
  return Number(kb) * 1024;
}

// As for the function: the baseline has onnxruntime imported, and no session yet.
writeFileSync('/proc/self/clear_refs', '5');
const before = process.memoryUsage().rss;
let session: ort.InferenceSession;
let bytes: Uint8Array | undefined;
if (mode === 'path' || mode === 'init') {
  session = await ort.InferenceSession.create(file, options);
} else {
  bytes = readFileSync(file);
  session = await ort.InferenceSession.create(bytes, {
    ...options,
    extra: { session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } },
  });
}
const input = session.inputMetadata[0];
if (input?.isTensor === true) {
  const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  await session.run({
    [input.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims),
  });
}
const peak = peakRss();
// `bytes` backs the session's weights in `ort` mode: it is used here, after the run, so it lives until then.
console.log(`growth ${peak - before} size ${bytes?.byteLength ?? statSync(file).size}`);
await session.release();
process.exit(0);
