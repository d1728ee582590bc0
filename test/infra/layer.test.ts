/**
 * The onnxruntime layer: only one platform's binaries, of the right CPU, reproducible, far below Lambda's 250 MB,
 * and self-sufficient: a fresh Node process that sees nothing but the layer loads onnxruntime-node from it and
 * runs a real model.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  buildOnnxruntimeLayer,
  formatMegabytes,
  type LayerBuild,
  NODE_ARCH,
} from '../../layers/onnxruntime/build.js';
import { findSection, tableRows } from '../../tools/docs.js';
import { ELF_MACHINE, elfMachine, LAMBDA_NODE_VERSIONS } from '../../tools/node-binaries.js';
import { removeTempDirs, squareModel, tempDir } from './fixture.js';

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

const workDir = tempDir('layer-test');
const builds: Partial<Record<'x86_64' | 'arm64', LayerBuild>> = {};

beforeAll(() => {
  builds.x86_64 = buildOnnxruntimeLayer('x86_64', join(workDir, 'x86_64'));
  builds.arm64 = buildOnnxruntimeLayer('arm64', join(workDir, 'arm64'));
  for (const [arch, build] of Object.entries(builds)) {
    // The number docs/deploying.md quotes: printed, not asserted against a fixed value.
    console.log(`onnxruntime layer ${arch}: ${formatMegabytes(build.unzippedBytes)} unzipped`);
  }
}, 60_000);

afterAll(removeTempDirs);

describe.each(['x86_64', 'arm64'] as const)('the %s layer', (arch) => {
  const nodeArch = NODE_ARCH[arch];

  it('holds onnxruntime-node, onnxruntime-common and sharp only, with only linux binaries of its CPU', () => {
    const build = builds[arch]!;
    const modules = join(build.dir, 'nodejs', 'node_modules');
    expect(readdirSync(modules).sort()).toEqual([
      '@img',
      'detect-libc',
      'onnxruntime-common',
      'onnxruntime-node',
      'semver',
      'sharp',
    ]);
    expect(readdirSync(join(modules, '@img')).sort()).toEqual([
      'colour',
      `sharp-libvips-linux-${nodeArch}`,
      `sharp-linux-${nodeArch}`,
    ]);
    const natives = files(build.dir).filter((f) => /\.node$|\.so(\.\d+)*$/.test(f) && f.includes('sharp'));
    expect(natives.length).toBe(2);
    for (const native of natives) expect(elfMachine(join(build.dir, native))).toBe(ELF_MACHINE[nodeArch]);
    const binaries = files(build.dir).filter((f) => f.includes(`${join('onnxruntime-node', 'bin')}`));
    expect(binaries.length).toBeGreaterThanOrEqual(2);
    for (const binary of binaries) {
      expect(binary).toContain(join('bin', 'napi-v6', 'linux', nodeArch, ''));
      expect(elfMachine(join(build.dir, binary))).toBe(ELF_MACHINE[nodeArch]);
    }
    expect(files(build.dir).filter((f) => /darwin|win32|\.dll$|\.dylib$/.test(f))).toEqual([]);
  });

  it('reports its true unzipped size, far below the 250 MB Lambda allows', () => {
    const build = builds[arch]!;
    const counted = files(build.dir).reduce((sum, f) => sum + statSync(join(build.dir, f)).size, 0);
    expect(build.unzippedBytes).toBe(counted);
    // A third at most (onnxruntime and sharp): the rest of the 250 MB is for the bundle and other layers.
    expect(build.unzippedBytes).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES / 3);
  });
});

it('is reproducible: a rebuild has the same files, bytes and timestamps', () => {
  const digest = (dir: string): string[] =>
    files(dir).map((f) => {
      const path = join(dir, f);
      return `${f} ${createHash('sha256').update(readFileSync(path)).digest('hex')} ${statSync(path).mtimeMs}`;
    });
  const first = digest(builds.arm64!.dir);
  writeFileSync(join(builds.arm64!.dir, 'nodejs', 'stale-file'), 'left over');
  const rebuilt = buildOnnxruntimeLayer('arm64', builds.arm64!.dir);
  expect(digest(rebuilt.dir)).toEqual(first);
});

it('refuses an unknown architecture', () => {
  expect(() => buildOnnxruntimeLayer('riscv64' as 'arm64', join(workDir, 'riscv'))).toThrow(/use one of x86_64, arm64/);
});

it.runIf(process.platform === 'linux' && process.arch === 'x64')(
  'loads in a fresh Node process that sees only the layer, and runs a model',
  () => {
    // Prepare: a model file and a script, in a folder outside the repository so its node_modules is unreachable.
    const outside = tempDir('layer-run');
    const modelPath = join(outside, 'square.onnx');
    writeFileSync(modelPath, squareModel());
    const script = `
      const ort = require('onnxruntime-node');
      const fs = require('node:fs');
      (async () => {
        const session = await ort.InferenceSession.create(fs.readFileSync(process.argv[1]));
        const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2, 3]), [3]) });
        const loaded = Object.keys(require.cache).filter((p) => p.includes('onnxruntime'));
        console.log(JSON.stringify({ y: Array.from(out.y.data), loaded }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const modules = join(builds.x86_64!.dir, 'nodejs', 'node_modules');

    // Act: the way Lambda loads a layer: NODE_PATH=/opt/nodejs/node_modules.
    const output = execFileSync(process.execPath, ['-e', script, modelPath], {
      cwd: outside,
      env: { PATH: process.env['PATH'] ?? '', NODE_PATH: modules },
      encoding: 'utf8',
    });

    // Assess
    const result = JSON.parse(output) as { y: number[]; loaded: string[] };
    expect(result.y).toEqual([2.25, 4, 9]);
    expect(result.loaded.length).toBeGreaterThan(0);
    for (const path of result.loaded) expect(path.startsWith(modules)).toBe(true);
  },
);

it('loads sharp from the layer alone in a fresh Node process, and decodes a JPEG there', () => {
  // Prepare: a JPEG made here; the script runs outside the repository, so only the layer can provide sharp.
  const outside = tempDir('layer-sharp');
  const script = `
    const sharp = require('sharp');
    (async () => {
      const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c83232' } }).jpeg().toBuffer();
      const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      const loaded = Object.keys(require.cache).filter((p) => p.includes('sharp'));
      console.log(JSON.stringify({ info, first: Array.from(data.subarray(0, 3)), loaded, vips: sharp.versions.vips }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const modules = join(builds.x86_64!.dir, 'nodejs', 'node_modules');

  // Act
  const output = execFileSync(process.execPath, ['-e', script], {
    cwd: outside,
    env: { PATH: process.env['PATH'] ?? '', NODE_PATH: modules },
    encoding: 'utf8',
  });

  // Assess
  const result = JSON.parse(output) as {
    info: { width: number; height: number; channels: number };
    first: number[];
    loaded: string[];
    vips: string;
  };
  expect(result.info).toMatchObject({ width: 64, height: 48, channels: 3 });
  expect(Math.abs(result.first[0]! - 200)).toBeLessThan(4);
  expect(result.vips).toMatch(/^\d+\.\d+/);
  for (const path of result.loaded) expect(path.startsWith(modules)).toBe(true);
});

it("names, in the docs' one Versions table, the onnxruntime and Node versions the layer and the tests use", () => {
  // Prepare: the table's rows, by what they name, wherever the section lives (README.md or docs/).
  const rows = tableRows(findSection('Versions').text, 'what');
  const versionOf = (needle: string): string | undefined => rows.find((row) => row[0]?.includes(needle))?.[1];
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const installed = (name: string): string =>
    (JSON.parse(readFileSync(join('node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

  // Assess: the pins, what is installed (what the layer is built from) and the docs agree.
  const ort = versionOf('`onnxruntime-node`');
  expect(ort).toMatch(/^\d+\.\d+\.\d+$/);
  expect(manifest.dependencies['onnxruntime-node']).toBe(ort);
  expect(manifest.devDependencies['onnxruntime-web']).toBe(ort);
  expect(installed('onnxruntime-node')).toBe(ort);
  expect(installed('onnxruntime-common')).toBe(ort);
  expect(versionOf('`nodejs24.x`')).toBe(LAMBDA_NODE_VERSIONS['nodejs24.x']);
  expect(versionOf('`nodejs22.x`')).toBe(LAMBDA_NODE_VERSIONS['nodejs22.x']);
});

it('states in the docs the unzipped size of each architecture as built here', () => {
  // Prepare: the one sentence that gives the sizes (docs/deploying.md, "What `cdk deploy` provisions").
  const section = findSection(/^What `cdk deploy` provisions/).text.replace(/\s+/g, ' ');
  const stated = /in total, unzipped, x86_64 (\d+\.\d) MiB, arm64 (\d+\.\d) MiB/.exec(section);
  expect(stated, 'the sentence "in total, unzipped, x86_64 N MiB, arm64 N MiB"').not.toBeNull();

  // Assess: within 0.5 MiB of what was built (a patch release moves the last digit; a new dependency more).
  const mib = (bytes: number): number => bytes / (1024 * 1024);
  expect(Math.abs(Number(stated?.[1]) - mib(builds.x86_64!.unzippedBytes))).toBeLessThan(0.5);
  expect(Math.abs(Number(stated?.[2]) - mib(builds.arm64!.unzippedBytes))).toBeLessThan(0.5);
});
