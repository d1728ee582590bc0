/**
 * The pure image preprocessing math: geometry (stretch, letterbox, keep-ratio to a multiple), bilinear resampling,
 * per-channel normalization and layout, from decoded 8-bit RGB pixels to an input tensor. No decoder and no I/O:
 * the decoder sits behind the {@link ImageDecoder} port, so core stays free of native code.
 *
 * The arithmetic is part of the contract (the README states it, and tests recompute it independently):
 * - resampling is bilinear with half-pixel centres and no antialiasing, as OpenCV's `cv2.resize(INTER_LINEAR)`
 *   that YOLO and PaddleOCR pipelines use: destination column `x` samples source column
 *   `sx = max(0, (x + 0.5) × (w / rw) − 0.5)`, between `x0 = floor(sx)` and `x1 = min(x0 + 1, w − 1)`, weight
 *   `tx = sx − x0` (rows alike); `top = p00 + (p01 − p00) × tx`, `bottom = p10 + (p11 − p10) × tx`,
 *   `v = top + (bottom − top) × ty`, in doubles. At scale 1 every weight is 0, so pixels are copied unchanged.
 * - value = (v × scale − mean[c]) / std[c] in doubles, then stored as FP32 or FP16 (round to nearest even); UINT8
 *   stores `floor(v + 0.5)`.
 */
import { float32ToFloat16Bits } from '../codec/datatypes.js';
import type { Tensor } from '../types.js';
import type { ImagePreprocess } from './spec.js';

/** Decoded pixels: 8-bit RGB, interleaved, row-major, no padding between rows. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** `width × height × 3` bytes, R, G, B per pixel. */
  readonly data: Uint8Array;
}

/** Where the image lands in the tensor. */
export interface ImageGeometry {
  /** Height and width of the tensor's image plane. */
  readonly height: number;
  readonly width: number;
  /** Size of the resampled image inside it. */
  readonly resizedHeight: number;
  readonly resizedWidth: number;
  /** Padding above and left of the resampled image (letterbox). */
  readonly top: number;
  readonly left: number;
}

/**
 * What a client needs to map tensor coordinates back to the original image:
 * `original = (tensor − pad) / scale` (per axis when `scale` is `[y, x]`, as `stretch` gives).
 */
export interface ImagePlacement {
  /** `[height, width]` of the decoded image. */
  readonly original_size: [number, number];
  /** Letterbox: one factor; stretch: `[y, x]`. */
  readonly scale: number | [number, number];
  /** `[top, left]` padding in tensor pixels. */
  readonly pad: [number, number];
  /** `[height, width]` of the tensor's image plane (differs per image with keep-ratio sizing). */
  readonly size: [number, number];
}

/** The tensor geometry for an image of `height × width` under `spec`. */
export function imageGeometry(spec: ImagePreprocess, height: number, width: number): ImageGeometry {
  if (Array.isArray(spec.size)) {
    const [H, W] = spec.size;
    if (spec.resize === 'stretch') return { height: H, width: W, resizedHeight: H, resizedWidth: W, top: 0, left: 0 };
    // Letterbox never scales up: an image that fits at scale 1 is placed as it is, with no resampling.
    const r = Math.min(1, H / height, W / width);
    const rh = clamp(Math.round(height * r), 1, H);
    const rw = clamp(Math.round(width * r), 1, W);
    return { height: H, width: W, resizedHeight: rh, resizedWidth: rw, top: (H - rh) >> 1, left: (W - rw) >> 1 };
  }
  const m = spec.size.multiple_of;
  const r = Math.min(1, spec.size.max_side / Math.max(height, width));
  if (spec.resize === 'stretch') {
    // PaddleOCR's DetResizeForTest: each side rounded to the nearest multiple, at least one multiple.
    const H = Math.max(m, Math.round((height * r) / m) * m);
    const W = Math.max(m, Math.round((width * r) / m) * m);
    return { height: H, width: W, resizedHeight: H, resizedWidth: W, top: 0, left: 0 };
  }
  const rh = Math.max(1, Math.round(height * r));
  const rw = Math.max(1, Math.round(width * r));
  const H = Math.ceil(rh / m) * m;
  const W = Math.ceil(rw / m) * m;
  return { height: H, width: W, resizedHeight: rh, resizedWidth: rw, top: (H - rh) >> 1, left: (W - rw) >> 1 };
}

/** The placement reported to the client for `geometry`. */
export function imagePlacement(
  spec: ImagePreprocess,
  image: { height: number; width: number },
  geometry: ImageGeometry,
): ImagePlacement {
  const sy = geometry.resizedHeight / image.height;
  const sx = geometry.resizedWidth / image.width;
  return {
    original_size: [image.height, image.width],
    scale: spec.resize === 'letterbox' ? Math.min(sy, sx) : [sy, sx],
    pad: [geometry.top, geometry.left],
    size: [geometry.height, geometry.width],
  };
}

/** Element count of the tensor an image of `height × width` becomes (checked against limits before allocating). */
export function imageTensorElements(spec: ImagePreprocess, height: number, width: number): number {
  const g = imageGeometry(spec, height, width);
  return g.height * g.width * 3;
}

/**
 * Turns decoded pixels into the input tensor `name` of `datatype` (FP32, FP16 or UINT8), batch 1.
 * @example imageToTensor(rgb, spec, 'images', 'FP32').tensor.shape // [1, 3, 640, 640]
 */
export function imageToTensor(
  image: RgbImage,
  spec: ImagePreprocess,
  name: string,
  datatype: 'FP32' | 'FP16' | 'UINT8',
): { tensor: Tensor; placement: ImagePlacement } {
  const g = imageGeometry(spec, image.height, image.width);
  const plane = g.height * g.width;
  const values = datatype === 'FP32' ? new Float32Array(plane * 3) : new Float64Array(plane * 3);
  const nchw = spec.layout === 'NCHW';
  const channelStride = nchw ? plane : 1;
  const pixelStride = nchw ? 1 : 3;
  const raw = datatype === 'UINT8';
  // Output channel c reads source channel source[c]; mean and std are in the model's order.
  const source = spec.channel_order === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  const { scale, mean, std } = spec;
  const normalize = (v: number, c: number): number => (raw ? Math.floor(v + 0.5) : (v * scale - mean[c]!) / std[c]!);

  if (g.resizedHeight !== g.height || g.resizedWidth !== g.width) {
    for (let c = 0; c < 3; c++) {
      const padValue = normalize(spec.pad, c);
      if (nchw) fillOutside(values, c * plane, g, padValue);
      else for (let i = c; i < values.length; i += 3) values[i] = padValue;
    }
  }

  const { width: w, height: h, data } = image;
  const rw = g.resizedWidth;
  const rh = g.resizedHeight;
  const x0 = new Int32Array(rw);
  const x1 = new Int32Array(rw);
  const tx = new Float64Array(rw);
  const ratioX = w / rw;
  for (let x = 0; x < rw; x++) {
    const sx = Math.max(0, (x + 0.5) * ratioX - 0.5);
    const i = Math.min(Math.floor(sx), w - 1);
    x0[x] = i * 3;
    x1[x] = Math.min(i + 1, w - 1) * 3;
    tx[x] = sx - i;
  }
  // The same plan for rows: the offsets of the two source rows and the vertical weight of each output row.
  const y0 = new Int32Array(rh);
  const y1 = new Int32Array(rh);
  const ty = new Float64Array(rh);
  const ratioY = h / rh;
  for (let y = 0; y < rh; y++) {
    const sy = Math.max(0, (y + 0.5) * ratioY - 0.5);
    const j = Math.min(Math.floor(sy), h - 1);
    y0[y] = j * w * 3;
    y1[y] = Math.min(j + 1, h - 1) * w * 3;
    ty[y] = sy - j;
  }
  const [s0, s1, s2] = source as [number, number, number];
  // Unrolled per channel, constants in locals: this loop is most of an image request's CPU time.
  const k = raw ? 0 : scale;
  const [m0, m1, m2] = raw ? [0, 0, 0] : mean;
  const [d0, d1, d2] = raw ? [1, 1, 1] : std;
  const cs1 = channelStride;
  const cs2 = 2 * channelStride;
  if (datatype === 'FP32' && nchw) {
    // Every detector and OCR model: a loop of its own (monomorphic Float32Array stores, planar offsets, no per-pixel
    // branch) takes about a sixth less time than the general one below, with bit-identical values.
    const rows = { x0, x1, tx, y0, y1, ty, rh, rw, top: g.top, left: g.left, width: g.width, plane };
    resampleNchwFloat32(data, values as Float32Array, rows, [s0, s1, s2], k, [m0, m1, m2], [d0, d1, d2]);
  } else {
    for (let y = 0; y < rh; y++) {
      const row0 = y0[y]!;
      const row1 = y1[y]!;
      const v = ty[y]!;
      const outRow = ((g.top + y) * g.width + g.left) * pixelStride;
      for (let x = 0; x < rw; x++) {
        const a = row0 + x0[x]!;
        const b = row0 + x1[x]!;
        const c = row1 + x0[x]!;
        const d = row1 + x1[x]!;
        const u = tx[x]!;
        const o = outRow + x * pixelStride;
        let p00 = data[a + s0]!;
        let p10 = data[c + s0]!;
        let top = p00 + (data[b + s0]! - p00) * u;
        let v0 = top + (p10 + (data[d + s0]! - p10) * u - top) * v;
        p00 = data[a + s1]!;
        p10 = data[c + s1]!;
        top = p00 + (data[b + s1]! - p00) * u;
        let v1 = top + (p10 + (data[d + s1]! - p10) * u - top) * v;
        p00 = data[a + s2]!;
        p10 = data[c + s2]!;
        top = p00 + (data[b + s2]! - p00) * u;
        let v2 = top + (p10 + (data[d + s2]! - p10) * u - top) * v;
        if (raw) {
          v0 = Math.floor(v0 + 0.5);
          v1 = Math.floor(v1 + 0.5);
          v2 = Math.floor(v2 + 0.5);
        } else {
          v0 = (v0 * k - m0) / d0;
          v1 = (v1 * k - m1) / d1;
          v2 = (v2 * k - m2) / d2;
        }
        values[o] = v0;
        values[o + cs1] = v1;
        values[o + cs2] = v2;
      }
    }
  }

  const shape = nchw ? [1, 3, g.height, g.width] : [1, g.height, g.width, 3];
  const placement = imagePlacement(spec, image, g);
  if (datatype === 'FP32') return { tensor: { name, datatype, shape, data: values as Float32Array }, placement };
  if (datatype === 'UINT8') return { tensor: { name, datatype, shape, data: Uint8Array.from(values) }, placement };
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = float32ToFloat16Bits(values[i]!);
  return { tensor: { name, datatype, shape, data: half }, placement };
}

/**
 * A deterministic test card (gradients and a checkerboard) of `height × width`: the smoke-test image of a
 * registration whose sidecar declares `preprocess` without a sample request.
 */
export function syntheticImage(height: number, width: number): RgbImage {
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.floor((x * 255) / Math.max(1, width - 1));
      data[i + 1] = Math.floor((y * 255) / Math.max(1, height - 1));
      data[i + 2] = ((x >> 4) + (y >> 4)) % 2 === 0 ? 230 : 25;
    }
  }
  return { width, height, data };
}

/** Where the resampled rows land, and the column tables of the resampling (see {@link imageToTensor}). */
interface RowPlan {
  readonly x0: Int32Array;
  readonly x1: Int32Array;
  readonly tx: Float64Array;
  readonly y0: Int32Array;
  readonly y1: Int32Array;
  readonly ty: Float64Array;
  readonly rh: number;
  readonly rw: number;
  readonly top: number;
  readonly left: number;
  readonly width: number;
  readonly plane: number;
}

/**
 * The resampling and normalization of {@link imageToTensor} for FP32 NCHW: the same arithmetic, operation for
 * operation (the bilinear weights in doubles, then `(v × scale − mean) / std`), so the values are bit-identical.
 */
function resampleNchwFloat32(
  data: Uint8Array,
  out: Float32Array,
  plan: RowPlan,
  source: readonly [number, number, number],
  k: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): void {
  const { x0, x1, tx, y0, y1, ty, rh, rw, top, left, width, plane } = plan;
  const [s0, s1, s2] = source;
  const [m0, m1, m2] = mean;
  const [d0, d1, d2] = std;
  const plane2 = 2 * plane;
  for (let y = 0; y < rh; y++) {
    const row0 = y0[y]!;
    const row1 = y1[y]!;
    const v = ty[y]!;
    let o = (top + y) * width + left;
    for (let x = 0; x < rw; x++, o++) {
      const a = row0 + x0[x]!;
      const b = row0 + x1[x]!;
      const c = row1 + x0[x]!;
      const e = row1 + x1[x]!;
      const u = tx[x]!;
      let p00 = data[a + s0]!;
      let p10 = data[c + s0]!;
      let t = p00 + (data[b + s0]! - p00) * u;
      const v0 = (t + (p10 + (data[e + s0]! - p10) * u - t) * v) * k - m0;
      p00 = data[a + s1]!;
      p10 = data[c + s1]!;
      t = p00 + (data[b + s1]! - p00) * u;
      const v1 = (t + (p10 + (data[e + s1]! - p10) * u - t) * v) * k - m1;
      p00 = data[a + s2]!;
      p10 = data[c + s2]!;
      t = p00 + (data[b + s2]! - p00) * u;
      const v2 = (t + (p10 + (data[e + s2]! - p10) * u - t) * v) * k - m2;
      out[o] = v0 / d0;
      out[o + plane] = v1 / d1;
      out[o + plane2] = v2 / d2;
    }
  }
}

/** Fills one NCHW channel plane starting at `offset` with `value`, except the rectangle the image lands in. */
function fillOutside(values: Float32Array | Float64Array, offset: number, g: ImageGeometry, value: number): void {
  const { width, height, top, left, resizedHeight, resizedWidth } = g;
  values.fill(value, offset, offset + top * width);
  values.fill(value, offset + (top + resizedHeight) * width, offset + height * width);
  if (resizedWidth === width) return;
  for (let y = top; y < top + resizedHeight; y++) {
    const row = offset + y * width;
    values.fill(value, row, row + left);
    values.fill(value, row + left + resizedWidth, row + width);
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
