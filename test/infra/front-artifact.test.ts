/**
 * The deployed artifacts of the HTTP API and function-URL fronts, each fed its own front's event format: the stack
 * synthesized with `api: 'http'` and with `api: 'url'` (bundled), the functions those fronts route to (found in the
 * template: the integration's or the URL's target) run as Lambda runs them (the staged bundle and layer in a fresh
 * process, against the embedded S3 server enforcing their roles), with payload format 2.0 events: JSON as text,
 * binary tensors base64, the HTTP API's route keys and path parameters or a function URL's `$default`. The REST
 * front's 1.0 events are test/infra/artifact.test.ts's.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult, S3Event } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { binaryAnswerOf, bodyOf, httpApiEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { referencedIds, removeTempDirs, resources, squareModel, synthesize } from './fixture.js';

afterAll(removeTempDirs);

const floats = Buffer.from(Float32Array.from([0.5, -3]).buffer);
const header = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: floats.length } }],
    outputs: [{ name: 'y', parameters: { binary_data: true } }],
  }),
);
const jsonBody = Buffer.from(
  JSON.stringify({ id: 'r1', inputs: [{ name: 'x', shape: [3], datatype: 'FP32', data: [1.5, -2, 3] }] }),
);

/** Each front's events for the same four requests to `square` (v1), and for control's readiness. */
const binaryHeaders = {
  'content-type': 'application/octet-stream',
  'inference-header-content-length': String(header.length),
};
const binaryBody = Buffer.concat([header, floats]);
const jsonHeaders = { 'content-type': 'application/json' };

const FRONTS = {
  http: {
    metadata: httpApiEvent('GET', '/v2/models/square', undefined, {}, { routeKey: 'GET /v2/models/square' }),
    json: httpApiEvent('POST', '/v2/models/square/infer', jsonBody, jsonHeaders, {
      routeKey: 'POST /v2/models/square/infer',
    }),
    binary: httpApiEvent('POST', '/v2/models/square/versions/1/infer', binaryBody, binaryHeaders, {
      routeKey: 'POST /v2/models/square/versions/{v}/infer',
      pathParameters: { v: '1' },
    }),
    missing: httpApiEvent(
      'GET',
      '/v2/models/square/versions/9/ready',
      undefined,
      {},
      {
        routeKey: 'GET /v2/models/square/versions/{v}/ready',
        pathParameters: { v: '9' },
      },
    ),
    ready: httpApiEvent('GET', '/v2/health/ready', undefined, {}, { routeKey: 'GET /v2/health/ready' }),
  },
  url: {
    metadata: httpApiEvent('GET', '/v2/models/square'),
    json: httpApiEvent('POST', '/v2/models/square/infer', jsonBody, jsonHeaders),
    binary: httpApiEvent('POST', '/v2/models/square/versions/1/infer', binaryBody, binaryHeaders),
    missing: httpApiEvent('GET', '/v2/models/square/versions/9/ready'),
    ready: httpApiEvent('GET', '/v2/health/ready'),
  },
} as const;

describe.runIf(CAN_RUN_LINUX_X64_NODE).each(['http', 'url'] as const)('api=%s: staged bundles, 2.0 events', (api) => {
  let rig: ArtifactRig;

  afterAll(async () => {
    await rig?.stop();
  });

  it("register, then the routed infer and control functions answer their front's events", async () => {
    // Prepare: the stack of this front, bundled; square's version 1 registered by the staged register function.
    const synth = synthesize(
      {
        models: [parseCatalogEntry('square', { architecture: 'x86_64', warmer: false })],
        sharedArchitecture: 'x86_64',
        api,
      },
      { bundling: true, id: `Front${api}` },
    );
    rig = await startArtifactRig(synth);
    const inferId = rig.idOf(synth.stack.endpoints.get('square')!.inferFunction.function);
    const controlId = rig.idOf(synth.stack.controlFunction.function);
    // The functions invoked are those the front routes to.
    const targets = Object.values(resources(synth.template))
      .filter((r) => r.Type === (api === 'http' ? 'AWS::ApiGatewayV2::Integration' : 'AWS::Lambda::Url'))
      .flatMap((r) => [...referencedIds(r.Properties?.[api === 'http' ? 'IntegrationUri' : 'TargetFunctionArn'])]);
    expect(targets).toEqual(expect.arrayContaining([inferId, controlId]));

    await rig.s3.client.send(
      new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: 'uploads/square/square.onnx', Body: squareModel() }),
    );
    const upload: S3Event = await rig.eventFor('uploads/square/square.onnx');
    await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [upload]);

    // Act
    const events = FRONTS[api];
    // A function URL streams the infer function's answers (RESPONSE_STREAM, infra/response-streaming.ts): its
    // answers are read from the Runtime API's streaming mode, as the URL reads them; the HTTP API's are returned.
    const streams = api === 'url';
    const infer = await rig.invoke(
      inferId,
      [events.metadata, events.json, events.binary, events.missing],
      streams ? { runtimeApi: true } : {},
    );
    const control = await rig.invoke(controlId, [events.ready]);

    // Assess
    const answers = streams
      ? [0, 1, 2, 3].map((index): APIGatewayProxyResult => {
          const streamed = infer.runtimeApi?.streamed.get(`req-${index}`);
          expect(streamed?.prelude, infer.stderr).toBeDefined();
          return {
            statusCode: streamed?.prelude?.statusCode ?? 0,
            headers: streamed?.prelude?.headers ?? {},
            body: streamed?.body.toString('base64') ?? '',
            isBase64Encoded: true,
          };
        })
      : (infer.results as APIGatewayProxyResult[]);
    const [metadata, inferred, binary, missing] = answers;
    expect(metadata?.statusCode).toBe(200);
    expect(bodyOf(metadata)).toMatchObject({ name: 'square', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }] });
    expect(inferred?.statusCode).toBe(200);
    expect(bodyOf(inferred)).toMatchObject({
      id: 'r1',
      model_name: 'square',
      model_version: '1',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [3], data: [2.25, 4, 9] }],
    });
    expect(binary?.statusCode).toBe(200);
    const { tail } = binaryAnswerOf(binary!);
    expect(Array.from(new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + 8)))).toEqual([0.25, 9]);
    expect(missing?.statusCode).toBe(404);
    expect(bodyOf(missing)).toEqual({ error: expect.stringContaining('9') });
    expect(control.results[0]).toMatchObject({ statusCode: 200 });
    expect(bodyOf(control.results[0])).toEqual({ ready: true });
    expect(rig.describeDenials()).toEqual([]);
  }, 600_000);
});
