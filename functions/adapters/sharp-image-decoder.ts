/**
 * The {@link ImageDecoder} on libvips through `sharp` (libjpeg-turbo, libspng, libwebp): chosen by measurement over
 * pure-JS decoders (README, "Image inputs"). sharp is imported on the first image request only, so the cold start
 * of every other request and model pays nothing for it.
 */
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import type { DecodeImageOptions, ImageDecoder, ImageMediaType } from '../core/image/decoder.js';
import type { RgbImage } from '../core/image/preprocess.js';

type Sharp = typeof import('sharp')['default'];

/** libvips' name of each format we accept. */
const FORMAT_OF: Record<ImageMediaType, string> = { 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp' };
const ACCEPTED_FORMATS: ReadonlySet<string> = new Set(Object.values(FORMAT_OF));

/** Creates the decoder; `sharp` is loaded on first use. */
export function createSharpImageDecoder(): ImageDecoder {
  let loading: Promise<Sharp> | undefined;
  const load = () => {
    loading ??= import('sharp').then(({ default: sharp }) => {
      // One request at a time per instance: libvips' own thread pool would only compete with onnxruntime's.
      sharp.concurrency(1);
      sharp.cache(false);
      return sharp;
    });
    return loading;
  };
  return {
    async decode(bytes: Uint8Array, options: DecodeImageOptions): Promise<RgbImage> {
      const sharp = await load();
      const declared = options.mediaType;
      const what = declared === undefined ? 'JPEG, PNG or WebP' : declared;
      // failOn 'error' refuses truncated and corrupt data instead of returning grey rows; the pixel limit is checked
      // against the header before anything is decoded (a decompression bomb never allocates its pixels).
      const input = { failOn: 'error' as const, limitInputPixels: options.maxPixels, pages: 1, autoOrient: true };
      let metadata;
      try {
        metadata = await sharp(bytes, { ...input, limitInputPixels: false }).metadata();
      } catch (error) {
        throw new BadRequestError(
          declared === undefined
            ? `the bytes are not a readable JPEG, PNG or WebP image (${cleanMessage(error)}); send the image file itself`
            : `the body is not a readable ${declared} image (${cleanMessage(error)}); send a JPEG, PNG or WebP file as the body with its Content-Type`,
          { cause: error },
        );
      }
      const actual =
        metadata.format === undefined ? 'not a JPEG, PNG or WebP image' : `a ${metadata.format.toUpperCase()} image`;
      if (declared === undefined) {
        if (!ACCEPTED_FORMATS.has(metadata.format ?? '')) {
          throw new BadRequestError(`the bytes are ${actual}: send a JPEG, PNG or WebP file`);
        }
      } else if (metadata.format !== FORMAT_OF[declared]) {
        throw new BadRequestError(
          `the Content-Type says ${declared} but the body is ${actual}: send JPEG, PNG or WebP with its own Content-Type (image/jpeg, image/png, image/webp)`,
        );
      }
      const width = metadata.width ?? 0;
      const height = metadata.height ?? 0;
      if (width * height > options.maxPixels) {
        throw new PayloadTooLargeError(
          `the image is ${width} x ${height} = ${width * height} pixels, over the limit of ${options.maxPixels} (limits.maxImagePixels): send a smaller image`,
        );
      }
      if ((metadata.pages ?? 1) > 1) {
        throw new BadRequestError(`the image is animated (${metadata.pages} frames): send a single still image`);
      }
      try {
        // toColourspace('srgb') turns grey, palette and CMYK (with its ICC profile) into 3 bands; depth 'uchar' turns
        // 16-bit samples into 8-bit; the alpha band is dropped as OpenCV's imread(IMREAD_COLOR) does.
        const { data, info } = await sharp(bytes, input)
          .toColourspace('srgb')
          .removeAlpha()
          .raw({ depth: 'uchar' })
          .toBuffer({ resolveWithObject: true });
        if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
        return {
          width: info.width,
          height: info.height,
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        };
      } catch (error) {
        throw new BadRequestError(
          `the ${what} image cannot be decoded (${cleanMessage(error)}): the file is truncated or corrupt`,
          { cause: error },
        );
      }
    },
  };
}

/** libvips' messages, on one line and short; they name no server path for buffer input. */
function cleanMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // libvips repeats each warning line; keep the distinct ones.
  const lines = [
    ...new Set(
      text
        .split(/\n+/)
        .map((line) => line.trim())
        .filter(Boolean),
    ),
  ];
  return lines.join('; ').slice(0, 200);
}
