/**
 * Killed half-way and resumed: the local stack runs in a child process (`batch-child.ts`, `startLocal()` as
 * `npm start` runs it); a job of 1,000 inputs is started through the route, and the process is killed with SIGKILL
 * once some of its records are written. A new stack on the same data resumes the job (its record was left
 * `RUNNING`): it ends with exactly 1,000 records, none of those written before the kill rewritten.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import {
  BATCH_MODEL,
  buildInputs,
  expectedKeys,
  INPUT_PREFIX,
  isValidCase,
  listing as listObjects,
  OUTPUT_PREFIX,
  uploadInputs,
} from './fixture.js';

interface Child {
  readonly process: ChildProcess;
  readonly gatewayUrl: string;
  readonly client: S3Client;
  readonly store: S3BlobStore;
  readonly exited: Promise<NodeJS.Signals | null>;
}

const children: Child[] = [];
let dataDir: string | undefined;

/** Starts the stack in a child process on `dir` (slow batches, so that the kill lands half-way). */
async function startChild(dir: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'batch-child.ts'), dir], {
    env: { ...process.env, BATCH_ITEMS_PER_CHILD: '8', BATCH_MAX_CONCURRENCY: '1', MANIFEST_TTL_SECONDS: '0.001' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const first = await Promise.race([
    createInterface({ input: child.stdout as NodeJS.ReadableStream })
      [Symbol.asyncIterator]()
      .next()
      .then((r) => r.value as string | undefined),
    exited.then(() => undefined),
  ]);
  if (first === undefined) throw new Error(`the child stack did not start: ${stderr}`);
  const info = JSON.parse(first) as {
    gatewayUrl: string;
    endpoint: string;
    bucket: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  const client = createS3Client({ endpoint: info.endpoint, region: info.region, credentials: info.credentials });
  const started = {
    process: child,
    gatewayUrl: info.gatewayUrl,
    client,
    store: new S3BlobStore(client, info.bucket),
    exited,
  };
  children.push(started);
  return started;
}

const listing = (child: Child, prefix: string) => listObjects(child.client, 'models', prefix);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  for (const child of children.splice(0)) {
    child.client.destroy();
    child.process.kill('SIGKILL');
    await child.exited;
  }
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('a batch job killed half-way', () => {
  it('resumes after a restart and ends with exactly 1,000 records, none redone', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-batch-'));
    const first = await startChild(dataDir);
    await first.store.put(
      `uploads/${BATCH_MODEL.name}/identity.onnx.json`,
      new TextEncoder().encode(JSON.stringify(BATCH_MODEL.sample)),
    );
    await first.store.put(`uploads/${BATCH_MODEL.name}/identity.onnx`, BATCH_MODEL.bytes());
    while ((await first.store.get(`models/${BATCH_MODEL.name}/manifest.json`)) === undefined) await sleep(50);
    const inputs = await buildInputs();
    await uploadInputs(first.store, inputs);

    const started = await fetch(`${first.gatewayUrl}/v2/models/${BATCH_MODEL.name}/batch`, {
      method: 'POST',
      body: JSON.stringify({ input: `s3://models/${INPUT_PREFIX}`, output: `s3://models/${OUTPUT_PREFIX}` }),
    });
    expect(started.status).toBe(202);
    const { jobId } = (await started.json()) as { jobId: string };

    // Half-way (some records, far from all): kill -9, as a crash or a closed laptop would.
    while ((await listing(first, OUTPUT_PREFIX)).size < 150) await sleep(20);
    first.process.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    first.client.destroy();
    children.splice(children.indexOf(first), 1);

    const second = await startChild(dataDir);
    const beforeResume = await listing(second, OUTPUT_PREFIX);
    expect(beforeResume.size).toBeGreaterThanOrEqual(150);
    expect(beforeResume.size).toBeLessThan(1000);
    // The job's record was left RUNNING; the new stack resumes it on its own.
    let record: { state: string; counts?: Record<string, number> };
    for (;;) {
      const status = await fetch(`${second.gatewayUrl}/v2/models/${BATCH_MODEL.name}/batch/${jobId}`);
      expect(status.status).toBe(200);
      record = (await status.json()) as typeof record;
      if (record.state === 'SUCCEEDED') break;
      await sleep(100);
    }
    const valid = inputs.filter((i) => isValidCase(i.kind)).length;
    expect(record.counts).toEqual({ inputs: 1000, results: valid, failures: 1000 - valid, pending: 0 });

    const after = await listing(second, OUTPUT_PREFIX);
    expect(after.size).toBe(1000);
    for (const input of inputs) {
      const keys = expectedKeys(input);
      expect(after.has(isValidCase(input.kind) ? keys.result : keys.failure)).toBe(true);
    }
    // What was written before the kill was skipped, not redone: the same objects, the same etags.
    for (const [key, etag] of beforeResume) expect(after.get(key)).toBe(etag);
  }, 300_000);
});
