/**
 * Response streaming through the deployed artifact (issue 26): with `-c streaming=true` the template gives the infer
 * function `RESPONSE_STREAMING=true`, and its bundle, run with the built layer in a fresh process under each Node
 * major Lambda offers, is a streaming handler: the runner (as the Node runtime) posts each answer to the Runtime API
 * in the streaming response mode, chunked, as an HTTP integration response (JSON prelude, 8 NUL bytes, body). A
 * 20 MB answer arrives byte-equal to onnxruntime's output; an error keeps its status; a warmer's result is plain
 * JSON.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { ENV } from '../../functions/core/contract.js';
import { HTTP_INTEGRATION_RESPONSE_TYPE } from '../../functions/transport/response-stream.js';
import { stagedFunction, type TemplateJson } from '../../tools/lambda-process.js';
import { CAN_RUN_LINUX_X64_NODE, nodeBinary } from '../../tools/node-binaries.js';
import { buildLoopModel, buildTileModel } from '../../tools/onnx/index.js';
import { ARTIFACT_NODES, httpApiEvent, restEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, synthesize, type Synthesized } from './fixture.js';

let rig: ArtifactRig;
let synth: Synthesized;

const NODES = ARTIFACT_NODES;

// 1,000 distinct values 5,243 times: 20,972,000 bytes of output, past Lambda's 6 MB buffered limit.
const x = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i) * 100 - i / 3);
const LARGE = 5243;
const request = encodeInferenceRequest(
  [
    { name: 'x', datatype: 'FP32', shape: [x.length], data: x },
    { name: 'repeats', datatype: 'INT64', shape: [1], data: BigInt64Array.from([BigInt(LARGE)]) },
  ],
  { binaryOutput: true },
);

/** onnxruntime's own output for the request: the bytes the stream must carry after the answer's JSON header. */
let expected: Buffer;

beforeAll(async () => {
  synth = synthesize(
    {
      models: [
        parseCatalogEntry('tile', { architecture: 'x86_64', warmer: false }),
        parseCatalogEntry('spin', { architecture: 'x86_64', warmer: false, limits: { timeoutMs: 1000 } }),
      ],
      sharedArchitecture: 'x86_64',
      responseStreaming: true,
    },
    { bundling: true, id: 'Streaming' },
  );
  rig = await startArtifactRig(synth);
  for (const [key, body] of [
    ['uploads/tile/tile.onnx', buildTileModel()],
    ['uploads/spin/spin.onnx', buildLoopModel({ trips: 'input', body: 'Identity' })],
  ] as const) {
    await rig.s3.client.send(new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: key, Body: body }));
    await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [await rig.eventFor(key)]);
  }
  const session = await ort.InferenceSession.create(buildTileModel());
  const { y } = await session.run({
    x: new ort.Tensor('float32', x, [x.length]),
    repeats: new ort.Tensor('int64', BigInt64Array.from([BigInt(LARGE)]), [1]),
  });
  const data = y!.data as Float32Array;
  expected = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  await session.release();
  if (CAN_RUN_LINUX_X64_NODE) for (const node of NODES) if (node.version !== undefined) await nodeBinary(node.version);
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

it('gives the infer functions RESPONSE_STREAMING=true, and control none', () => {
  const template = synth.template.toJSON() as TemplateJson;
  const environment = (id: string) => stagedFunction(template, synth.assemblyDir, id).environment;

  expect(environment(rig.idOf(synth.stack.endpoints.get('tile')!.inferFunction.function))).toMatchObject({
    [ENV.responseStreaming]: 'true',
  });
  expect(environment(rig.idOf(synth.stack.sharedEndpoint.inferFunction.function))).toMatchObject({
    [ENV.responseStreaming]: 'true',
  });
  expect(environment(rig.idOf(synth.stack.controlFunction.function))).not.toHaveProperty(ENV.responseStreaming);
});

describe.runIf(CAN_RUN_LINUX_X64_NODE).each(NODES)('the bundled infer handler on $label', (node) => {
  it('streams a 20 MB answer, an error and a warmer result to the Runtime API', async () => {
    const binary = node.version === undefined ? undefined : await nodeBinary(node.version);
    const run = await rig.invoke(
      rig.idOf(synth.stack.endpoints.get('tile')!.inferFunction.function),
      [
        restEvent('POST', '/v2/models/tile/infer', '/v2/models/tile/infer', Buffer.from(request.body), {
          ...request.headers,
        }),
        httpApiEvent('GET', '/v2/models/tile/versions/7', undefined, {}, { cookies: ['a=1'] }),
        { warmer: true, concurrency: 1 },
      ],
      { runtimeApi: true, ...(binary === undefined ? {} : { node: binary }) },
    );

    expect(run.runtimeApi?.exitCode, run.stderr).toBe(0);
    expect(run.results).toEqual([{ streamed: 'req-0' }, { streamed: 'req-1' }, { streamed: 'req-2' }]);
    const streamed = run.runtimeApi!.streamed;
    const large = streamed.get('req-0')!;
    expect(large.requestHeaders).toMatchObject({
      'lambda-runtime-function-response-mode': 'streaming',
      'transfer-encoding': 'chunked',
      'content-type': HTTP_INTEGRATION_RESPONSE_TYPE,
    });
    expect(large.prelude?.statusCode).toBe(200);
    const headerLength = Number(large.prelude?.headers['inference-header-content-length']);
    expect(JSON.parse(large.body.subarray(0, headerLength).toString('utf8'))).toMatchObject({
      model_name: 'tile',
      outputs: [{ name: 'y', shape: [LARGE * x.length], parameters: { binary_data_size: expected.byteLength } }],
    });
    expect(expected.byteLength).toBe(20_972_000);
    expect(Buffer.compare(large.body.subarray(headerLength), expected)).toBe(0);
    // Written in bounded pieces as it was produced, not posted at once.
    expect(large.chunks).toBeGreaterThan(1);

    const missing = streamed.get('req-1')!;
    expect(missing.prelude).toEqual({ statusCode: 404, headers: { 'content-type': 'application/json' } });
    expect(JSON.parse(missing.body.toString('utf8'))).toEqual({ error: expect.stringContaining('version') });

    const warmed = streamed.get('req-2')!;
    expect(warmed.prelude).toBeUndefined();
    expect(JSON.parse(warmed.body.toString('utf8'))).toMatchObject({ warmed: true, model: 'tile', version: '1' });
  }, 180_000);
});

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'answers a run past its deadline with a streamed 504 from the watchdog, as the streaming front reads it',
  async () => {
    const path = '/v2/models/spin/infer';
    const body = JSON.stringify({
      inputs: [
        { name: 'trips', datatype: 'INT64', shape: [], data: [1e12] },
        { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
      ],
    });

    const stuck = await rig.invoke(
      rig.idOf(synth.stack.endpoints.get('spin')!.inferFunction.function),
      [httpApiEvent('POST', path, Buffer.from(body), { 'content-type': 'application/json' })],
      { runtimeApi: true },
    );

    expect(stuck.runtimeApi?.signal).toBe('SIGKILL');
    expect([...(stuck.runtimeApi?.responses.keys() ?? [])]).toEqual([]);
    const answer = stuck.runtimeApi?.streamed.get('req-0');
    expect(answer?.requestHeaders).toMatchObject({
      'lambda-runtime-function-response-mode': 'streaming',
      'content-type': HTTP_INTEGRATION_RESPONSE_TYPE,
    });
    expect(answer?.prelude?.statusCode).toBe(504);
    expect(JSON.parse(answer?.body.toString('utf8') ?? '{}')).toEqual({
      error: expect.stringMatching(/model "spin" version 1 did not finish the inference within 1 s/),
    });
  },
  120_000,
);
