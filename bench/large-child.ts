/**
 * Measurements of the `large` bench section that need a process of their own (their peak RSS must not include the
 * bench's). The repository is a folder (`FsBlobStore`): these measure registration and session churn, not S3.
 *
 * - `register <dir> <key>`: registers the upload under `key`; prints `growth <bytes> size <bytes>`, the peak RSS
 *   growth from before the registration over the upload's size.
 * - `swap <dir> <model> <swaps>`: loads versions 1 and 2 of `model` alternately, `swaps` times after the first load,
 *   keeping one loaded version (each swap creates one session and releases the other: onnxruntime-node issue
 *   #25325's cycle); prints `first <rss>` after the first load and `last <rss>` after the last.
 * - `load <dir> <model>`: loads the latest version as serving does (download to a scratch folder, session from the
 *   path); prints `growth <bytes> size <bytes>`, the peak RSS growth over the stored bytes (model and data files).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsBlobStore } from '../functions/adapters/fs-blob-store.js';
import { createS3Client } from '../functions/adapters/s3-client.js';
import { S3BlobStore } from '../functions/adapters/s3-blob-store.js';
import type { BlobStore } from '../functions/core/blob-store.js';
import { onnxruntimeSessionFactory } from '../functions/adapters/onnxruntime-session.js';
import { DEFAULT_LIMITS } from '../functions/core/catalog.js';
import { ModelRepository } from '../functions/core/model-repository.js';
import { ModelService } from '../functions/core/model-service.js';
import { registerUpload } from '../functions/core/registration.js';
import { buildLinearExample } from '../tools/onnx/examples.js';

const [mode, dir, arg, count] = process.argv.slice(2);
if ((mode !== 'register' && mode !== 'swap' && mode !== 'load') || dir === undefined || arg === undefined) {
  throw new Error('usage: large-child <register <dir> <key> | swap <dir> <model> <swaps> | load <dir> <model>>');
}
const sessionOptions = { intraOpNumThreads: 2, graphOptimizationLevel: 'all' } as const;
// `LARGE_CHILD_S3` (JSON: endpoint, bucket, credentials, region) puts the repository on an S3 server instead, so
// that registration's multipart version write is measured too; `<dir>` is then only the scratch folder's parent.
const s3 = process.env['LARGE_CHILD_S3'];
const store: BlobStore =
  s3 === undefined
    ? new FsBlobStore(dir)
    : (() => {
        const access = JSON.parse(s3) as { endpoint: string; bucket: string; region: string } & {
          credentials: { accessKeyId: string; secretAccessKey: string };
        };
        return new S3BlobStore(createS3Client(access), access.bucket);
      })();
const repository = new ModelRepository(store);

function peakRss(): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (kb === undefined) throw new Error('this measure needs Linux /proc/self/status');
  return Number(kb) * 1024;
}

if (mode === 'register') {
  // onnxruntime's one-time setup is paid before the baseline, as in a warm register function.
  await (await onnxruntimeSessionFactory.create(buildLinearExample().bytes, sessionOptions)).release();
  writeFileSync('/proc/self/clear_refs', '5');
  const before = process.memoryUsage().rss;
  const outcome = await registerUpload(arg, {
    store,
    repository,
    sessionFactory: onnxruntimeSessionFactory,
    sessionOptions,
    maxModelBytes: 2 * 1024 ** 3,
    scratchDir: join(dir, 'scratch'),
    limits: DEFAULT_LIMITS,
  });
  if (outcome.kind !== 'registered' && outcome.kind !== 'duplicate')
    throw new Error(`registration failed: ${JSON.stringify(outcome)}`);
  const growth = peakRss() - before;
  const upload =
    s3 === undefined
      ? statSync(join(dir, ...arg.split('/'))).size
      : (await store.download(arg, join(dir, 'size-check'), { partBytes: 2 ** 30, concurrency: 1 }))?.size;
  console.log(`growth ${growth} size ${upload}`);
} else if (mode === 'load') {
  const service = new ModelService({ repository, sessionFactory: onnxruntimeSessionFactory, sessionOptions });
  const target = await service.resolve(arg);
  await (await onnxruntimeSessionFactory.create(buildLinearExample().bytes, sessionOptions)).release();
  writeFileSync('/proc/self/clear_refs', '5');
  const before = process.memoryUsage().rss;
  await service.ensureLoaded(target);
  const size = target.metadata.size + (target.metadata.externalData ?? []).reduce((sum, file) => sum + file.size, 0);
  console.log(`growth ${peakRss() - before} size ${size}`);
} else {
  const service = new ModelService({
    repository,
    sessionFactory: onnxruntimeSessionFactory,
    sessionOptions,
    maxVersionsPerModel: 1,
  });
  const swaps = Number(count ?? '20');
  const load = async (version: string) => service.ensureLoaded(await service.resolve(arg, version));
  await load('1');
  const first = process.memoryUsage().rss;
  for (let swap = 1; swap <= swaps; swap++) await load(swap % 2 === 1 ? '2' : '1');
  // A released session's memory is returned when the next one loads; let pending releases finish first.
  await new Promise((resolve) => setTimeout(resolve, 200));
  console.log(`first ${first} last ${process.memoryUsage().rss}`);
}
process.exit(0);
