/**
 * `npm run interop`: Triton's official Python HTTP client (`tritonclient.http`, sync, `async_infer` and `aio`),
 * unmodified, against `npm start`'s stack. Starts the local stack on ephemeral ports with identity models of every
 * datatype and a ZipMap classifier as catalog seeds, runs `interop/triton_checks.py`, and prints every check and the
 * count. Exit code 0 when every check passed, 1 otherwise; 0 with `[interop] SKIPPED` when the client is not there.
 *
 * The client is read from `$TRITON_CLIENT_DIR`, else `../shared/clients/triton-python` next to the repository,
 * through `PYTHONPATH` (never copied here). Its Debian dependencies: see the README (Triton client interop).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocal } from '../functions/local/local-runtime.js';
import { DATATYPES } from '../functions/core/types.js';
import sharp from 'sharp';
import { buildIdentityModel, buildImageGainModel, buildZipMapClassifier } from '../tools/onnx/index.js';
import { runOneShot } from '../tools/one-shot.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Debian's interpreter: the client's dependencies are Debian packages (see the README). */
const PYTHON = process.env.INTEROP_PYTHON ?? '/usr/bin/python3';

/**
 * The models the checks use: `id-<datatype>` (identity, `[-1]`), `id-fp32-2d` (`[-1, 4]`), `flowers`, and
 * `image-gain` (`images` FP32 `[-1, 3, 64, 64]` times `gain` FP32 `[1]`, its image preprocessing declared in its
 * catalog entry, {@link CATALOG_EXTRAS}).
 */
function interopModels(): Map<string, Uint8Array> {
  const models = new Map<string, Uint8Array>();
  for (const datatype of DATATYPES) models.set(`id-${datatype.toLowerCase()}`, buildIdentityModel(datatype));
  models.set('id-fp32-2d', buildIdentityModel('FP32', ['N', 4]));
  models.set('flowers', buildZipMapClassifier({ labels: ['setosa', 'versicolor', 'virginica'] }).bytes);
  models.set('image-gain', buildImageGainModel(64, 64, 'N'));
  return models;
}

/** Catalog fields beyond the seed, per model. */
const CATALOG_EXTRAS: Readonly<Record<string, object>> = {
  'image-gain': { preprocess: { images: { images: { size: [64, 64], resize: 'letterbox' } } } },
};

/** The JPEG the image checks send: 48 x 32, one colour (200, 100, 50), so that JPEG keeps it within a level. */
function interopJpeg(): Promise<Buffer> {
  return sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 200, g: 100, b: 50 } } })
    .jpeg({ quality: 95 })
    .toBuffer();
}

async function main(): Promise<number> {
  const clientDir = path.resolve(
    process.env.TRITON_CLIENT_DIR ?? path.join(repoRoot, '..', 'shared', 'clients', 'triton-python'),
  );
  if (!existsSync(path.join(clientDir, 'tritonclient', 'http'))) {
    console.log(`[interop] SKIPPED: no Triton Python client at ${clientDir} (set TRITON_CLIENT_DIR)`);
    return 0;
  }
  const env = { ...process.env, PYTHONPATH: clientDir, PYTHONDONTWRITEBYTECODE: '1' };
  const probe = spawnSync(PYTHON, ['-c', 'import tritonclient.http, tritonclient.http.aio, numpy'], {
    env,
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    console.error(
      `[interop] the Triton client cannot be imported with ${PYTHON}: ${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)}\n` +
        'install its Debian dependencies: apt-get install -y python3-geventhttpclient python3-rapidjson python3-gevent python3-numpy python3-aiohttp',
    );
    return 1;
  }

  const work = await mkdtemp(path.join(os.tmpdir(), 'interop-'));
  const catalogDir = path.join(work, 'catalog');
  const dataDir = path.join(work, 'data');
  await mkdir(catalogDir);
  for (const [name, bytes] of interopModels()) {
    await writeFile(path.join(catalogDir, `${name}.onnx`), bytes);
    await writeFile(
      path.join(catalogDir, `${name}.json`),
      JSON.stringify({ seed: `${name}.onnx`, ...CATALOG_EXTRAS[name] }),
    );
  }
  const jpegPath = path.join(work, 'photo.jpg');
  await writeFile(jpegPath, await interopJpeg());
  const stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir, silent: true });
  try {
    await stack.settled();
    const outcomes = stack.registrations.flatMap((r) => r.outcomes);
    const refused = outcomes.filter((o) => o.kind !== 'registered');
    if (refused.length > 0) throw new Error(`interop models were refused: ${JSON.stringify(refused)}`);
    const url = new URL(stack.gatewayUrl).host;
    console.log(`[interop] Triton client ${clientDir} against ${stack.gatewayUrl}`);
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(PYTHON, [path.join(repoRoot, 'interop', 'triton_checks.py'), url, jpegPath], {
        env,
        stdio: 'inherit',
      });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? 1));
    });
  } finally {
    await stack.close();
    await rm(work, { recursive: true, force: true });
  }
}

runOneShot(main);
