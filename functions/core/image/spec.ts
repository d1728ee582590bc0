/**
 * Declared image preprocessing: the `preprocess.images` section of a model's sidecar (`uploads/<m>/<file>.onnx.json`)
 * and of its catalog entry, keyed by input name. The schema is the single definition of every setting and default;
 * `input-fit.ts` says whether a declaration fits the input it names. This module names no other module of ours:
 * `types.ts` imports {@link Preprocess} from it for the model metadata.
 */
import { z } from 'zod';

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
