/**
 * The port to an image decoder. Core only sees 8-bit RGB pixels; the adapter (libvips through sharp) lives in
 * `functions/adapters/`, so core, the register function and every non-image request stay free of native code.
 */
import type { Limits } from '../catalog.js';
import { PayloadTooLargeError } from '../errors.js';
import type { RgbImage } from './preprocess.js';

/** Encoded image formats a request may carry, by media type. */
export const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

/** One of {@link IMAGE_MEDIA_TYPES}. */
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

/** True when `mediaType` (lower case, without parameters) is an image type we decode. */
export function isImageMediaType(mediaType: string): mediaType is ImageMediaType {
  return (IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType);
}

/** Settings of one decode: the request's bounds on decoding (`limits.maxImagePixels` and the ones below). */
export interface DecodeImageOptions {
  /**
   * Largest width × height the request may decode in all, this image included: checked from the header before any
   * pixel is decoded.
   */
  readonly maxPixels: number;
  /** Pixels of the images this request decoded before this one (they count against `maxPixels`). @default 0 */
  readonly pixelsBefore?: number;
  /** Seconds the decode may take (`limits.imageDecodeTimeoutSeconds`). */
  readonly timeoutSeconds: number;
  /** Most scans a JPEG may have (`limits.maxJpegScans`), checked from its markers before decoding. */
  readonly maxJpegScans: number;
  /**
   * The media type the client declared: the bytes must be that format. Undefined for an image in a BYTES element,
   * which has no content type of its own: then any of {@link IMAGE_MEDIA_TYPES} is accepted.
   */
  readonly mediaType?: ImageMediaType;
}

/** The bounds of `limits` that a decode takes. */
export type DecodeLimits = Pick<Limits, 'maxImagePixels' | 'imageDecodeTimeoutSeconds' | 'maxJpegScans'>;

/**
 * The options of one decode under `limits`: the one mapping from the limits to the decoder port.
 * @example decoder.decode(bytes, decodeImageOptions(limits, { mediaType: 'image/png' }))
 */
export function decodeImageOptions(
  limits: DecodeLimits,
  extra: { readonly mediaType?: ImageMediaType; readonly pixelsBefore?: number } = {},
): DecodeImageOptions {
  return {
    maxPixels: limits.maxImagePixels,
    timeoutSeconds: limits.imageDecodeTimeoutSeconds,
    maxJpegScans: limits.maxJpegScans,
    ...extra,
  };
}

/**
 * The refusal of a `width × height` image under `options`' pixel bound, or `undefined` when it fits: the one
 * wording of that limit for every decoder.
 */
export function imagePixelsError(width: number, height: number, options: DecodeImageOptions): Error | undefined {
  const pixels = width * height;
  const before = options.pixelsBefore ?? 0;
  if (pixels + before <= options.maxPixels) return undefined;
  if (before === 0) {
    return new PayloadTooLargeError(
      `the image is ${width} x ${height} = ${pixels} pixels, over the limit of ${options.maxPixels} (limits.maxImagePixels): send a smaller image`,
    );
  }
  return new PayloadTooLargeError(
    `the image is ${width} x ${height} = ${pixels} pixels; with the ${before} pixels of the images before it in ` +
      `this request that makes ${pixels + before}, over the limit of ${options.maxPixels} pixels decoded per ` +
      'request (limits.maxImagePixels): send fewer images per request, or smaller ones',
  );
}

/** The refusal of a JPEG of `scans` scans under `options`, or `undefined` when it fits. */
export function jpegScansError(scans: number, options: DecodeImageOptions): Error | undefined {
  if (scans <= options.maxJpegScans) return undefined;
  return new PayloadTooLargeError(
    `the JPEG has ${scans} scans, over the ` +
      `limit of ${options.maxJpegScans} (limits.maxJpegScans): each progressive scan is a pass over the whole image ` +
      'before any pixel is decoded, and encoders write about 10; save it again as a baseline or standard progressive JPEG',
  );
}

/** The refusal of a decode that ran past `options.timeoutSeconds`. */
export function imageDecodeTimeoutError(options: DecodeImageOptions, cause: unknown): Error {
  return new PayloadTooLargeError(
    `decoding the image took longer than ${options.timeoutSeconds} s (limits.imageDecodeTimeoutSeconds): send a ` +
      'smaller image',
    { cause },
  );
}

/**
 * Decodes an encoded image to 8-bit sRGB pixels. Implementations throw `BadRequestError` for bytes that are not a
 * whole image of the declared type (of any accepted type when none is declared), or are animated;
 * `PayloadTooLargeError` for images over `maxPixels` ({@link imagePixelsError}) or `maxJpegScans`
 * ({@link jpegScansError}) or taking longer than `timeoutSeconds` ({@link imageDecodeTimeoutError}).
 * Grey, palette, 16-bit and CMYK images are converted to 8-bit sRGB; an alpha channel is dropped (as OpenCV's
 * `imread(IMREAD_COLOR)` does).
 */
export interface ImageDecoder {
  decode(bytes: Uint8Array, options: DecodeImageOptions): Promise<RgbImage>;
}
