/**
 * Registration memory in a process of its own: the register handler exactly as deployed (`createRuntime` and
 * `createRegisterHandler` from the environment, so onnxruntime runs in registration's isolated child), over a
 * folder repository (`MODEL_DIR=<dir>`), handles the S3 event of `<key>`. A small model is registered first, so
 * that the one-time costs (modules, schemas, the first child process) are paid before the baseline, as in a warm
 * register function.
 *
 * Prints `growth <bytes>` (peak resident memory of this process, the handler's, over the baseline: onnxruntime's
 * child is not counted, it has its own cap), `heap <bytes>` (V8 heap used after the registration, before any
 * collection), and `outcome <kind>`.
 *
 * Usage: `node --import tsx bench/register-memory-child.ts <dir> <key>`
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRegisterHandler } from '../functions/transport/register-handler.js';
import { readConfig } from '../functions/wiring/config.js';
import { createObservability } from '../functions/wiring/observability.js';
import { createRuntime } from '../functions/wiring/runtime.js';
import { s3Event } from '../tools/lambda-events.js';
import { buildLinearExample } from '../tools/onnx/examples.js';

const [dir, key] = process.argv.slice(2);
if (dir === undefined || key === undefined) throw new Error('usage: register-memory-child <dir> <key>');

function peakRss(): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (kb === undefined) throw new Error('this measure needs Linux /proc/self/status');
  return Number(kb) * 1024;
}

const runtime = createRuntime(readConfig({ ...process.env, MODEL_DIR: dir }));
const observability = createObservability('register-memory', false);
observability.logger.setLogLevel('SILENT');
const handler = createRegisterHandler(runtime, observability);

await runtime.store.put('uploads/warmup/linear.onnx', buildLinearExample().bytes);
await handler(s3Event(['uploads/warmup/linear.onnx']));

writeFileSync('/proc/self/clear_refs', '5');
const before = process.memoryUsage().rss;
const { outcomes } = await handler(s3Event([key]));
const growth = peakRss() - before;
const outcome = outcomes.find((o) => o.key === key);
console.log(`growth ${growth} heap ${process.memoryUsage().heapUsed} outcome ${outcome?.kind ?? 'none'}`);
if (outcome?.kind === 'rejected') console.log(`reason ${outcome.reason.replace(/\s+/g, ' ').slice(0, 300)}`);
process.exit(0);
