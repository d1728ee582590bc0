/**
 * Builds the onnxruntime Lambda layer for one CPU architecture from the installed `onnxruntime-node`.
 *
 * The npm package ships native binaries for every OS and CPU (about 290 MB unzipped), more than Lambda's 250 MB
 * limit for a function and its layers together. Lambda only ever loads `bin/napi-v6/linux/<cpu>/`, so the layer
 * keeps that one directory plus the JavaScript that loads it: `onnxruntime-node/{package.json, dist/}` and its
 * only run-time dependency `onnxruntime-common`. (`adm-zip` and `global-agent`, also listed as dependencies, are
 * used by the package's install script alone, which downloads GPU providers we do not serve with.)
 *
 * It also carries `sharp` (image decoding, README "Image inputs"): its JavaScript, its three small run-time
 * dependencies, and the `@img/sharp-linux-<cpu>` and `@img/sharp-libvips-linux-<cpu>` packages of the layer's CPU
 * only. npm installs the host's pair; the other CPU's pair is fetched at `npm install` time (the project's
 * postinstall, `fetch-native.mjs`) with `npm pack` from the npm registry into `layers/onnxruntime/cache/`, checked
 * against the sha512 of package-lock.json, so that `cdk synth` stays offline.
 *
 * Run as a script to build every architecture and print the sizes:
 * `npm run build:layer` or `npx tsx layers/onnxruntime/build.ts [x86_64|arm64 ...]`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Lambda's CPU architectures, spelled as Lambda and the catalog spell them. */
export type LayerArchitecture = 'x86_64' | 'arm64';

/** Every architecture a layer can be built for. */
export const LAYER_ARCHITECTURES: readonly LayerArchitecture[] = ['x86_64', 'arm64'] as const;

/** Node's `process.arch` for each Lambda architecture: the directory name under `bin/napi-v6/linux/`. */
export const NODE_ARCH = { x86_64: 'x64', arm64: 'arm64' } as const satisfies Record<LayerArchitecture, string>;

/** Lambda's limit on a function plus all its layers, unzipped. */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** What a build produced. */
export interface LayerBuild {
  /** The layer's root: the directory that holds `nodejs/`, to hand to `lambda.Code.fromAsset`. */
  readonly dir: string;
  /** Bytes of every file in the layer, i.e. what the layer costs against Lambda's 250 MB unzipped limit. */
  readonly unzippedBytes: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** Where builds go unless told otherwise (git-ignored). */
export function defaultLayerDir(arch: LayerArchitecture): string {
  return join(HERE, 'build', arch);
}

// Every copied file gets this mtime so two builds of the same inputs are identical byte for byte and in metadata
// (CDK's asset hash only reads contents, but a zip made by other tools would carry the mtimes).
const FIXED_MTIME = new Date('1980-01-01T00:00:00Z');

/** Top-level files worth keeping for their legal or provenance value; everything else is allow-listed below. */
const LEGAL_FILE = /^(licen[sc]e|notice|thirdpartynotices)(\.(md|txt))?$/i;

/**
 * Builds (or rebuilds from scratch) the layer for `arch` into `outDir` and returns where it is and its size.
 * Throws when onnxruntime-node is not installed or lacks the binaries of that architecture.
 * @example
 * const { dir } = buildOnnxruntimeLayer('arm64');
 * new lambda.LayerVersion(this, 'Ort', { code: lambda.Code.fromAsset(dir), compatibleArchitectures: [ARM_64] });
 */
export function buildOnnxruntimeLayer(arch: LayerArchitecture, outDir: string = defaultLayerDir(arch)): LayerBuild {
  if (!LAYER_ARCHITECTURES.includes(arch)) {
    throw new Error(`Unknown layer architecture "${String(arch)}": use one of ${LAYER_ARCHITECTURES.join(', ')}`);
  }
  const { ortNode, ortCommon } = locatePackages();
  const binaries = join(ortNode, 'bin', 'napi-v6', 'linux', NODE_ARCH[arch]);
  if (!existsSync(join(binaries, 'onnxruntime_binding.node'))) {
    throw new Error(
      `onnxruntime-node at ${ortNode} has no linux/${NODE_ARCH[arch]} binaries; reinstall it (npm ci) so the layer ` +
        'can be built from the npm package',
    );
  }

  const dir = resolve(outDir);
  rmSync(dir, { recursive: true, force: true });
  const modules = join(dir, 'nodejs', 'node_modules');

  const nodeTarget = join(modules, 'onnxruntime-node');
  copyFile(join(ortNode, 'package.json'), join(nodeTarget, 'package.json'));
  copyLegalFiles(ortNode, nodeTarget);
  copyTree(join(ortNode, 'dist'), join(nodeTarget, 'dist'));
  copyTree(binaries, join(nodeTarget, 'bin', 'napi-v6', 'linux', NODE_ARCH[arch]));

  const commonTarget = join(modules, 'onnxruntime-common');
  copyFile(join(ortCommon, 'package.json'), join(commonTarget, 'package.json'));
  copyLegalFiles(ortCommon, commonTarget);
  copyTree(join(ortCommon, 'dist'), join(commonTarget, 'dist'));

  addSharp(arch, modules);

  return { dir, unzippedBytes: treeBytes(dir) };
}

/** sharp's run-time dependencies besides its native pair (each copied whole: together under 1 MB). */
const SHARP_DEPENDENCIES = ['@img/colour', 'detect-libc', 'semver'] as const;

/** Copies sharp, its dependencies and the native packages of `arch` into the layer's `node_modules`. */
function addSharp(arch: LayerArchitecture, modules: string): void {
  const require = createRequire(import.meta.url);
  const sharpRoot = packageRoot(dirname(require.resolve('sharp')), 'sharp');
  const manifest = JSON.parse(readFileSync(join(sharpRoot, 'package.json'), 'utf8')) as {
    optionalDependencies: Record<string, string>;
  };
  const target = join(modules, 'sharp');
  copyFile(join(sharpRoot, 'package.json'), join(target, 'package.json'));
  copyLegalFiles(sharpRoot, target);
  copyTree(join(sharpRoot, 'dist'), join(target, 'dist'));
  const sharpRequire = createRequire(join(sharpRoot, 'package.json'));
  for (const name of SHARP_DEPENDENCIES) {
    const root = packageRoot(dirname(sharpRequire.resolve(name)), name);
    copyTree(root, join(modules, name));
  }
  for (const name of [`@img/sharp-linux-${NODE_ARCH[arch]}`, `@img/sharp-libvips-linux-${NODE_ARCH[arch]}`]) {
    const version = manifest.optionalDependencies[name];
    if (version === undefined)
      throw new Error(`sharp does not list ${name}; is sharp installed from the npm registry?`);
    copyTree(nativePackage(name, version, join(sharpRoot, '..')), join(modules, name));
  }
}

/** The walk from a resolved entry point up to the package's own root (some `exports` hide `package.json`). */
function packageRoot(start: string, name: string): string {
  let dir = start;
  while (!isPackageRoot(dir, name)) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`${name} is not installed; run npm ci`);
    dir = parent;
  }
  return dir;
}

/**
 * The directory of native package `name@version`: installed (the host's CPU), else the copy that `fetch-native.mjs`
 * (run by `npm install` as the project's postinstall, or here on demand) unpacked after checking its sha512 against
 * package-lock.json.
 */
function nativePackage(name: string, version: string, nodeModules: string): string {
  const installed = join(nodeModules, name);
  if (isPackageRoot(installed, name)) return installed;
  const output = execFileSync(process.execPath, [join(HERE, 'fetch-native.mjs'), `${name}@${version}`], {
    encoding: 'utf8',
  });
  const dir = output.trim().split('\n').pop() ?? '';
  if (!isPackageRoot(dir, name)) throw new Error(`fetch-native.mjs did not provide ${name}@${version}`);
  return dir;
}

/** Finds the installed packages the layer is made of. */
function locatePackages(): { ortNode: string; ortCommon: string } {
  const require = createRequire(import.meta.url);
  let ortNodeManifest: string;
  try {
    ortNodeManifest = require.resolve('onnxruntime-node/package.json');
  } catch (cause) {
    throw new Error('onnxruntime-node is not installed; run npm ci before building the layer', { cause });
  }
  const ortNode = dirname(ortNodeManifest);
  // onnxruntime-common's `exports` hide its package.json, so resolve its entry point the way onnxruntime-node
  // does at run time and walk up to the package root.
  let dir = dirname(createRequire(ortNodeManifest).resolve('onnxruntime-common'));
  while (!isPackageRoot(dir, 'onnxruntime-common')) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('onnxruntime-common is not installed next to onnxruntime-node; run npm ci');
    dir = parent;
  }
  return { ortNode, ortCommon: dir };
}

function isPackageRoot(dir: string, name: string): boolean {
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) return false;
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === name;
}

function copyFile(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  utimesSync(to, FIXED_MTIME, FIXED_MTIME);
}

function copyLegalFiles(fromPackage: string, toPackage: string): void {
  for (const name of readdirSync(fromPackage).sort()) {
    if (LEGAL_FILE.test(name) && lstatSync(join(fromPackage, name)).isFile()) {
      copyFile(join(fromPackage, name), join(toPackage, name));
    }
  }
}

// Sorted walk, regular files and directories only: a symlink in node_modules would point outside the layer.
function copyTree(from: string, to: string): void {
  for (const name of readdirSync(from).sort()) {
    const source = join(from, name);
    const stat = lstatSync(source);
    if (stat.isDirectory()) copyTree(source, join(to, name));
    else if (stat.isFile()) copyFile(source, join(to, name));
  }
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    total += stat.isDirectory() ? treeBytes(path) : stat.size;
  }
  return total;
}

/** `46.1 MB`: sizes as the README and the build log print them. */
export function formatMegabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function main(args: readonly string[]): void {
  const unknown = args.filter((a) => !LAYER_ARCHITECTURES.includes(a as LayerArchitecture));
  if (unknown.length > 0) {
    throw new Error(`Unknown architecture(s) ${unknown.join(', ')}: use ${LAYER_ARCHITECTURES.join(' and/or ')}`);
  }
  const archs = args.length > 0 ? (args as LayerArchitecture[]) : LAYER_ARCHITECTURES;
  for (const arch of archs) {
    const { dir, unzippedBytes } = buildOnnxruntimeLayer(arch);
    const share = ((unzippedBytes / LAMBDA_UNZIPPED_LIMIT_BYTES) * 100).toFixed(0);
    console.log(
      `onnxruntime layer ${arch}: ${formatMegabytes(unzippedBytes)} unzipped (${share}% of Lambda's 250 MB) in ${dir}`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
