import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toOrtTensor } from '../../functions/adapters/onnxruntime-session.js';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import type { Tensor } from '../../functions/core/types.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { showsInternals } from '../support/internals.js';

/** `npm start`'s stack on ephemeral ports, seeded from models/, spoken to over real HTTP. */
let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-'));
  stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir: 'models', silent: true });
});
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function post(route: string, body: Uint8Array | string, headers: Record<string, string>) {
  const response = await fetch(`${stack.gatewayUrl}${route}`, { method: 'POST', body, headers });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

async function infer(model: string, inputs: Tensor[], options: Parameters<typeof encodeInferenceRequest>[1] = {}) {
  const request = encodeInferenceRequest(inputs, options);
  const response = await post(`/v2/models/${model}/infer`, request.body, { ...request.headers });
  expect(response.status, new TextDecoder().decode(response.body)).toBe(200);
  return decodeInferenceResponse(response.body, response.headers);
}

/** onnxruntime called directly on the committed model file: the oracle. */
async function direct(model: string, inputs: Tensor[]): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(await readFile(path.join('models', `${model}.onnx`)));
  const feeds = Object.fromEntries(inputs.map((input) => [input.name, toOrtTensor(input)]));
  const result = await session.run(feeds);
  await session.release();
  return result;
}

function expectSameAsDirect(actual: readonly Tensor[], expected: Record<string, ort.Tensor>): void {
  expect(actual.map((o) => o.name).sort()).toEqual(Object.keys(expected).sort());
  for (const output of actual) {
    const oracle = expected[output.name]!;
    expect(output.shape).toEqual(oracle.dims.map(Number));
    expect(Array.from(output.data as ArrayLike<unknown>)).toEqual(Array.from(oracle.data as ArrayLike<unknown>));
  }
}

const features: Tensor = {
  name: 'x',
  datatype: 'FP32',
  shape: [3, 4],
  data: new Float32Array([5.1, 3.5, 1.4, 0.2, 6.4, 3.2, 4.5, 1.5, 6.3, 3.3, 6, 2.5]),
};
const image: Tensor = {
  name: 'image',
  datatype: 'FP32',
  shape: [1, 3, 32, 32],
  data: Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i) / 2),
};

describe('npm start: the local gateway over real HTTP', () => {
  it('serves health, server metadata and the repository index of the seeded examples', async () => {
    const live = await fetch(`${stack.gatewayUrl}/v2/health/live`);
    const server = await (await fetch(`${stack.gatewayUrl}/v2`)).json();
    const index = await (await fetch(`${stack.gatewayUrl}/v2/repository/index`, { method: 'POST' })).json();

    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ live: true });
    expect(server).toMatchObject({
      name: 'onnx-serverless',
      extensions: expect.arrayContaining(['binary_tensor_data', 'model_configuration']),
    });
    expect(index).toEqual(
      ['cnn', 'detector', 'iris', 'linear', 'text-labels'].map((name) => ({
        name,
        version: '1',
        state: 'READY',
        reason: '',
      })),
    );
  });

  it('describes a model with V2 datatypes and -1 for dynamic dimensions, with and without /versions', async () => {
    const latest = await (await fetch(`${stack.gatewayUrl}/v2/models/iris`)).json();
    const pinned = await (await fetch(`${stack.gatewayUrl}/v2/models/iris/versions/1`)).json();
    const ready = await fetch(`${stack.gatewayUrl}/v2/models/iris/versions/1/ready`);

    expect(latest).toMatchObject({
      name: 'iris',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ],
    });
    expect(pinned).toEqual(latest);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ name: 'iris', ready: true });
  });

  it.each([
    ['linear', [features]],
    ['iris', [features]],
    ['cnn', [image]],
    ['text-labels', [{ name: 'text', datatype: 'BYTES', shape: [3], data: ['cat', 'pájaro', 'unicorn'] } as Tensor]],
  ])("V2 JSON to %s returns onnxruntime's own numbers", async (model, inputs) => {
    const response = await infer(model as string, inputs as Tensor[], { id: `req-${model as string}` });

    expect(response).toMatchObject({ modelName: model, modelVersion: '1', id: `req-${model as string}` });
    expectSameAsDirect(response.outputs, await direct(model as string, inputs as Tensor[]));
  });

  it("binary extension in and out returns onnxruntime's own numbers, bit for bit", async () => {
    const response = await infer('cnn', [image], { binary: true, binaryOutput: true });

    expectSameAsDirect(response.outputs, await direct('cnn', [image]));
  });

  it('mixes forms: binary input, one JSON output, pinned version', async () => {
    const request = encodeInferenceRequest([features], {
      binary: true,
      outputs: [{ name: 'probabilities', binary: false }],
    });
    const raw = await post('/v2/models/iris/versions/1/infer', request.body, { ...request.headers });
    const response = decodeInferenceResponse(raw.body, raw.headers);

    expect(raw.headers['content-type']).toContain('application/json');
    expect(response.outputs.map((o) => o.name)).toEqual(['probabilities']);
    expectSameAsDirect(response.outputs, { probabilities: (await direct('iris', [features])).probabilities! });
  });

  const json = { 'content-type': 'application/json' };
  const valid = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
  it.each([
    ['malformed JSON', 'linear', '{"inputs": [', 400, /not valid JSON/],
    ['unknown model', 'no-such-model', valid, 404, /unknown model "no-such-model"/],
    ['missing input', 'linear', JSON.stringify({ inputs: [] }), 400, /missing input "x"/],
    [
      'unknown input',
      'linear',
      JSON.stringify({ inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
      400,
      /unknown input "z"/,
    ],
    [
      'wrong datatype',
      'linear',
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
      400,
      /must be FP32, got INT32/,
    ],
    [
      'data length not matching the shape',
      'linear',
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4] }] }),
      400,
      /8 elements/,
    ],
    [
      'negative dimension',
      'linear',
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4], data: [1, 2, 3, 4] }] }),
      400,
      /shape/,
    ],
    [
      'wrong fixed dimension',
      'linear',
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }),
      400,
      /takes \[-1, 4\]/,
    ],
    [
      'unknown output',
      'linear',
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
        outputs: [{ name: 'nope' }],
      }),
      400,
      /unknown output "nope"/,
    ],
    ['unknown version', 'linear/versions/9', valid, 404, /no version "9"/],
  ])(
    '%s: %i with an actionable error, and the next valid request succeeds',
    async (_, model, body, status, message) => {
      const bad = await post(`/v2/models/${model}/infer`, body, json);
      const good = await post('/v2/models/linear/infer', valid, json);

      expect(bad.status).toBe(status);
      const error = JSON.parse(new TextDecoder().decode(bad.body)) as { error: string };
      expect(Object.keys(error)).toEqual(['error']);
      expect(error.error).toMatch(message);
      expect(showsInternals(error.error), error.error).toBe(false);
      expect(good.status).toBe(200);
    },
  );

  it('answers 405 for a wrong method and reads JSON under any content type, as Triton does', async () => {
    const wrongMethod = await fetch(`${stack.gatewayUrl}/v2/models/linear/infer`);
    const otherType = await post('/v2/models/linear/infer', valid, { 'content-type': 'text/plain' });

    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(otherType.status).toBe(200);
  });

  it("the 640x640 detector example answers the README's JPEG (models/photo.jpg) as onnxruntime does its tensor", async () => {
    // Prepare: the catalog entry (models/detector.json) declares letterbox preprocessing, which registration applied
    // to the seed; the oracle feeds the same preprocessing to onnxruntime directly (the preprocessing itself is
    // proven against a reference in test/image/).
    const photo = await readFile(path.join('models', 'photo.jpg'));
    const { createSharpImageDecoder } = await import('../../functions/adapters/sharp-image-decoder.js');
    const { decodeImageOptions, imageToTensor, parsePreprocess } = await import('../../functions/core/image/index.js');
    const { DEFAULT_LIMITS } = await import('../../functions/core/catalog.js');
    const entry = JSON.parse(await readFile(path.join('models', 'detector.json'), 'utf8'));
    const parsed = parsePreprocess(entry.preprocess);
    if (!parsed.ok) throw new Error(parsed.message);
    const pixels = await createSharpImageDecoder().decode(
      photo,
      decodeImageOptions({ ...DEFAULT_LIMITS, maxImagePixels: 1e8 }, { mediaType: 'image/jpeg' }),
    );
    const { tensor } = imageToTensor(pixels, parsed.value.images['images']!, 'images', 'FP32');

    // Act
    const response = await post('/v2/models/detector/infer', photo, { 'content-type': 'image/jpeg' });

    // Assess
    expect(response.status, new TextDecoder().decode(response.body).slice(0, 300)).toBe(200);
    const headerLength = Number(response.headers['inference-header-content-length']);
    const header = JSON.parse(new TextDecoder().decode(response.body.subarray(0, headerLength)));
    expect(header.parameters.image).toEqual({
      original_size: [720, 1280],
      scale: 0.5,
      pad: [140, 0],
      size: [640, 640],
    });
    expectSameAsDirect(
      decodeInferenceResponse(response.body, response.headers).outputs,
      await direct('detector', [tensor]),
    );
  });
});
