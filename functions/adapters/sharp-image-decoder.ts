/**
 * The {@link ImageDecoder} on libvips through `sharp` (libjpeg-turbo, libspng, libwebp): chosen by measurement over
 * pure-JS decoders (README, "Image inputs"). sharp is imported on the first image request only, so the cold start
 * of every other request and model pays nothing for it.
 *
 * Decoding is bounded: pixels from the header, a JPEG's scans from its markers (libjpeg reads every scan before
 * libvips' timeout can act), time by libvips' timeout, and concurrency by one process-wide gate. sharp runs each
 * decode on one of libuv's four threads, which the embedded S3 server's file reads and writes and zlib share: four
 * decodes at once would hold all four, and every file read would wait behind them.
 */
import { BadRequestError, ServiceUnavailableError } from '../core/errors.js';
import {
  imageDecodeTimeoutError,
  imagePixelsError,
  jpegScansError,
  type DecodeImageOptions,
  type ImageDecoder,
  type ImageMediaType,
} from '../core/image/decoder.js';
import { jpegScanCount } from '../core/image/jpeg-scans.js';
import type { RgbImage } from '../core/image/preprocess.js';

type Sharp = typeof import('sharp')['default'];

/** libvips' name of each format we accept. */
const FORMAT_OF: Record<ImageMediaType, string> = { 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp' };
const ACCEPTED_FORMATS: ReadonlySet<string> = new Set(Object.values(FORMAT_OF));

/**
 * Decodes running at once in this process. One, as on Lambda (one request per instance): three of libuv's four
 * threads stay free for file, zlib and crypto work whatever the image requests do (README, "Limits").
 */
export const IMAGE_DECODE_CONCURRENCY = 1;

/** A FIFO gate of {@link IMAGE_DECODE_CONCURRENCY} slots, shared by every decoder of the process. */
const gate = (() => {
  let free = IMAGE_DECODE_CONCURRENCY;
  const waiting: (() => void)[] = [];
  return {
    /** Resolves with a release function once a slot is free; rejects after `waitMs` in the queue. */
    acquire(waitMs: number): Promise<() => void> {
      const release = () => {
        const next = waiting.shift();
        if (next === undefined) free++;
        else next();
      };
      if (free > 0) {
        free--;
        return Promise.resolve(release);
      }
      return new Promise((resolve, reject) => {
        const turn = () => {
          clearTimeout(timer);
          resolve(release);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(turn), 1);
          reject(
            new ServiceUnavailableError(
              `the server is decoding other images and this one waited ${waitMs / 1000} s for its turn; retry shortly`,
            ),
          );
        }, waitMs);
        waiting.push(turn);
      });
    },
  };
})();

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
      // Counted before libjpeg sees the bytes: once it reads the scans, nothing stops it until it is done.
      const scansError = jpegScansError(jpegScanCount(bytes), options);
      if (scansError !== undefined) throw scansError;
      // A decode waits at most as long as it may run: past that, the client is better off retrying.
      const release = await gate.acquire(options.timeoutSeconds * 1000);
      try {
        return await decodeNow(sharp, bytes, options);
      } finally {
        release();
      }
    },
  };
}

/** One decode, inside the gate. */
async function decodeNow(sharp: Sharp, bytes: Uint8Array, options: DecodeImageOptions): Promise<RgbImage> {
  const declared = options.mediaType;
  const what = declared === undefined ? 'JPEG, PNG or WebP' : declared;
  // failOn 'error' refuses truncated and corrupt data instead of returning grey rows; the pixel limit is checked
  // against the header before anything is decoded (a decompression bomb never allocates its pixels).
  const limitInputPixels = Math.max(1, options.maxPixels - (options.pixelsBefore ?? 0));
  const input = { failOn: 'error' as const, limitInputPixels, pages: 1, autoOrient: true };
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
  const pixelsError = imagePixelsError(metadata.width ?? 0, metadata.height ?? 0, options);
  if (pixelsError !== undefined) throw pixelsError;
  if ((metadata.pages ?? 1) > 1) {
    throw new BadRequestError(`the image is animated (${metadata.pages} frames): send a single still image`);
  }
  try {
    // toColourspace('srgb') turns grey, palette and CMYK (with its ICC profile) into 3 bands; depth 'uchar' turns
    // 16-bit samples into 8-bit; the alpha band is dropped as OpenCV's imread(IMREAD_COLOR) does.
    const { data, info } = await sharp(bytes, input)
      .timeout({ seconds: options.timeoutSeconds })
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
    // libvips' timeout kills the pipeline with "timeout: N% complete".
    if (/^timeout\b/.test(cleanMessage(error))) throw imageDecodeTimeoutError(options, error);
    throw new BadRequestError(
      `the ${what} image cannot be decoded (${cleanMessage(error)}): the file is truncated or corrupt`,
      { cause: error },
    );
  }
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
