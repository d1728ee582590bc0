/**
 * The warm-run cost of loading with pre-packing off (`session.disable_prepacking`), the setting that lets an
 * external-data version load at about 1.3 × its size instead of 2.2 ×: the generated 100 MB model stored with its
 * weights in `model.onnx.data`, one session with pre-packing on and one with it off in this process, timed in
 * alternating blocks of runs so that background load hits both alike. Prints `on_ms <median> off_ms <median>`.
 *
 * Arguments: a scratch folder, the rows per request (default 32), the blocks (default 12) and runs per block (5).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from '../functions/core/onnx/proto.js';
import { withExternalData } from '../tools/onnx/external-data.js';
import { buildLargeModel } from '../tools/onnx/sample-models.js';
import { median } from './stats.js';

const [dir, rowsArg, blocksArg, runsArg] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: prepacking-child <dir> [rows] [blocks] [runs per block]');
const rows = Number(rowsArg ?? '32');
const blocks = Number(blocksArg ?? '12');
const runs = Number(runsArg ?? '5');

mkdirSync(dir, { recursive: true });
const { model, files } = withExternalData(onnx.ModelProto.decode(buildLargeModel(100 * 1024 * 1024)));
const file = join(dir, 'model.onnx');
writeFileSync(file, model);
for (const [location, bytes] of files) writeFileSync(join(dir, location), bytes);

const base: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 2,
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  logSeverityLevel: 3,
};
const on = await ort.InferenceSession.create(file, base);
const off = await ort.InferenceSession.create(file, { ...base, extra: { session: { disable_prepacking: '1' } } });
const x = new Float32Array(rows * 256).map((_, i) => Math.sin(i));
const feeds = { x: new ort.Tensor('float32', x, [rows, 256]) };
const time = async (session: ort.InferenceSession): Promise<number[]> => {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    await session.run(feeds);
    times.push(performance.now() - started);
  }
  return times;
};
// One warm-up block each: first runs allocate.
await time(on);
await time(off);
const onTimes: number[] = [];
const offTimes: number[] = [];
for (let block = 0; block < blocks; block++) {
  // Alternate which goes first, so neither always follows the other.
  if (block % 2 === 0) {
    onTimes.push(...(await time(on)));
    offTimes.push(...(await time(off)));
  } else {
    offTimes.push(...(await time(off)));
    onTimes.push(...(await time(on)));
  }
}
console.log(`on_ms ${median(onTimes)} off_ms ${median(offTimes)}`);
await on.release();
await off.release();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
