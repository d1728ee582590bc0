/**
 * Data capture as deployed: the synthesized stack gives each infer function its policy (`DATA_CAPTURE`, the entry's
 * own or the deployment's `captureSamplingPercent`) and a role that may write `capture/<model>/*` and nothing else
 * new; the staged `infer` bundle, run in a fresh Lambda-like process against the embedded S3 server enforcing that
 * role (tools/lambda-process.ts), writes SageMaker Data Capture files in batches, the warmer writing what is left.
 * Bad policies are refused at synth with the reason.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { ENV } from '../../functions/core/contract.js';
import { evaluatePolicy } from '../../functions/local/iam-policy.js';
import { createServiceApp, stackPropsFromContext } from '../../infra/service-app.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { linearModel, linearRequest } from '../flow/fixture.js';
import { restEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { nagFindings, removeTempDirs, s3PolicyOf, synthesize, type Synthesized } from './fixture.js';

let synth: Synthesized;
let rig: ArtifactRig;

const CAPTURED = { architecture: 'x86_64', warmer: false, capture: { maxBatchRecords: 2, flushIntervalSeconds: 3600 } };

beforeAll(async () => {
  synth = synthesize(
    {
      models: [
        parseCatalogEntry('linear', CAPTURED),
        parseCatalogEntry('quiet', { architecture: 'x86_64', warmer: false, capture: { samplingPercent: 0 } }),
      ],
      sharedArchitecture: 'x86_64',
      captureSamplingPercent: 100,
    },
    { bundling: true, id: 'Capture' },
  );
  rig = await startArtifactRig(synth);
  await rig.s3.client.send(
    new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: 'uploads/linear/v1.onnx', Body: linearModel(2, 1) }),
  );
  await rig.s3.client.send(
    new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: 'uploads/quiet/v1.onnx', Body: linearModel(3, 0) }),
  );
  await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [
    await rig.eventFor('uploads/linear/v1.onnx'),
    await rig.eventFor('uploads/quiet/v1.onnx'),
  ]);
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

/** The environment a function's template declares. */
const environmentOf = (fn: { function: { node: { defaultChild?: unknown } } }): Record<string, unknown> =>
  synth.template.toJSON().Resources[rig.idOf(fn.function)]?.Properties?.Environment?.Variables ?? {};

describe('the synthesized stack', () => {
  it("gives each infer function its policy: the entry's, the deployment's percent filling in, none at 0%", () => {
    const linear = synth.stack.endpoints.get('linear')!.inferFunction;
    const quiet = synth.stack.endpoints.get('quiet')!.inferFunction;
    expect(JSON.parse(String(environmentOf(linear)[ENV.dataCapture]))).toEqual({
      samplingPercent: 100,
      flushIntervalSeconds: 3600,
      maxBatchRecords: 2,
    });
    expect(environmentOf(quiet)[ENV.dataCapture]).toBeUndefined();
    expect(JSON.parse(String(environmentOf(synth.stack.sharedEndpoint.inferFunction)[ENV.dataCapture]))).toEqual({
      samplingPercent: 100,
      flushIntervalSeconds: 60,
      maxBatchRecords: 1000,
    });
  });

  it("lets an infer role write its own model's capture files only, and passes cdk-nag", () => {
    const bucketId = rig.idOf(synth.stack.bucket);
    const fn = synth.stack.endpoints.get('linear')!.inferFunction;
    const statements = s3PolicyOf(synth.template, rig.idOf(fn.role), bucketId, 'models');
    const put = (key: string) =>
      evaluatePolicy(statements, { action: 's3:PutObject', resource: `arn:aws:s3:::models/${key}` }).effect;
    expect(put('capture/linear/1/2026/12/06/04/00-00-000-x.jsonl')).toBe('allow');
    expect(put('capture/quiet/1/2026/12/06/04/00-00-000-x.jsonl')).toBe('implicit-deny');
    expect(put('models/linear/manifest.json')).toBe('implicit-deny');
    expect(put('uploads/linear/x.onnx')).toBe('implicit-deny');
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });

  it('refuses a sampling percent out of range at synth, with the reason', () => {
    expect(() => parseCatalogEntry('bad', { capture: { samplingPercent: 150 } })).toThrow(
      /models\/bad\.json is invalid: capture\.samplingPercent: samplingPercent is a percent of requests: 0 to 100/,
    );
    expect(() => parseCatalogEntry('bad', { capture: { samplingRate: 5 } })).toThrow(/capture: Unrecognized key/);
    const app = createServiceApp({ context: { captureSamplingPercent: '101' } });
    expect(() => stackPropsFromContext(app)).toThrow(
      /-c captureSamplingPercent=101: use a percent of requests from 0 to 100/,
    );
    expect(stackPropsFromContext(createServiceApp({ context: { captureSamplingPercent: '2.5' } }))).toMatchObject({
      captureSamplingPercent: 2.5,
    });
  });
});

/** Every capture file under `prefix` in the rig's bucket: key and parsed lines. */
async function captureFiles(prefix: string) {
  const listed = await rig.s3.client.send(new ListObjectsV2Command({ Bucket: rig.s3.server.bucket, Prefix: prefix }));
  return Promise.all(
    (listed.Contents ?? []).map(async ({ Key }) => {
      const object = await rig.s3.client.send(new GetObjectCommand({ Bucket: rig.s3.server.bucket, Key }));
      const text = await object.Body!.transformToString();
      return {
        key: Key!,
        records: text
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      };
    }),
  );
}

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'the bundled infer function writes batches of SageMaker records, the warmer the rest, under its real role',
  async () => {
    const fn = rig.idOf(synth.stack.endpoints.get('linear')!.inferFunction.function);
    const path = '/v2/models/linear/infer';
    const json = (row: number[], id: string) => Buffer.from(JSON.stringify({ id, ...linearRequest([row]) }));
    const binary = encodeInferenceRequest(
      [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 1, 1, 1]) }],
      { binary: true, binaryOutput: true, id: 'bin' },
    );
    const sent = [json([1, 2, 3, 4], 'a'), json([0, 0, 0, 1], 'b'), Buffer.from(binary.body)];
    const events = [
      restEvent('POST', path, path, sent[0], { 'content-type': 'application/json' }),
      restEvent('POST', path, path, sent[1], { 'content-type': 'application/json' }),
      restEvent('POST', path, path, sent[2], binary.headers as Record<string, string>),
      { warmer: true, concurrency: 1 },
    ];

    const run = await rig.invoke(fn, events);

    const answers = run.results.slice(0, 3) as APIGatewayProxyResult[];
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    const files = await captureFiles('capture/linear/1/');
    // Two requests fill a batch (written before the second answer returned); the warmer writes the third.
    expect(files.map((f) => f.records.length).sort()).toEqual([1, 2]);
    const records = files.flatMap((f) => f.records);
    const byId = new Map(records.map((r) => [r.eventMetadata.inferenceId, r]));
    expect(byId.get('a').captureData.endpointInput).toEqual({
      observedContentType: 'application/json',
      mode: 'INPUT',
      data: sent[0]!.toString('utf8'),
      encoding: 'JSON',
    });
    expect(byId.get('a').captureData.endpointOutput.data).toBe(answers[0]!.body);
    expect(JSON.parse(byId.get('a').captureData.endpointOutput.data).outputs[0].data).toEqual([21]);
    const bin = byId.get('bin').captureData;
    expect(bin.endpointInput.encoding).toBe('BASE64');
    expect(Buffer.from(bin.endpointInput.data, 'base64')).toEqual(sent[2]);
    expect(bin.endpointOutput.encoding).toBe('BASE64');
    expect(bin.endpointOutput.data).toBe(answers[2]!.body);
    for (const record of records) expect(record.eventVersion).toBe('0');
    expect(rig.describeDenials()).toEqual([]);
  },
);

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'the bundled infer function of a 0% entry writes nothing, warmer included',
  async () => {
    const fn = rig.idOf(synth.stack.endpoints.get('quiet')!.inferFunction.function);
    const path = '/v2/models/quiet/infer';
    const body = Buffer.from(JSON.stringify(linearRequest([[1, 1, 1, 1]])));
    const event = restEvent('POST', path, path, body, { 'content-type': 'application/json' });

    const run = await rig.invoke(fn, [event, event, event, { warmer: true, concurrency: 1 }]);

    expect((run.results.slice(0, 3) as APIGatewayProxyResult[]).map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect((await captureFiles('capture/quiet/')).length).toBe(0);
  },
);

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'a bundled function whose capture writes all fail (role without the grant) loses no request',
  async () => {
    const linearFn = rig.idOf(synth.stack.endpoints.get('linear')!.inferFunction.function);
    const denied = await startArtifactRig(synth, {
      narrowRole: (role, statements) =>
        role === linearFn ? statements.filter((st) => !st.Resource.some((r) => r.includes('/capture/'))) : statements,
    });
    try {
      await denied.s3.client.send(
        new PutObjectCommand({
          Bucket: denied.s3.server.bucket,
          Key: 'uploads/linear/v1.onnx',
          Body: linearModel(2, 1),
        }),
      );
      await denied.invoke(rig.idOf(synth.stack.registerFunction.function), [
        await denied.eventFor('uploads/linear/v1.onnx'),
      ]);
      const path = '/v2/models/linear/infer';
      const event = (i: number) =>
        restEvent('POST', path, path, Buffer.from(JSON.stringify(linearRequest([[i, 0, 0, 0]]))), {
          'content-type': 'application/json',
        });
      const logs: string[] = [];

      const run = await denied.invoke(linearFn, [event(1), event(2), event(3), { warmer: true, concurrency: 1 }], {
        logs,
      });

      // y = 2 * i + 1, answered as without capture, and the warmer answered too.
      const answers = run.results.slice(0, 3) as APIGatewayProxyResult[];
      expect(answers.map((a) => JSON.parse(a.body).outputs[0].data)).toEqual([[3], [5], [7]]);
      expect(run.results[3]).toMatchObject({ warmed: true, model: 'linear' });
      // Both writes (the full batch of 2, the warmer's 1) refused by S3, and only logged and counted.
      expect(denied.denials.map((d) => `${d.action} ${d.resource.replace(/\/[^/]*$/, '/<file>')}`)).toEqual([
        expect.stringMatching(
          /^s3:PutObject arn:aws:s3:::models\/capture\/linear\/1\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/<file>$/,
        ),
        expect.stringMatching(/^s3:PutObject arn:aws:s3:::models\/capture\/linear\/1\//),
      ]);
      expect(logs.filter((line) => line.includes('capture write failed'))).toHaveLength(2);
    } finally {
      await denied.stop();
    }
  },
);
