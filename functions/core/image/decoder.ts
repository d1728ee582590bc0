/**
 * The port to an image decoder. Core only sees 8-bit RGB pixels; the adapter (libvips through sharp) lives in
 * `functions/adapters/`, so core, the register function and every non-image request stay free of native code.
 */
import type { RgbImage } from './preprocess.js';

/** Encoded image formats a request may carry, by media type. */
export const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

/** One of {@link IMAGE_MEDIA_TYPES}. */
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

/** True when `mediaType` (lower case, without parameters) is an image type we decode. */
export function isImageMediaType(mediaType: string): mediaType is ImageMediaType {
  return (IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType);
}

/** Settings of one decode. */
export interface DecodeImageOptions {
  /** Largest width × height accepted, checked from the header before any pixel is decoded. */
  readonly maxPixels: number;
  /**
   * The media type the client declared: the bytes must be that format. Undefined for an image in a BYTES element,
   * which has no content type of its own: then any of {@link IMAGE_MEDIA_TYPES} is accepted.
   */
  readonly mediaType?: ImageMediaType;
}

/**
 * Decodes an encoded image to 8-bit sRGB pixels. Implementations throw `BadRequestError` for bytes that are not a
 * whole image of the declared type (of any accepted type when none is declared), or are animated, and `PayloadTooLargeError` for images over `maxPixels`.
 * Grey, palette, 16-bit and CMYK images are converted to 8-bit sRGB; an alpha channel is dropped (as OpenCV's
 * `imread(IMREAD_COLOR)` does).
 */
export interface ImageDecoder {
  decode(bytes: Uint8Array, options: DecodeImageOptions): Promise<RgbImage>;
}
