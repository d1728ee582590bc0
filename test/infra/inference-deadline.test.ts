/**
 * The inference deadline as deployed: the staged `infer` bundle and layer in a fresh Node process (as Lambda runs
 * it, `tools/lambda-process.ts`), onnxruntime on the main thread. A run past the model's `limits.timeoutMs` is
 * answered 504 through Lambda's Runtime API by the watchdog thread, and the instance ends (SIGKILL) so that the stuck
 * native work cannot poison it; the next request, on a fresh instance, is answered.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { buildLoopModel } from '../../tools/onnx/index.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { bodyOf, restEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, synthesize } from './fixture.js';

const TIMEOUT_MS = 1000;

let rig: ArtifactRig;

/** Runs `events` through a function's staged bundle in one fresh process, with the Runtime API on loopback. */
const invoke = (logicalId: string, events: readonly unknown[]) => rig.invoke(logicalId, events, { runtimeApi: true });

/** An API Gateway REST event for `POST /v2/models/spin/infer` asking for `trips` Loop iterations. */
function spinEvent(trips: number): unknown {
  const body = JSON.stringify({
    inputs: [
      { name: 'trips', datatype: 'INT64', shape: [], data: [trips] },
      { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
    ],
  });
  const path = '/v2/models/spin/infer';
  return restEvent('POST', path, path, Buffer.from(body), { 'content-type': 'application/json' });
}

type Answer = { error?: string; outputs?: { data: number[] }[] };

beforeAll(async () => {
  const synth = synthesize(
    {
      models: [parseCatalogEntry('spin', { architecture: 'x86_64', warmer: false, limits: { timeoutMs: TIMEOUT_MS } })],
      sharedArchitecture: 'x86_64',
    },
    { bundling: true, id: 'Deadline' },
  );
  rig = await startArtifactRig(synth);
  await rig.s3.client.send(
    new PutObjectCommand({
      Bucket: rig.s3.server.bucket,
      Key: 'uploads/spin/spin.onnx',
      Body: buildLoopModel({ trips: 'input', body: 'Identity' }),
    }),
  );
  await invoke(rig.idOf(synth.stack.registerFunction.function), [await rig.eventFor('uploads/spin/spin.onnx')]);
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'answers 504 at the deadline through the Runtime API, ends the instance, and a fresh one answers',
  async () => {
    const inferId = rig.idOf(rig.synth.stack.endpoints.get('spin')!.inferFunction.function);

    const stuck = await invoke(inferId, [spinEvent(2), spinEvent(1e12), spinEvent(3)]);
    const fresh = await invoke(inferId, [spinEvent(4)]);

    // The first run ended in time: answered by the handler, nothing posted by the watchdog.
    expect(stuck.results).toHaveLength(1);
    expect((stuck.results[0] as APIGatewayProxyResult).statusCode).toBe(200);
    expect((bodyOf(stuck.results[0]) as Answer).outputs?.[0]?.data).toEqual([7]);
    // The stuck one: the watchdog's 504 for its invocation, then the process killed before the next event.
    expect([...(stuck.runtimeApi?.responses.keys() ?? [])]).toEqual(['req-1']);
    const answer = stuck.runtimeApi?.responses.get('req-1') as APIGatewayProxyResult;
    expect(answer.statusCode).toBe(504);
    expect((bodyOf(answer) as Answer).error).toMatch(
      /model "spin" version 1 did not finish the inference within 1 s .*timeoutMs/,
    );
    expect(stuck.runtimeApi?.signal).toBe('SIGKILL');
    // The next request, on a fresh instance.
    expect(fresh.runtimeApi?.exitCode).toBe(0);
    expect((fresh.results[0] as APIGatewayProxyResult).statusCode).toBe(200);
    expect(rig.describeDenials()).toEqual([]);
  },
);
