/**
 * A one-shot process for test/e2e/clean-exit.test.ts: starts `npm start`'s stack with the example catalog, answers
 * one inference (so the onnxruntime worker thread and the registration children have run), closes the stack and
 * then does nothing. A process that still has live handles does not end; it reports them on stderr instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocal } from '../../functions/local/local-runtime.js';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'clean-exit-'));
const stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir: 'models', silent: true });
await stack.settled();
const answer = await fetch(`${stack.gatewayUrl}/v2/models/linear/infer`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
});
console.log(`infer ${answer.status}`);
await stack.close();
await rm(dataDir, { recursive: true, force: true });
console.log('closed');
setTimeout(() => console.error(`still alive: ${process.getActiveResourcesInfo().join(', ')}`), 3_000).unref();
