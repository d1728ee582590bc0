/**
 * "Every upload gets exactly one outcome", through the deployed artifact: the register function's bundle as CDK
 * staged it, with its staged layer, in fresh Node processes (tools/lambda-process.ts), signing as its role against
 * the embedded S3 server, which enforces the S3 statements the synthesized template attaches to that role. A loopback
 * proxy in front of the server counts the GETs of each upload. Covered: reconciliation after a refusal (which must not
 * read `rejected/`), a duplicate (recorded once, never downloaded again), a process killed at each step and the
 * event delivered again, and `.zip` uploads; with zero denials.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { REGISTRATION_STEPS } from '../../functions/core/model-repository.js';
import type { RegisterResult } from '../../functions/transport/register-handler.js';
import { describeDenial, type AccessDenial } from '../../functions/local/s3-access.js';
import { s3Event } from '../../tools/lambda-events.js';
import { runInLambdaProcess, stagedFunction, type TemplateJson } from '../../tools/lambda-process.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { withExternalData } from '../../tools/onnx/external-data.js';
import { buildScaledLinearModel as linearModel, ModelBuilder } from '../../tools/onnx/index.js';
import { startS3Proxy, type S3Proxy } from '../../tools/s3-proxy.js';
import { writeZip } from '../../tools/zip-writer.js';
import { expectOneOutcomeEach } from '../flow/outcome-checks.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';
import { removeTempDirs, s3PolicyOf, synthesize, tempDir, type Synthesized } from './fixture.js';

let synth: Synthesized;
let s3: S3Fixture;
let proxy: S3Proxy;
let owner: S3BlobStore;
const denials: AccessDenial[] = [];

const registerId = (): string =>
  synth.stack.resolve(
    synth.stack.getLogicalId(synth.stack.registerFunction.function.node.defaultChild as never),
  ) as string;

/**
 * Runs the staged register bundle on `events` in one fresh process, signing as its role through the counting proxy.
 * `env` adds variables (the crash tests' kill switch).
 */
async function register(events: readonly S3Event[], env: Record<string, string> = {}): Promise<RegisterResult[]> {
  const id = registerId();
  const fn = stagedFunction(synth.template.toJSON() as TemplateJson, synth.assemblyDir, id);
  const credentials = s3.server.credentialsFor(id);
  const declared = Object.fromEntries(
    Object.entries(fn.environment).map(([name, value]) => [name, typeof value === 'string' ? value : 'models']),
  );
  const { results } = await runInLambdaProcess({
    bundleDir: fn.bundleDir,
    ...(fn.layerDirs[0] === undefined ? {} : { layerDir: fn.layerDirs[0] }),
    taskDir: tempDir('task'),
    functionName: id,
    memoryMb: fn.memoryMb,
    events,
    environment: {
      ...declared,
      ...env,
      AWS_REGION: s3.server.region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      S3_ENDPOINT: proxy.endpoint,
      POWERTOOLS_TRACE_ENABLED: 'false',
    },
  });
  return results as RegisterResult[];
}

/** Uploads `body` as the user would (owner credentials, straight to the server). */
async function upload(key: string, body: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key: key, Body: body }));
}

/** GETs of `key` that went through the proxy (each ranged part counts). */
const getsOf = (key: string): number =>
  proxy.requests.filter(
    (r) => r.method === 'GET' && decodeURIComponent(r.path.split('?')[0] ?? '') === `/models/${key}`,
  ).length;

/** y = x W, its weights in one external-data file named `location`, zipped. */
function archive(location: string): Uint8Array {
  const proto = new ModelBuilder({ graphName: 'affine' })
    .input('x', 'FP32', ['N', 4])
    .initializer('W', { datatype: 'FP32', dims: [4, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) })
    .node('MatMul', ['x', 'W'], ['y'])
    .output('y', 'FP32', ['N', 2])
    .toProto();
  const external = withExternalData(proto, location);
  return writeZip([
    { name: 'model.onnx', data: external.model },
    ...[...external.files].map(([name, data]) => ({ name, data })),
  ]);
}

beforeAll(async () => {
  synth = synthesize({ models: [], sharedArchitecture: 'x86_64' }, { bundling: true, id: 'Outcomes' });
  const bucketId = synth.stack.resolve(
    synth.stack.getLogicalId(synth.stack.bucket.node.defaultChild as never),
  ) as string;
  const roleId = synth.stack.resolve(
    synth.stack.getLogicalId(synth.stack.registerFunction.role.node.defaultChild as never),
  ) as string;
  s3 = await startS3Fixture({
    bucket: 'models',
    roles: [{ role: registerId(), statements: s3PolicyOf(synth.template, roleId, bucketId, 'models') }],
    onAccessDenied: (denial) => denials.push(denial),
  });
  proxy = await startS3Proxy({ target: s3.server.endpoint });
  owner = new S3BlobStore(s3.client, s3.server.bucket);
}, 360_000);

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  removeTempDirs();
});

describe.runIf(CAN_RUN_LINUX_X64_NODE)('one outcome per upload, under the register role of the template', () => {
  it('reconciles after a refusal without reading rejected/, and records a duplicate once, never read again', async () => {
    // Prepare: a version, a refused upload, a duplicate of the version, and an upload whose event was lost.
    await upload('uploads/once/a.onnx', linearModel(2));
    await upload('uploads/once/broken.onnx', new TextEncoder().encode('not a model'));
    const [first] = await register([s3Event(['uploads/once/a.onnx', 'uploads/once/broken.onnx'])]);
    await upload('uploads/once/copy.onnx', linearModel(2));
    const [copied] = await register([s3Event(['uploads/once/copy.onnx'])]);
    const copyGets = getsOf('uploads/once/copy.onnx');
    const brokenGets = getsOf('uploads/once/broken.onnx');
    await upload('uploads/once/lost.onnx', linearModel(3));

    // Act: two later events of the model, each in a fresh instance: each reconciles the model's pending uploads.
    await upload('uploads/once/b.onnx', linearModel(4));
    const [later] = await register([s3Event(['uploads/once/b.onnx'])]);
    await upload('uploads/once/c.onnx', linearModel(5));
    const [last] = await register([s3Event(['uploads/once/c.onnx'])]);

    // Assess
    expect(first?.outcomes.map((o) => o.kind)).toEqual(['registered', 'rejected']);
    expect(copied?.outcomes).toEqual([expect.objectContaining({ kind: 'duplicate', version: '1' })]);
    expect(later?.reconciled).toEqual([expect.objectContaining({ key: 'uploads/once/lost.onnx', version: '2' })]);
    expect(later?.outcomes).toEqual([expect.objectContaining({ kind: 'registered', version: '3' })]);
    expect(last?.reconciled).toBeUndefined();
    expect(copyGets).toBeGreaterThan(0);
    expect(getsOf('uploads/once/copy.onnx')).toBe(copyGets);
    expect(getsOf('uploads/once/broken.onnx')).toBe(brokenGets);
    const state = await expectOneOutcomeEach(owner, 'once');
    expect(state.outcomes.get('uploads/once/copy.onnx')).toMatchObject({ outcome: 'duplicate', version: '1' });
    expect(state.outcomes.get('uploads/once/broken.onnx')).toMatchObject({ outcome: 'refused' });
    expect(denials.map(describeDenial)).toEqual([]);
  }, 120_000);

  it.each(
    REGISTRATION_STEPS.flatMap((step) => [
      { step, next: 'the same event delivered again' },
      { step, next: 'the next upload of the model' },
    ]),
  )(
    'finishes an upload whose process was killed after $step on $next',
    async ({ step, next }) => {
      // Prepare
      const model = `killed-${step}-${next.length}`;
      const killedKey = `uploads/${model}/v2.onnx`;
      await upload(`uploads/${model}/v1.onnx`, linearModel(1));
      await register([s3Event([`uploads/${model}/v1.onnx`])]);
      await upload(killedKey, linearModel(2));

      // Act: the instance dies at the step (SIGKILL); then a fresh one gets the event again, or the next upload's.
      const killed = await register([s3Event([killedKey])], { FAULT_KILL_AFTER_REGISTRATION_STEP: step }).then(
        () => 'survived',
        (error: Error) => error.message,
      );
      const gets = getsOf(killedKey);
      const redelivered = next === 'the same event delivered again';
      if (!redelivered) await upload(`uploads/${model}/v3.onnx`, linearModel(3));
      const [result] = await register([s3Event([redelivered ? killedKey : `uploads/${model}/v3.onnx`])]);

      // Assess: killed, then finished under the number it had claimed, with nothing left over.
      expect(killed).toMatch(/exited with code null/);
      const finished = redelivered ? result?.outcomes : result?.reconciled;
      expect(finished).toEqual([expect.objectContaining({ key: killedKey, version: '2' })]);
      if (!redelivered)
        expect(result?.outcomes).toEqual([expect.objectContaining({ kind: 'registered', version: '3' })]);
      const state = await expectOneOutcomeEach(owner, model);
      expect(state.versions).toEqual(redelivered ? ['1', '2'] : ['1', '2', '3']);
      expect(state.outcomes.get(killedKey)).toMatchObject({ outcome: 'registered', version: '2' });
      // Killed after the manifest, the upload is finished from the manifest without downloading it again; before it,
      // its files must be written again, so it is read once more.
      if (step === 'manifest' && !redelivered) expect(getsOf(killedKey)).toBe(gets);
      else expect(getsOf(killedKey)).toBeGreaterThan(gets);
      expect(denials.map(describeDenial)).toEqual([]);
    },
    120_000,
  );

  it('registers a .zip and refuses one whose location would make a key over 1,024 bytes, numbering on', async () => {
    // Prepare
    const long = `${'d'.repeat(200)}/`.repeat(5).concat('w.bin');
    await upload('uploads/zipped/good.zip', archive('weights.bin'));
    await upload('uploads/zipped/long.zip', archive(long));
    await upload('uploads/zipped/next.onnx', linearModel(7));

    // Act
    const [result] = await register([
      s3Event(['uploads/zipped/good.zip', 'uploads/zipped/long.zip', 'uploads/zipped/next.onnx']),
    ]);

    // Assess
    expect(
      result?.outcomes.map((o) => [o.kind, o.kind === 'rejected' ? o.reason : 'version' in o ? o.version : o.reason]),
    ).toEqual([
      ['registered', '1'],
      ['rejected', expect.stringContaining("S3's 1024-byte limit")],
      ['registered', '2'],
    ]);
    expect(await owner.list('models/zipped/1/')).toContain('models/zipped/1/weights.bin');
    await expectOneOutcomeEach(owner, 'zipped');
    expect(denials.map(describeDenial)).toEqual([]);
  }, 120_000);
});
