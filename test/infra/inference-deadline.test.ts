/**
 * The inference deadline as deployed: the staged `infer` bundle and layer in a fresh Node process (as Lambda runs
 * it, `tools/lambda-process.ts`), onnxruntime on the main thread. A run past the model's `limits.timeoutMs` is
 * answered 504 through Lambda's Runtime API by the watchdog thread, and the instance ends (SIGKILL) so that the stuck
 * native work cannot poison it; the next request, on a fresh instance, is answered.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult, S3Event } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { buildLoopModel } from '../../tools/onnx/index.js';
import { runInLambdaProcess, stagedFunction, type TemplateJson } from '../../tools/lambda-process.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';
import { removeTempDirs, resources, s3PolicyOf, synthesize, tempDir, type Synthesized } from './fixture.js';

const TIMEOUT_MS = 1000;

let synth: Synthesized;
let s3: S3Fixture;
let opt: string;

const idOf = (construct: { node: { defaultChild?: unknown } }): string =>
  synth.stack.resolve(synth.stack.getLogicalId(construct.node.defaultChild as never)) as string;

/** Runs `events` through a function's staged bundle in one fresh process, with the Runtime API on loopback. */
async function invoke(logicalId: string, events: readonly unknown[]) {
  const credentials = s3.server.credentialsFor(logicalId);
  const fn = stagedFunction(synth.template.toJSON() as TemplateJson, synth.assemblyDir, logicalId);
  const declared = Object.fromEntries(
    Object.entries(fn.environment).map(([name, value]) => [name, typeof value === 'string' ? value : s3.server.bucket]),
  );
  return runInLambdaProcess({
    bundleDir: fn.bundleDir,
    layerDir: opt,
    taskDir: tempDir('task'),
    functionName: logicalId,
    memoryMb: fn.memoryMb,
    events,
    runtimeApi: true,
    environment: {
      ...declared,
      AWS_REGION: s3.server.region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      S3_ENDPOINT: s3.server.endpoint,
      POWERTOOLS_TRACE_ENABLED: 'false',
    },
  });
}

/** An API Gateway REST event for `POST /v2/models/spin/infer` asking for `trips` Loop iterations. */
function spinEvent(trips: number): unknown {
  const body = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'trips', datatype: 'INT64', shape: [], data: [trips] },
        { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
      ],
    }),
  );
  return {
    resource: '/v2/models/spin/infer',
    path: '/v2/models/spin/infer',
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: { 'content-type': ['application/json'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: body.toString('base64'),
    isBase64Encoded: true,
    requestContext: { stage: 'prod', path: '/prod/v2/models/spin/infer', requestId: 'api-req', httpMethod: 'POST' },
  };
}

const bodyOf = (result: unknown): { error?: string; outputs?: { data: number[] }[] } => {
  const r = result as APIGatewayProxyResult;
  return JSON.parse(r.isBase64Encoded === true ? Buffer.from(r.body, 'base64').toString('utf8') : r.body);
};

beforeAll(async () => {
  synth = synthesize(
    {
      models: [parseCatalogEntry('spin', { architecture: 'x86_64', warmer: false, limits: { timeoutMs: TIMEOUT_MS } })],
      sharedArchitecture: 'x86_64',
    },
    { bundling: true, id: 'Deadline' },
  );
  const layer = resources(synth.template)[idOf(synth.stack.layers.get('x86_64')!.layerVersion)]?.Properties as {
    Content: { S3Key: string };
  };
  opt = `${synth.assemblyDir}/asset.${layer.Content.S3Key.replace(/\.zip$/, '')}`;
  const bucketId = idOf(synth.stack.bucket);
  const functions = [synth.stack.registerFunction, synth.stack.endpoints.get('spin')!.inferFunction];
  s3 = await startS3Fixture({
    bucket: 'models',
    eventFilter: { prefix: 'uploads/', suffix: '.onnx' },
    roles: functions.map((fn) => ({
      role: idOf(fn.function),
      statements: s3PolicyOf(synth.template, idOf(fn.role), bucketId, 'models'),
    })),
  });
  await s3.client.send(
    new PutObjectCommand({
      Bucket: s3.server.bucket,
      Key: 'uploads/spin/spin.onnx',
      Body: buildLoopModel({ trips: 'input', body: 'Identity' }),
    }),
  );
  const [event] = (await s3.waitForEvents(1)) as S3Event[];
  await invoke(idOf(synth.stack.registerFunction.function), [event]);
}, 360_000);

afterAll(async () => {
  await s3?.stop();
  removeTempDirs();
});

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'answers 504 at the deadline through the Runtime API, ends the instance, and a fresh one answers',
  async () => {
    const inferId = idOf(synth.stack.endpoints.get('spin')!.inferFunction.function);

    const stuck = await invoke(inferId, [spinEvent(2), spinEvent(1e12), spinEvent(3)]);
    const fresh = await invoke(inferId, [spinEvent(4)]);

    // The first run ended in time: answered by the handler, nothing posted by the watchdog.
    expect(stuck.results).toHaveLength(1);
    expect((stuck.results[0] as APIGatewayProxyResult).statusCode).toBe(200);
    expect(bodyOf(stuck.results[0]).outputs?.[0]?.data).toEqual([7]);
    // The stuck one: the watchdog's 504 for its invocation, then the process killed before the next event.
    expect([...(stuck.runtimeApi?.responses.keys() ?? [])]).toEqual(['req-1']);
    const answer = stuck.runtimeApi?.responses.get('req-1') as APIGatewayProxyResult;
    expect(answer.statusCode).toBe(504);
    expect(bodyOf(answer).error).toMatch(/model "spin" version 1 did not finish the inference within 1 s .*timeoutMs/);
    expect(stuck.runtimeApi?.signal).toBe('SIGKILL');
    // The next request, on a fresh instance.
    expect(fresh.runtimeApi?.exitCode).toBe(0);
    expect((fresh.results[0] as APIGatewayProxyResult).statusCode).toBe(200);
  },
);
