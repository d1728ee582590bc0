/**
 * The batch function as deployed: its staged bundle and layer in a fresh Lambda-like Node process
 * (`tools/lambda-process.ts`), against the embedded S3 enforcing the S3 statements the template gives its role. The
 * three events the state machine sends (start, one `ItemBatcher` batch, finish) pin the version, write one result or
 * failure record per input and the job record; the same batch again skips every item; a location outside `batch/`
 * fails the start naming the rule. No request of the function is denied.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { buildIdentityModel } from '../../tools/onnx/index.js';
import { startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, synthesize } from './fixture.js';

let rig: ArtifactRig;

const put = (key: string, body: Uint8Array | string) =>
  rig.s3.client.send(new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: key, Body: body }));

const read = async (key: string): Promise<string> => {
  const object = await rig.s3.client.send(new GetObjectCommand({ Bucket: rig.s3.server.bucket, Key: key }));
  return (await object.Body?.transformToString()) ?? '';
};

const request = (data: number[]) =>
  JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [data.length], data }] });

beforeAll(async () => {
  const synth = synthesize({ models: [], sharedArchitecture: 'x86_64' }, { bundling: true, id: 'Batch' });
  rig = await startArtifactRig(synth);
  await put('uploads/echo/echo.onnx', buildIdentityModel('FP32'));
  await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [await rig.eventFor('uploads/echo/echo.onnx')]);
  await put('batch/in/a.json', request([1, 2, 3]));
  await put('batch/in/b.json', request([4.5]));
  await put('batch/in/bad.json', '{"inputs": [');
  await put(
    'batch/in/shape.json',
    JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT64', shape: [1], data: [1] }] }),
  );
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'runs start, a batch and finish as the state machine does, idempotently, within its deployed grants',
  async () => {
    const batchId = rig.idOf(rig.synth.stack.batchJobs.batchFunction.function);
    const start = {
      action: 'start',
      jobId: 'job-1',
      model: 'echo',
      version: 'latest',
      input: 's3://models/batch/in/',
      output: 's3://models/batch/out/',
    };
    const first = await rig.invoke(batchId, [start]);
    const job = first.results[0] as { version: string; input: { prefix: string } };
    expect(job).toMatchObject({
      jobId: 'job-1',
      model: 'echo',
      version: '1',
      input: { bucket: 'models', prefix: 'batch/in/' },
    });
    const items = {
      Items: ['a.json', 'b.json', 'bad.json', 'shape.json'].map((k) => ({ Key: `batch/in/${k}`, Size: 10 })),
      BatchInput: job,
    };
    const run = await rig.invoke(batchId, [items, items, { action: 'finish', job }]);
    expect(run.results).toEqual([
      { succeeded: 2, failed: 2, skipped: 0 },
      { succeeded: 0, failed: 0, skipped: 4 },
      expect.objectContaining({
        state: 'SUCCEEDED',
        engine: 'step-functions',
        counts: { inputs: 4, results: 2, failures: 2, pending: 0 },
        failedKeys: ['batch/in/bad.json', 'batch/in/shape.json'],
      }),
    ]);
    const answer = JSON.parse(await read('batch/out/a.json.result.json')) as {
      model_version: string;
      outputs: { data: number[] }[];
    };
    expect(answer.model_version).toBe('1');
    expect(answer.outputs[0]?.data).toEqual([1, 2, 3]);
    expect(JSON.parse(await read('batch/out/shape.json.failure.json'))).toEqual({
      input: 'batch/in/shape.json',
      model: 'echo',
      version: '1',
      status: 400,
      error: 'input "input" must be FP32, got INT64',
    });
    expect(JSON.parse(await read('batch/_jobs/echo/job-1.json'))).toMatchObject({ state: 'SUCCEEDED' });

    // A location outside batch/: the start fails (the execution fails) naming the rule.
    await expect(
      rig.invoke(batchId, [{ ...start, jobId: 'job-2', output: 's3://models/models/echo/' }]),
    ).rejects.toThrow(/output s3:\/\/models\/models\/echo\/ is not a folder under batch\//);
    expect(rig.describeDenials()).toEqual([]);
  },
  300_000,
);
