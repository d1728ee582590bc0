/**
 * kill -9 in the middle of a registration, then a restart: the local stack runs in a child process
 * (`crash-child.ts`) whose register handler kills it with SIGKILL right after one step of adding a version
 * (`FAULT_KILL_AFTER_REGISTRATION_STEP`: after the number's claim, after the version file, after the manifest). The
 * stack is then started again on the same data folder: by the end of the start, the upload has its one outcome
 * (registered, under the number it had claimed), no `model.onnx` is left outside the manifest, no number is skipped,
 * and the next upload gets the next number. Nothing waits for a claim to go stale.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { REGISTRATION_STEPS, type RegistrationStep } from '../../functions/core/model-repository.js';
import { describeDenial } from '../../functions/local/s3-access.js';
import { readConfig } from '../../functions/wiring/config.js';
import { startS3Fixture } from '../s3/fixture.js';
import { expectOneOutcomeEach, outcomeState } from './outcome-checks.js';
import { type FlowStack, linearModel, startFlowStack } from './fixture.js';

/**
 * Starts the stack in a child process with the kill switch at `step`, uploads `body` under `key` through its S3
 * server, and resolves with the signal that ended the child once register has killed it.
 */
async function uploadUntilKilled(dataDir: string, step: RegistrationStep, key: string, body: Uint8Array) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), dataDir], {
    env: { ...process.env, FAULT_KILL_AFTER_REGISTRATION_STEP: step },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [line] = await Promise.race([
    createInterface({ input: child.stdout })
      [Symbol.asyncIterator]()
      .next()
      .then((r) => [r.value as string | undefined]),
    exited.then(() => [undefined]),
  ]);
  if (line === undefined) throw new Error(`the child stack did not start: ${stderr}`);
  const s3 = JSON.parse(line) as {
    endpoint: string;
    bucket: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  const client = createS3Client({ endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials });
  try {
    await new S3BlobStore(client, s3.bucket).put(key, body);
    return await exited;
  } finally {
    client.destroy();
    child.kill('SIGKILL'); // only if the fault never fired: never leave the child behind
  }
}

const folders: string[] = [];
let flow: FlowStack | undefined;
afterEach(async () => {
  await flow?.close();
  flow = undefined;
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

describe('kill -9 during a registration, then a restart', () => {
  it.each(REGISTRATION_STEPS)(
    'after the step "%s": the start records the outcome, orphan- and gap-free',
    async (step) => {
      // Prepare: version 1 exists; the stack is stopped.
      const dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-crash-'));
      folders.push(dataDir);
      flow = await startFlowStack({}, { dataDir });
      await flow.uploadAndWait('crash', 'v1.onnx', linearModel(1));
      await flow.close();
      flow = undefined;

      // Act: the upload of version 2 kills the stack at the step; then the stack starts again on the same data.
      const signal = await uploadUntilKilled(dataDir, step, 'uploads/crash/v2.onnx', linearModel(2));
      const left = await stateAtRest(dataDir, 'crash');
      flow = await startFlowStack({}, { dataDir });
      await flow.stack.settled(); // the start's reconciliation
      const reconciled = flow.stack.registrations.flatMap((r) => r.reconciled ?? []);
      const state = await expectOneOutcomeEach(flow.store, 'crash');
      const next = await flow.uploadAndWait('crash', 'v3.onnx', linearModel(3));

      // Assess: killed at that step (the state it left says which), finished by the start.
      expect(signal).toBe('SIGKILL');
      expect(left.outcomes.has('uploads/crash/v2.onnx')).toBe(false);
      expect(left.versions).toEqual(step === 'manifest' ? ['1', '2'] : ['1']);
      expect(left.modelFiles).toEqual(step === 'claimed' ? ['1'] : ['1', '2']);
      expect(left.openClaims).toEqual(step === 'manifest' ? [] : ['2']);
      expect(reconciled).toEqual([
        expect.objectContaining({ kind: 'registered', key: 'uploads/crash/v2.onnx', version: '2' }),
      ]);
      expect(state.outcomes.get('uploads/crash/v2.onnx')).toMatchObject({ outcome: 'registered', version: '2' });
      expect(next).toMatchObject({ kind: 'registered', version: '3' });
      await expectOneOutcomeEach(flow.store, 'crash');
      const answer = await flow.infer('crash', [[1, 1, 1, 1]], '2');
      expect(answer.status).toBe(200);
      expect(flow.denials.map(describeDenial)).toEqual([]);
    },
    120_000,
  );
});

describe('the kill switch', () => {
  it('names the steps when set to anything else, so that a typo never runs without the fault', () => {
    expect(() => readConfig({ FAULT_KILL_AFTER_REGISTRATION_STEP: 'after-claim' })).toThrow(
      'FAULT_KILL_AFTER_REGISTRATION_STEP must be one of claimed, version-file, manifest',
    );
    expect(readConfig({ FAULT_KILL_AFTER_REGISTRATION_STEP: 'manifest' }).faultKillAfterStep).toBe('manifest');
    expect(readConfig({}).faultKillAfterStep).toBeUndefined();
  });
});

/** The state of `model` in `dataDir`, read through an S3 server alone (no register handler, no reconciliation). */
async function stateAtRest(dataDir: string, model: string) {
  const s3 = await startS3Fixture({ dataDir, bucket: 'models' });
  try {
    return await outcomeState(new S3BlobStore(s3.client, s3.server.bucket), model);
  } finally {
    await s3.stop();
  }
}
