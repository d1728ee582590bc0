/**
 * Image decoding against the embedded S3 server's file I/O (README "Images", "Decoding is bounded"): sharp decodes on
 * libuv's four threads, which the server's file reads share. Four slow decodes at once (flat 40 MP CMYK JPEGs, each
 * stopped by a 2 s decode time limit) run while a small object is read from the server in a loop; the GET latency is
 * measured with the product's decoder (decodes gated one at a time) against the same four decodes called on sharp
 * directly (the baseline: no gate), alternated in the same process. Standalone: `npx tsx bench/decode-starvation.ts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createSharpImageDecoder } from '../functions/adapters/sharp-image-decoder.js';
import { createS3Client } from '../functions/adapters/s3-client.js';
import { S3BlobStore } from '../functions/adapters/s3-blob-store.js';
import { DEFAULT_LIMITS } from '../functions/core/catalog.js';
import { decodeImageOptions } from '../functions/core/image/index.js';
import { startEmbeddedS3 } from '../functions/local/s3-server.js';
import { flatCmykJpeg } from '../test/image/scan-bomb.js';
import { median } from './stats.js';

const ROUNDS = 2;
const TIMEOUT_SECONDS = 2;

/** Max and median S3 GET latency (ms) while the four decodes of each variant run, and their ratio. */
export async function measureDecodeStarvation(): Promise<Record<string, number>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'decode-starvation-'));
  const s3 = await startEmbeddedS3({ port: 0, dataDir, silent: true });
  try {
    const store = new S3BlobStore(
      createS3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials }),
      s3.bucket,
    );
    await store.put('probe/small.txt', Buffer.from('a small object'));
    const image = flatCmykJpeg(6320, 6320);
    const decoder = createSharpImageDecoder();
    const options = decodeImageOptions(
      { ...DEFAULT_LIMITS, imageDecodeTimeoutSeconds: TIMEOUT_SECONDS },
      { mediaType: 'image/jpeg' },
    );
    const variants = {
      gated: () => decoder.decode(image, options),
      // The adapter's own pipeline, without its gate.
      ungated: () =>
        sharp(image, { failOn: 'error' })
          .timeout({ seconds: TIMEOUT_SECONDS })
          .toColourspace('srgb')
          .removeAlpha()
          .raw({ depth: 'uchar' })
          .toBuffer(),
    };
    const latencies: Record<keyof typeof variants, number[]> = { gated: [], ungated: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ['ungated', 'gated'] as const) {
        let done = false;
        const probe = (async () => {
          while (!done) {
            const started = performance.now();
            await store.get('probe/small.txt');
            latencies[name].push(performance.now() - started);
            await new Promise((resolve) => setTimeout(resolve, 25));
          }
        })();
        await Promise.allSettled([0, 1, 2, 3].map(() => variants[name]()));
        done = true;
        await probe;
      }
    }
    const gatedMax = Math.max(...latencies.gated);
    const ungatedMax = Math.max(...latencies.ungated);
    return {
      decode_s3_get_max_ms_gated: gatedMax,
      decode_s3_get_max_ms_ungated: ungatedMax,
      decode_s3_get_p50_ms_gated: median(latencies.gated),
      decode_s3_get_p50_ms_ungated: median(latencies.ungated),
      decode_s3_get_max_ratio_gated_to_ungated: gatedMax / ungatedMax,
    };
  } finally {
    await s3.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await measureDecodeStarvation());
}
