/**
 * Image preprocessing against an independent reference: the test draws the pixels itself, encodes them with libvips,
 * sends the bytes through the real decoder and the core math, and recomputes every tensor value from its own pixels
 * with a straightforward per-element implementation of the README's formulas. PNG is lossless, so the tensors must be
 * bit-for-bit equal; JPEG is lossy, so it is compared within a stated tolerance.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createSharpImageDecoder } from '../../functions/adapters/sharp-image-decoder.js';
import { float16BitsToFloat32 } from '../../functions/core/codec/index.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import {
  checkImagePreprocess,
  decodeImageOptions,
  imageGeometry,
  imageToTensor,
  parsePreprocess,
  type ImagePreprocess,
  type RgbImage,
} from '../../functions/core/image/index.js';
import { createPrng } from '../../tools/onnx/prng.js';

const decoder = createSharpImageDecoder();

/** A photo-like test card: smooth gradients, a few hard edges, mild noise. */
function card(width: number, height: number, seed = 7): RgbImage {
  const random = createPrng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const edge = (x > width / 3 && x < width / 2) || (y > height / 2 && y < (2 * height) / 3);
      data[i] = Math.min(255, Math.floor((x * 200) / width) + Math.floor(random() * 8));
      data[i + 1] = Math.min(255, Math.floor((y * 200) / height) + Math.floor(random() * 8));
      data[i + 2] = edge ? 230 : 40;
    }
  }
  return { width, height, data };
}

function encode(image: RgbImage, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const input = sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: 3 } });
  if (format === 'png') return input.png().toBuffer();
  if (format === 'webp') return input.webp({ lossless: true }).toBuffer();
  return input.jpeg({ quality: 95 }).toBuffer();
}

function spec(json: unknown): ImagePreprocess {
  const parsed = parsePreprocess({ images: { image: json } });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value.images.image!;
}

/**
 * The reference: one tensor element at a time, from the source pixels, as the README states the arithmetic
 * (bilinear with half-pixel centres, letterbox padding, (v × scale − mean) / std, layout), with no tables.
 */
function reference(image: RgbImage, s: ImagePreprocess): { shape: number[]; values: number[] } {
  let H: number, W: number, rh: number, rw: number;
  if (Array.isArray(s.size)) {
    [H, W] = s.size;
    if (s.resize === 'stretch') [rh, rw] = [H, W];
    else {
      const r = Math.min(1, H / image.height, W / image.width);
      [rh, rw] = [Math.round(image.height * r), Math.round(image.width * r)];
    }
  } else {
    const m = s.size.multiple_of;
    const r = Math.min(1, s.size.max_side / Math.max(image.height, image.width));
    if (s.resize === 'stretch') {
      H = rh = Math.max(m, Math.round((image.height * r) / m) * m);
      W = rw = Math.max(m, Math.round((image.width * r) / m) * m);
    } else {
      [rh, rw] = [Math.round(image.height * r), Math.round(image.width * r)];
      [H, W] = [Math.ceil(rh / m) * m, Math.ceil(rw / m) * m];
    }
  }
  const top = Math.floor((H - rh) / 2);
  const left = Math.floor((W - rw) / 2);
  const pixel = (x: number, y: number, ch: number) => image.data[(y * image.width + x) * 3 + ch]!;
  const values: number[] = new Array(H * W * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        const ch = s.channel_order === 'RGB' ? c : 2 - c;
        let v: number;
        const inside = y >= top && y < top + rh && x >= left && x < left + rw;
        if (!inside) v = s.pad;
        else {
          const sx = Math.max(0, (x - left + 0.5) * (image.width / rw) - 0.5);
          const sy = Math.max(0, (y - top + 0.5) * (image.height / rh) - 0.5);
          const x0 = Math.min(Math.floor(sx), image.width - 1);
          const y0 = Math.min(Math.floor(sy), image.height - 1);
          const x1 = Math.min(x0 + 1, image.width - 1);
          const y1 = Math.min(y0 + 1, image.height - 1);
          const upper = pixel(x0, y0, ch) + (pixel(x1, y0, ch) - pixel(x0, y0, ch)) * (sx - x0);
          const lower = pixel(x0, y1, ch) + (pixel(x1, y1, ch) - pixel(x0, y1, ch)) * (sx - x0);
          v = upper + (lower - upper) * (sy - y0);
        }
        const index = s.layout === 'NCHW' ? c * H * W + y * W + x : (y * W + x) * 3 + c;
        values[index] = (v * s.scale - s.mean[c]!) / s.std[c]!;
      }
    }
  }
  return { shape: s.layout === 'NCHW' ? [1, 3, H, W] : [1, H, W, 3], values };
}

/** 'none', or where two tensors first differ (a readable failure instead of a million-element diff). */
function firstDifference(got: Float32Array, want: Float32Array): string {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  if (
    Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(
      Buffer.from(want.buffer, want.byteOffset, want.byteLength),
    )
  )
    return 'none';
  const i = got.findIndex((v, k) => !Object.is(v, want[k]));
  return `element ${i}: ${got[i]} vs ${want[i]}`;
}

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

describe('image preprocessing against an independent reference', () => {
  const cases: { name: string; width: number; height: number; spec: unknown }[] = [
    { name: 'letterbox 1280x720 -> 640x640 (YOLO)', width: 1280, height: 720, spec: { size: [640, 640] } },
    {
      name: 'letterbox of a small image: placed unresampled',
      width: 300,
      height: 200,
      spec: { size: [640, 640], pad: 0 },
    },
    {
      name: 'stretch, BGR, ImageNet mean/std, NHWC',
      width: 333,
      height: 251,
      spec: { size: [224, 224], resize: 'stretch', channel_order: 'BGR', layout: 'NHWC', ...IMAGENET },
    },
    {
      name: 'keep ratio to a multiple of 32 (PP-OCR det)',
      width: 1280,
      height: 720,
      spec: { size: { multiple_of: 32, max_side: 960 }, resize: 'stretch', channel_order: 'BGR', ...IMAGENET },
    },
    {
      name: 'letterbox to a multiple of 32, upscaling never',
      width: 500,
      height: 130,
      spec: { size: { multiple_of: 32 } },
    },
  ];

  for (const c of cases) {
    it(`PNG: ${c.name}: bit-for-bit`, async () => {
      // Prepare
      const image = card(c.width, c.height);
      const s = spec(c.spec);
      // Act
      const decoded = await decoder.decode(
        await encode(image, 'png'),
        decodeImageOptions({ ...DEFAULT_LIMITS, maxImagePixels: 1e8 }, { mediaType: 'image/png' }),
      );
      const { tensor } = imageToTensor(decoded, s, 'image', 'FP32');
      // Assess
      const want = reference(image, s);
      expect(tensor.shape).toEqual(want.shape);
      expect(firstDifference(tensor.data as Float32Array, Float32Array.from(want.values))).toBe('none');
    });
  }

  it('the geometry of the common cases', () => {
    expect(imageGeometry(spec({ size: [640, 640] }), 720, 1280)).toEqual({
      height: 640,
      width: 640,
      resizedHeight: 360,
      resizedWidth: 640,
      top: 140,
      left: 0,
    });
    expect(imageGeometry(spec({ size: [640, 640] }), 200, 300)).toMatchObject({
      resizedHeight: 200,
      resizedWidth: 300,
      top: 220,
      left: 170,
    });
    expect(imageGeometry(spec({ size: { multiple_of: 32 }, resize: 'stretch' }), 720, 1280)).toMatchObject({
      height: 544,
      width: 960,
    });
    expect(imageGeometry(spec({ size: { multiple_of: 32 }, resize: 'stretch' }), 10, 10)).toMatchObject({
      height: 32,
      width: 32,
    });
  });

  it('JPEG (quality 95, 4:2:0): within 1.5/255 on average and 48/255 at worst of the drawn pixels', async () => {
    // The tolerance is JPEG's own loss on this card (hard colour edges are where chroma subsampling errs most),
    // not the pipeline's: the same pipeline on PNG is exact above. Measured here: mean 0.51/255, worst 39.3/255.
    const image = card(1280, 720);
    const s = spec({ size: [640, 640] });
    const decoded = await decoder.decode(
      await encode(image, 'jpeg'),
      decodeImageOptions({ ...DEFAULT_LIMITS, maxImagePixels: 1e8 }, { mediaType: 'image/jpeg' }),
    );
    const got = imageToTensor(decoded, s, 'image', 'FP32').tensor.data as Float32Array;
    const want = reference(image, s).values;
    let sum = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i]! - want[i]!) * 255;
      sum += d;
      worst = Math.max(worst, d);
    }
    expect(sum / want.length).toBeLessThan(1.5);
    expect(worst).toBeLessThan(48);
    expect(worst).toBeGreaterThan(0); // it really is the lossy path
  });

  it('WebP (lossless) is exact; FP16 and UINT8 inputs get the same values in their types', async () => {
    const image = card(200, 120);
    const decoded = await decoder.decode(
      await encode(image, 'webp'),
      decodeImageOptions({ ...DEFAULT_LIMITS, maxImagePixels: 1e8 }, { mediaType: 'image/webp' }),
    );
    expect(Buffer.from(decoded.data).equals(Buffer.from(image.data))).toBe(true);
    const s = spec({ size: [96, 96], ...IMAGENET });
    const want = reference(image, s).values;
    const half = imageToTensor(decoded, s, 'image', 'FP16').tensor.data as Uint16Array;
    // Round to nearest: within half an FP16 ulp (2^-11 relative) of the exact value.
    let halfWorst = 0;
    for (let i = 0; i < want.length; i++) {
      halfWorst = Math.max(
        halfWorst,
        Math.abs(float16BitsToFloat32(half[i]!) - want[i]!) / Math.max(Math.abs(want[i]!), 2 ** -14),
      );
    }
    expect(halfWorst).toBeLessThanOrEqual(2 ** -11);
    const raw = spec({ size: [96, 96], scale: 1, pad: 0 });
    const bytes = imageToTensor(decoded, raw, 'image', 'UINT8').tensor.data as Uint8Array;
    const exact = reference(image, raw).values;
    // Rounding of values that are a tie in exact arithmetic may go either way by float error: at most 1 apart.
    let off = 0;
    for (let i = 0; i < exact.length; i++) off = Math.max(off, Math.abs(bytes[i]! - Math.round(exact[i]!)));
    expect(off).toBeLessThanOrEqual(1);
  });
});

describe('declarations checked against the input they name', () => {
  const input = (datatype: 'FP32' | 'INT64' | 'UINT8', shape: number[]) =>
    [{ name: 'image', datatype, shape }] as const;
  const check = (
    json: unknown,
    inputs: readonly { name: string; datatype: 'FP32' | 'INT64' | 'UINT8'; shape: readonly number[] }[],
  ) => {
    const parsed = parsePreprocess({ images: { image: json } });
    if (!parsed.ok) return [parsed.message];
    return checkImagePreprocess(parsed.value, inputs);
  };

  it('accepts what fits', () => {
    expect(check({ size: [640, 640] }, input('FP32', [1, 3, 640, 640]))).toEqual([]);
    expect(check({ size: [640, 640] }, input('FP32', [-1, 3, -1, -1]))).toEqual([]);
    expect(check({ size: { multiple_of: 32 } }, input('FP32', [-1, 3, -1, -1]))).toEqual([]);
    expect(check({ size: [224, 224], layout: 'NHWC', scale: 1 }, input('UINT8', [1, 224, 224, 3]))).toEqual([]);
  });

  it.each([
    [{ size: [640, 640] }, input('FP32', [1, 3, 320, 320]), /size \[640, 640\].*does not fit/],
    [{ size: [640, 640] }, input('INT64', [1, 3, 640, 640]), /not FP32, FP16 or UINT8/],
    [{ size: [640, 640] }, input('FP32', [1, 640, 640, 3]), /640 channels.*layout/],
    [{ size: [640, 640] }, input('FP32', [4, 3, 640, 640]), /batch 4/],
    [{ size: [64, 64] }, input('FP32', [1, 3, 64]), /not rank 4/],
    [{ size: { multiple_of: 32 } }, input('FP32', [1, 3, 640, 640]), /needs dynamic height and width/],
    [{ size: [64, 64] }, input('UINT8', [1, 3, 64, 64]), /UINT8.*"scale": 1/],
    [{ size: [64, 64], std: [1, 0, 1] }, input('FP32', [1, 3, 64, 64]), /std has a 0/],
    [{ size: [64, 64], resize: 'crop' }, input('FP32', [1, 3, 64, 64]), /preprocess\.images\.image\.resize/],
    [{ size: [64, 64], colour: 'RGB' }, input('FP32', [1, 3, 64, 64]), /Unrecognized key/],
  ])('refuses %j for %j with a reason', (json, inputs, reason) => {
    expect(check(json, inputs).join('; ')).toMatch(reason);
  });

  it('names an input the model does not have', () => {
    const parsed = parsePreprocess({ images: { photo: { size: [8, 8] } } });
    expect(parsed.ok && checkImagePreprocess(parsed.value, input('FP32', [1, 3, 8, 8]))).toEqual([
      'preprocess.images.photo: the model has no input "photo" (inputs: "image")',
    ]);
  });
});
