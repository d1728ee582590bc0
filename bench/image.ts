/**
 * Image preprocessing (README "Image inputs"): a 1280 x 720 JPEG decoded by the sharp adapter and turned by the core
 * math into the `[1, 3, 640, 640]` FP32 tensor of a YOLO-style letterbox, as an image request does. Also prints
 * the sizes that make images worth it: the JPEG against the tensor it stands for, base64-encoded in a Lambda event.
 * Standalone: `npx tsx bench/image.ts`.
 */
import sharp from 'sharp';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createSharpImageDecoder } from '../functions/adapters/sharp-image-decoder.js';
import { DEFAULT_LIMITS } from '../functions/core/catalog.js';
import { decodeImageOptions, imageToTensor, parsePreprocess } from '../functions/core/image/index.js';
import { createPrng } from '../tools/onnx/prng.js';
import { median, timeAlternating } from './stats.js';

/** A 1280 x 720 photo-like picture: gradients, shapes and sensor-like noise (so the JPEG is of a real photo's size). */
async function photoJpeg(): Promise<Buffer> {
  const width = 1280;
  const height = 720;
  const random = createPrng(42);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const noise = Math.floor(random() * 24);
      const box = x > 300 && x < 700 && y > 200 && y < 600;
      data[i] = Math.min(255, (box ? 190 : (x * 160) / width) + noise);
      data[i + 1] = Math.min(255, (box ? 50 : (y * 180) / height) + noise);
      data[i + 2] = Math.min(255, (box ? 60 : 200 - (x * 100) / width) + noise);
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** p50 of decode + letterbox + normalize of a 1280 x 720 JPEG to `[1, 3, 640, 640]` FP32, and its parts. */
export async function measureImagePreprocess(): Promise<Record<string, number>> {
  const jpeg = await photoJpeg();
  const decoder = createSharpImageDecoder();
  const parsed = parsePreprocess({ images: { images: { size: [640, 640] } } });
  if (!parsed.ok) throw new Error(parsed.message);
  const spec = parsed.value.images['images']!;
  const decoded = await decoder.decode(jpeg, decodeImageOptions(DEFAULT_LIMITS, { mediaType: 'image/jpeg' }));
  const samples = await timeAlternating(
    {
      whole: async () =>
        imageToTensor(
          await decoder.decode(jpeg, decodeImageOptions(DEFAULT_LIMITS, { mediaType: 'image/jpeg' })),
          spec,
          'images',
          'FP32',
        ),
      decode: () => decoder.decode(jpeg, decodeImageOptions(DEFAULT_LIMITS, { mediaType: 'image/jpeg' })),
      math: () => imageToTensor(decoded, spec, 'images', 'FP32'),
    },
    { warmup: 5, blocks: 10, perBlock: 5 },
  );
  // CPU time of the same work (the process's, libvips' thread included): on a shared machine wall time mostly
  // measures the other jobs' load. The parts alternate with the whole, as the wall-time samples do.
  const cpu: number[] = [];
  const cpuDecode: number[] = [];
  const cpuMath: number[] = [];
  const cpuOf = async (samples: number[], work: () => unknown) => {
    const started = process.cpuUsage();
    await work();
    const used = process.cpuUsage(started);
    samples.push((used.user + used.system) / 1000);
  };
  for (let i = 0; i < 30; i++) {
    await cpuOf(cpu, async () =>
      imageToTensor(
        await decoder.decode(jpeg, decodeImageOptions(DEFAULT_LIMITS, { mediaType: 'image/jpeg' })),
        spec,
        'images',
        'FP32',
      ),
    );
    await cpuOf(cpuDecode, () => decoder.decode(jpeg, decodeImageOptions(DEFAULT_LIMITS, { mediaType: 'image/jpeg' })));
    await cpuOf(cpuMath, () => imageToTensor(decoded, spec, 'images', 'FP32'));
  }
  const tensorBytes = 3 * 640 * 640 * 4;
  return {
    image_preprocess_cpu_ms: median(cpu),
    image_decode_cpu_ms: median(cpuDecode),
    image_resize_normalize_cpu_ms: median(cpuMath),
    // The machine's 1-minute load average while measuring: the context of the wall times.
    image_load_average: os.loadavg()[0]!,
    image_preprocess_ms: median(samples.whole),
    image_decode_ms: median(samples.decode),
    image_resize_normalize_ms: median(samples.math),
    image_jpeg_bytes: jpeg.byteLength,
    image_tensor_binary_base64_bytes: Math.ceil(tensorBytes / 3) * 4,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await measureImagePreprocess());
}
