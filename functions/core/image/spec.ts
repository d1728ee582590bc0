/**
 * Declared image preprocessing: the `preprocess.images` section of a model's sidecar (`uploads/<m>/<file>.onnx.json`)
 * and of its catalog entry, keyed by input name. The schema is the single definition of every setting and default;
 * {@link checkImagePreprocess} says whether a declaration fits the input it names.
 */
import { z } from 'zod';
import type { TensorSpec } from '../types.js';

/** A per-channel triple (`mean`, `std`), in the model's channel order. */
const triple = z.tuple([z.number(), z.number(), z.number()]);

/**
 * Keep-ratio sizing for inputs with dynamic height and width (PP-OCR detection): scale the image so that its
 * longer side is at most `max_side` (never up), then round each side to a multiple of `multiple_of`
 * (PaddleOCR's `DetResizeForTest` with `limit_type: max`).
 */
export const dynamicSizeSchema = z
  .object({
    multiple_of: z.number().int().min(1).max(1024),
    max_side: z.number().int().min(1).max(16384).default(960),
  })
  .strict();

/** One image input's preprocessing. */
export const imagePreprocessSchema = z
  .object({
    /** Tensor layout: `NCHW` (PyTorch, PaddlePaddle) or `NHWC` (TensorFlow). */
    layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
    /** `[height, width]` of the input, or keep-ratio sizing to a multiple for dynamic inputs. */
    size: z.union([
      z.tuple([z.number().int().min(1).max(16384), z.number().int().min(1).max(16384)]),
      dynamicSizeSchema,
    ]),
    /** `stretch` scales each axis on its own; `letterbox` keeps the aspect ratio and pads, centred. */
    resize: z.enum(['stretch', 'letterbox']).default('letterbox'),
    /** Pixel value (0-255, all channels) of the letterbox padding; 114 is Ultralytics' grey. */
    pad: z.number().int().min(0).max(255).default(114),
    /** Channel order the model expects (OpenCV-trained models such as PaddleOCR want `BGR`). */
    channel_order: z.enum(['RGB', 'BGR']).default('RGB'),
    /** value = (pixel × scale − mean) / std, per channel. */
    scale: z
      .number()
      .finite()
      .default(1 / 255),
    mean: triple.default([0, 0, 0]),
    std: triple.default([1, 1, 1]),
  })
  .strict();

/** A resolved {@link imagePreprocessSchema}. */
export type ImagePreprocess = z.infer<typeof imagePreprocessSchema>;

/** `preprocess` of a sidecar or catalog entry. */
export const preprocessSchema = z
  .object({
    images: z.record(z.string().min(1), imagePreprocessSchema).refine((images) => Object.keys(images).length > 0, {
      message: 'name at least one input',
    }),
  })
  .strict();

/** A resolved {@link preprocessSchema}: image preprocessing per input name. */
export type Preprocess = z.infer<typeof preprocessSchema>;

/** Input datatypes an image can be turned into. */
export const IMAGE_DATATYPES = ['FP32', 'FP16', 'UINT8'] as const;

/**
 * Parses `preprocess` JSON. Returns the resolved settings, or a message naming each offending field.
 * @example parsePreprocess({images: {image: {size: [640, 640]}}})
 */
export function parsePreprocess(json: unknown): { ok: true; value: Preprocess } | { ok: false; message: string } {
  const parsed = preprocessSchema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.map((i) => `preprocess.${i.path.join('.')}: ${i.message}`).join('; ');
  return { ok: false, message: problems };
}

/** Index of the height, width and channel dimensions in a rank-4 tensor of `layout`. */
export function imageAxes(layout: ImagePreprocess['layout']): {
  readonly h: number;
  readonly w: number;
  readonly c: number;
} {
  return layout === 'NCHW' ? { h: 2, w: 3, c: 1 } : { h: 1, w: 2, c: 3 };
}

/**
 * Checks that each declaration fits the model input it names (datatype, rank, channels, batch, fixed or dynamic
 * height and width). Returns the reasons it does not, empty when it fits.
 */
export function checkImagePreprocess(preprocess: Preprocess, inputs: readonly TensorSpec[]): string[] {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(preprocess.images)) {
    const input = inputs.find((i) => i.name === name);
    const where = `preprocess.images.${name}`;
    if (input === undefined) {
      problems.push(
        `${where}: the model has no input "${name}" (inputs: ${inputs.map((i) => `"${i.name}"`).join(', ')})`,
      );
      continue;
    }
    const declared = `"${name}" ${input.datatype} [${input.shape.join(', ')}]`;
    if (!(IMAGE_DATATYPES as readonly string[]).includes(input.datatype)) {
      problems.push(`${where}: input ${declared} is not FP32, FP16 or UINT8, so it cannot take an image`);
      continue;
    }
    if (input.shape.length !== 4) {
      problems.push(`${where}: input ${declared} is not rank 4 (${spec.layout}), so it cannot take an image`);
      continue;
    }
    const axes = imageAxes(spec.layout);
    const channels = input.shape[axes.c];
    if (channels !== 3 && channels !== -1) {
      problems.push(
        `${where}: input ${declared} has ${channels} channels at the ${spec.layout} channel axis; images have 3 (check "layout")`,
      );
    }
    const batch = input.shape[0];
    if (batch !== 1 && batch !== -1)
      problems.push(`${where}: input ${declared} has batch ${batch}; one image makes batch 1`);
    const h = input.shape[axes.h] ?? -1;
    const w = input.shape[axes.w] ?? -1;
    if (Array.isArray(spec.size)) {
      const [sh, sw] = spec.size;
      if ((h !== -1 && h !== sh) || (w !== -1 && w !== sw)) {
        problems.push(`${where}: size [${sh}, ${sw}] (height, width) does not fit input ${declared} (${spec.layout})`);
      }
    } else if (h !== -1 || w !== -1) {
      problems.push(
        `${where}: keep-ratio sizing ("multiple_of") needs dynamic height and width, but input ${declared} fixes them: declare "size": [${h}, ${w}]`,
      );
    }
    if (
      input.datatype === 'UINT8' &&
      (spec.scale !== 1 || spec.mean.some((m) => m !== 0) || spec.std.some((s) => s !== 1))
    ) {
      problems.push(
        `${where}: input ${declared} is UINT8, which holds raw pixels: set "scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1]`,
      );
    }
    if (spec.std.some((s) => s === 0)) problems.push(`${where}: std has a 0 (value = (pixel × scale − mean) / std)`);
  }
  return problems;
}
