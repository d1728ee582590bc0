/**
 * Images inside a V2 request: a BYTES element holding the image file, for a model with several inputs, over real
 * HTTP through the local API Gateway to the real `infer` handler, on models registered by the real `register`
 * handler. The model multiplies the image by its second input, so the answer is the preprocessed tensor times a
 * number the request chose: both inputs must arrive. The expected tensor is computed here from the drawn pixels
 * (PNG is lossless, and the image fits at scale 1, so every value is a pixel / 255).
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInferenceResponse } from '../../functions/core/codec/index.js';
import { buildImageGainModel } from '../../tools/onnx/index.js';
import { identityModel, showsInternals, startHardened, type Answer, type HardenedStack } from '../hardening/fixture.js';

const SIZE = 32;
const LETTERBOX = { size: [SIZE, SIZE], resize: 'letterbox', pad: 0 };

let stack: HardenedStack;

/** A `width × height` PNG whose pixel (x, y) is `[x * 7, y * 5, seed]`. */
async function png(width: number, height: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x * 7, y * 5, seed], (y * width + x) * 3);
  return sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** The letterboxed NCHW tensor of {@link png}`(width, height, seed)` in a SIZE × SIZE plane with padding 0. */
function expectedTensor(width: number, height: number, seed: number): Float32Array {
  const out = new Float32Array(3 * SIZE * SIZE);
  const top = (SIZE - height) >> 1;
  const left = (SIZE - width) >> 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (top + y) * SIZE + left + x;
      out[o] = (x * 7) / 255;
      out[SIZE * SIZE + o] = (y * 5) / 255;
      out[2 * SIZE * SIZE + o] = seed / 255;
    }
  }
  return out;
}

/** The binary extension: `images` as BYTES `[N]` (4-byte length + file per element), `gain` as FP32 `[1]`. */
function binaryRequest(images: readonly Uint8Array[], gain: number, extra: Record<string, unknown> = {}) {
  const framed = Buffer.concat(
    images.flatMap((image) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(image.byteLength);
      return [length, Buffer.from(image)];
    }),
  );
  const gainBytes = Buffer.from(new Float32Array([gain]).buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'images', datatype: 'BYTES', shape: [images.length], parameters: { binary_data_size: framed.length } },
        { name: 'gain', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } },
      ],
      ...extra,
    }),
  );
  return {
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
    body: Buffer.concat([header, framed, gainBytes]),
  };
}

const infer = (model: string, request: { headers: Record<string, string>; body: Uint8Array | string }) =>
  stack.send({ method: 'POST', path: `/v2/models/${model}/infer`, ...request });

function answered(answer: Answer) {
  expect(answer.status, answer.text.slice(0, 400)).toBe(200);
  const length = Number(answer.headers['inference-header-content-length'] ?? answer.bytes.byteLength);
  const header = JSON.parse(answer.bytes.subarray(0, length).toString('utf8'));
  const [y] = decodeInferenceResponse(answer.bytes, answer.headers as Record<string, string>).outputs;
  return { parameters: header.parameters, y: y! };
}

function expectScaled(actual: Float32Array, expected: Float32Array, gain: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== Math.fround(Math.fround(expected[i]!) * gain)) {
      expect.fail(`element ${i}: ${actual[i]} instead of ${Math.fround(expected[i]!) * gain}`);
    }
  }
}

beforeAll(async () => {
  // maxElements: three 32 x 32 images and the gain fit (9,217 elements), four do not.
  stack = await startHardened({ MODEL_LIMITS: JSON.stringify({ maxImagePixels: 1_000_000, maxElements: 10_000 }) });
  const sidecar = { preprocess: { images: { images: LETTERBOX } } };
  for (const [model, bytes] of [
    ['gain', buildImageGainModel(SIZE, SIZE)],
    ['gain-batch', buildImageGainModel(SIZE, SIZE, 'N')],
  ] as const) {
    expect(await stack.register(model, 'model.onnx', bytes, sidecar)).toMatchObject({ kind: 'registered' });
  }
  // The same shapes without declared preprocessing: its BYTES stay text, as for every other model.
  expect(await stack.register('gain-plain', 'model.onnx', buildImageGainModel(SIZE, SIZE))).toMatchObject({
    kind: 'registered',
  });
});

afterAll(async () => {
  await stack?.close();
});

describe('an image in a BYTES element, next to other inputs', () => {
  it('binary extension: the file is decoded, preprocessed and fed with the other input', async () => {
    const image = await png(24, 16, 200);
    const { parameters, y } = answered(await infer('gain', binaryRequest([image], 2)));
    expect(y.shape).toEqual([1, 3, SIZE, SIZE]);
    expectScaled(y.data as Float32Array, expectedTensor(24, 16, 200), 2);
    const placement = { original_size: [16, 24], scale: 1, pad: [8, 4], size: [SIZE, SIZE] };
    expect(parameters).toEqual({ image: placement, images: { images: [placement] } });
  });

  it('a batch of N images in one BYTES tensor of shape [N] becomes [N, 3, H, W], one placement each', async () => {
    const images = [await png(24, 16, 10), await png(32, 8, 250), await png(10, 30, 99)];
    const { parameters, y } = answered(await infer('gain-batch', binaryRequest(images, 0.5)));
    expect(y.shape).toEqual([3, 3, SIZE, SIZE]);
    const data = y.data as Float32Array;
    const plane = 3 * SIZE * SIZE;
    expectScaled(data.subarray(0, plane), expectedTensor(24, 16, 10), 0.5);
    expectScaled(data.subarray(plane, 2 * plane), expectedTensor(32, 8, 250), 0.5);
    expectScaled(data.subarray(2 * plane), expectedTensor(10, 30, 99), 0.5);
    expect(parameters.image).toBeUndefined();
    expect(parameters.images.images.map((p: { pad: number[] }) => p.pad)).toEqual([
      [8, 4],
      [12, 0],
      [1, 11],
    ]);
  });

  it('V2 JSON: the file base64-encoded in the BYTES element gives the same answer', async () => {
    const image = await png(24, 16, 200);
    const body = JSON.stringify({
      inputs: [
        { name: 'images', datatype: 'BYTES', shape: [1], data: [image.toString('base64')] },
        { name: 'gain', datatype: 'FP32', shape: [1], data: [3] },
      ],
    });
    const answer = await infer('gain', { headers: { 'content-type': 'application/json' }, body });
    const { parameters, y } = answered(answer);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expectScaled(y.data as Float32Array, expectedTensor(24, 16, 200), 3);
    expect(parameters.image.pad).toEqual([8, 4]);
  });

  it('a tensor the client preprocessed itself is still fed as it is', async () => {
    const tensor = expectedTensor(24, 16, 200);
    const body = JSON.stringify({
      inputs: [
        { name: 'images', datatype: 'FP32', shape: [1, 3, SIZE, SIZE], data: Array.from(tensor) },
        { name: 'gain', datatype: 'FP32', shape: [1], data: [1] },
      ],
    });
    const { parameters, y } = answered(await infer('gain', { headers: { 'content-type': 'application/json' }, body }));
    expectScaled(y.data as Float32Array, tensor, 1);
    expect(parameters).toBeUndefined();
  });
});

describe('bad images in BYTES elements: a clear 4xx, and the next request is served by the same session', () => {
  const cases: [
    string,
    () => Promise<{ model?: string; headers: Record<string, string>; body: Uint8Array | string }>,
    number,
    RegExp,
  ][] = [
    [
      'bytes that are not an image',
      async () => binaryRequest([Buffer.from('hello, world')], 1),
      400,
      /input "images", BYTES element 0: the bytes are not a readable JPEG, PNG or WebP image/,
    ],
    [
      'a GIF (not a format we decode)',
      async () =>
        binaryRequest(
          [
            await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
              .gif()
              .toBuffer(),
          ],
          1,
        ),
      400,
      /BYTES element 0: the bytes are a GIF image: send a JPEG, PNG or WebP file/,
    ],
    [
      'an image over the pixel cap',
      async () =>
        binaryRequest(
          [
            await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#fff' } })
              .png()
              .toBuffer(),
          ],
          1,
        ),
      413,
      /BYTES element 0: the image is 1200 x 1000 = 1200000 pixels, over the limit of 1000000/,
    ],
    [
      'two images for an input of batch 1',
      async () => binaryRequest([await png(8, 8, 1), await png(8, 8, 2)], 1),
      400,
      /2 images were sent, but the model's input \[1, 3, 32, 32\] takes a batch of 1: send shape \[1\]/,
    ],
    [
      'a batch whose tensor, with the other inputs, is over maxElements (checked before it is allocated)',
      async () => ({
        model: 'gain-batch',
        ...binaryRequest([await png(8, 8, 1), await png(8, 8, 2), await png(8, 8, 3), await png(8, 8, 4)], 1),
      }),
      413,
      /the images become a 4 x 32 x 32 x 3 tensor \(12288 elements, with 1 in the other inputs\), over the limit of 10000 \(limits\.maxElements\): send fewer images per request/,
    ],
    [
      'a shape other than [N]',
      async () => {
        const image = (await png(8, 8, 1)).toString('base64');
        const body = JSON.stringify({
          inputs: [
            { name: 'images', datatype: 'BYTES', shape: [1, 1, 1], data: [image] },
            { name: 'gain', datatype: 'FP32', shape: [1], data: [1] },
          ],
        });
        return { headers: { 'content-type': 'application/json' }, body };
      },
      400,
      /has shape \[N\] \(or \[N, 1\]\), one encoded image per element; got \[1, 1, 1\]/,
    ],
    [
      'JSON text that is not base64',
      async () => {
        const body = JSON.stringify({
          inputs: [
            { name: 'images', datatype: 'BYTES', shape: [1], data: ['not base64!'] },
            { name: 'gain', datatype: 'FP32', shape: [1], data: [1] },
          ],
        });
        return { headers: { 'content-type': 'application/json' }, body };
      },
      400,
      /input "images": BYTES element 0 is not base64/,
    ],
    [
      'an image to an input without declared preprocessing',
      async () => ({ model: 'gain-plain', ...binaryRequest([await png(8, 8, 1)], 1) }),
      400,
      /input "images": BYTES element 0 holds a PNG image, but this input takes text: images go to an input the model declares image preprocessing for/,
    ],
  ];

  it.each(cases)('%s', async (_name, make, status, message) => {
    const { model = 'gain', ...request } = await make();
    // Loaded first, so that the refusal is measured against a cached session.
    answered(await infer(model === 'gain-plain' ? 'gain' : model, binaryRequest([await png(8, 8, 1)], 1)));
    const loadsBefore = stack.loads.length;
    const answer = await infer(model, request);
    expect(answer.status, answer.text.slice(0, 300)).toBe(status);
    expect(JSON.parse(answer.text).error).toMatch(message);
    expect(showsInternals(answer.text)).toBe(false);
    answered(await infer('gain', binaryRequest([await png(8, 8, 1)], 1)));
    expect(stack.loads.length - loadsBefore).toBeLessThanOrEqual(model === 'gain-plain' ? 1 : 0);
  });
});

describe('unchanged for other models', () => {
  it('BYTES of a model without declared images stay UTF-8 text, NUL still refused', async () => {
    expect(await stack.register('text', 'model.onnx', identityModel('BYTES'))).toMatchObject({ kind: 'registered' });
    const body = (data: string[]) =>
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [data.length], data }] });
    const ok = await infer('text', { headers: { 'content-type': 'application/json' }, body: body(['aGk=']) });
    expect(JSON.parse(ok.text).outputs[0].data).toEqual(['aGk=']);
    const nul = await infer('text', { headers: { 'content-type': 'application/json' }, body: body(['a\u0000b']) });
    expect(nul.status).toBe(400);
  });
});
