/**
 * Payload formats 1.0 and 2.0 through the deployed artifact (issue 26): the bundled infer functions with the built
 * layer, in a fresh Lambda-like process, answer the same request set identically whether it comes as a REST API
 * event (1.0) or as a function URL / HTTP API event (2.0, with cookies, a raw path with encoded characters and a
 * query string the API ignores): JSON, binary, an image, errors and a 413.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { buildTileModel } from '../../tools/onnx/index.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import {
  binaryAnswerOf,
  detectorCatalogEntry,
  bodyOf,
  httpApiEvent,
  restEvent,
  startArtifactRig,
  type ArtifactRig,
} from './artifact-fixture.js';
import { removeTempDirs, synthesize, type Synthesized } from './fixture.js';

let rig: ArtifactRig;
let synth: Synthesized;

beforeAll(async () => {
  synth = synthesize(
    {
      models: [parseCatalogEntry('tile', { architecture: 'x86_64', warmer: false }), detectorCatalogEntry()],
      sharedArchitecture: 'x86_64',
    },
    { bundling: true, id: 'PayloadFormats' },
  );
  rig = await startArtifactRig(synth);
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  removeTempDirs();
});

const inferId = (model: string) => rig.idOf(synth.stack.endpoints.get(model)!.inferFunction.function);

/** One request of the set: what both formats carry. */
interface Sent {
  readonly method: string;
  readonly resource: string;
  readonly path: string;
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
}

const x = Float32Array.from([1.5, -2, 3.25]);
const tileRequest = (repeats: number, binaryOutput: boolean) =>
  encodeInferenceRequest(
    [
      { name: 'x', datatype: 'FP32', shape: [3], data: x },
      { name: 'repeats', datatype: 'INT64', shape: [1], data: BigInt64Array.from([BigInt(repeats)]) },
    ],
    { binaryOutput },
  );
const json = tileRequest(2, false);
const binary = tileRequest(2, true);
// 3 x 600,000 FP32 elements: 7.2 MB binary, 9.6 MB base64 in a buffered result.
const tooLarge = tileRequest(600_000, true);

const TILE_SET: readonly Sent[] = [
  { method: 'GET', resource: '/v2/models/tile', path: '/v2/models/tile' },
  {
    method: 'POST',
    resource: '/v2/models/tile/infer',
    // The client's own percent-encoding ("l" as %6C) reaches the routes as sent, in both formats.
    path: '/v2/models/ti%6Ce/infer',
    body: Buffer.from(json.body),
    headers: { ...json.headers },
  },
  {
    method: 'POST',
    resource: '/v2/models/tile/infer',
    path: '/v2/models/tile/infer',
    body: Buffer.from(binary.body),
    headers: { ...binary.headers },
  },
  {
    method: 'POST',
    resource: '/v2/models/tile/infer',
    path: '/v2/models/tile/infer',
    body: Buffer.from('{"inputs": ['),
    headers: { 'content-type': 'application/json' },
  },
  {
    method: 'POST',
    resource: '/v2/models/tile/versions/{v}/infer',
    path: '/v2/models/tile/versions/9/infer',
    body: Buffer.from(json.body),
    headers: { ...json.headers },
  },
  { method: 'DELETE', resource: '/v2/models/tile', path: '/v2/models/tile' },
  {
    method: 'POST',
    resource: '/v2/models/tile/infer',
    path: '/v2/models/tile/infer',
    body: Buffer.from(tooLarge.body),
    headers: { ...tooLarge.headers },
  },
];

const photo = readFileSync(join('models', 'photo.jpg'));
const DETECTOR_SET: readonly Sent[] = [
  {
    method: 'POST',
    resource: '/v2/models/detector/infer',
    path: '/v2/models/detector/infer',
    body: photo,
    headers: { 'content-type': 'image/jpeg' },
  },
  {
    method: 'POST',
    resource: '/v2/models/detector/infer',
    path: '/v2/models/detector/infer',
    body: Buffer.from('not a picture'),
    headers: { 'content-type': 'image/jpeg' },
  },
];

const asRest = (sent: Sent) => restEvent(sent.method, sent.resource, sent.path, sent.body, sent.headers);
const asV2 = (sent: Sent) =>
  httpApiEvent(sent.method, sent.path, sent.body, sent.headers, {
    cookies: ['session=abc', 'theme=dark'],
    rawQueryString: 'trace=1&trace=2',
  });

/**
 * The answers with the request id left out: each format's event carries its own (`req-<method>-<path>` in both
 * fixtures, so they agree anyway) and nothing else may differ.
 */
async function answers(model: string, events: readonly unknown[]): Promise<APIGatewayProxyResult[]> {
  const run = await rig.invoke(inferId(model), events);
  return run.results as APIGatewayProxyResult[];
}

describe.runIf(CAN_RUN_LINUX_X64_NODE)('the bundled infer handlers with the built layer, payload 1.0 and 2.0', () => {
  beforeAll(async () => {
    for (const [model, file, bytes] of [
      ['tile', 'tile.onnx', buildTileModel()],
      ['detector', 'detector.onnx', readFileSync(join('models', 'detector.onnx'))],
    ] as const) {
      const key = `uploads/${model}/${file}`;
      await rig.s3.client.send(new PutObjectCommand({ Bucket: rig.s3.server.bucket, Key: key, Body: bytes }));
      await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [await rig.eventFor(key)]);
    }
  }, 240_000);

  it('answer JSON, binary, errors and a 413 identically', async () => {
    const rest = await answers('tile', TILE_SET.map(asRest));
    const v2 = await answers('tile', TILE_SET.map(asV2));

    expect(v2).toEqual(rest);
    expect(rest.map((r) => r.statusCode)).toEqual([200, 200, 200, 400, 404, 405, 413]);
    const [metadata, inferred, binaryAnswer, , missing, , refused] = rest;
    expect(bodyOf(metadata)).toMatchObject({ name: 'tile', versions: ['1'] });
    expect(bodyOf(inferred)).toMatchObject({
      model_name: 'tile',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [6], data: [1.5, -2, 3.25, 1.5, -2, 3.25] }],
    });
    const { header, tail } = binaryAnswerOf(binaryAnswer!);
    expect(header).toMatchObject({ outputs: [{ name: 'y', parameters: { binary_data_size: 24 } }] });
    expect([...new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + tail.byteLength))]).toEqual([
      1.5, -2, 3.25, 1.5, -2, 3.25,
    ]);
    expect(bodyOf(missing)).toEqual({ error: expect.stringContaining('version') });
    expect((bodyOf(refused) as { error: string }).error).toMatch(/limit of a Lambda response .*-c streaming=true/);
  }, 120_000);

  it('answer an image body and a body that is no image identically', async () => {
    const rest = await answers('detector', DETECTOR_SET.map(asRest));
    const v2 = await answers('detector', DETECTOR_SET.map(asV2));

    expect(v2).toEqual(rest);
    expect(rest.map((r) => r.statusCode)).toEqual([200, 400]);
    expect(binaryAnswerOf(rest[0]!).header).toMatchObject({ model_name: 'detector', model_version: '1' });
    expect(bodyOf(rest[1])).toEqual({ error: expect.stringContaining('not a readable image/jpeg image') });
  }, 120_000);
});
