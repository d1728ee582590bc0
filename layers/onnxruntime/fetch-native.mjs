/**
 * Fetches sharp's native packages for every Lambda CPU into `layers/onnxruntime/cache/`, so that the layer of either
 * architecture can be built offline (`cdk synth` needs no network). npm installs only the host CPU's `@img` pair; the
 * other one comes from `npm pack`, from the npm registry (the only source `npm install` uses), and is kept only when
 * its sha512 equals the integrity package-lock.json records. Plain Node (no tsx): it runs as the project's
 * `postinstall`, also where dev dependencies are omitted. `layers/onnxruntime/build.ts` calls it for a missing pair.
 *
 * Usage: `node layers/onnxruntime/fetch-native.mjs [<name>@<version> ...]` (default: every linux x64/arm64 pair sharp
 * lists). Prints the directory of each package.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

/** The directory holding `name@version`, unpacked into the cache after its integrity check. */
export function fetchNativePackage(name, version) {
  const cache = join(HERE, 'cache', `${name.replace('/', '+')}-${version}`);
  const unpacked = join(cache, 'package');
  if (existsSync(join(unpacked, 'package.json'))) return unpacked;
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const locked = lock.packages?.[`node_modules/${name}`];
  if (locked?.version !== version || locked.integrity === undefined) {
    throw new Error(`package-lock.json has no ${name}@${version} with an integrity: run npm install to refresh the lock`);
  }
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const packed = JSON.parse(
    execFileSync('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', cache], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  const tarball = join(cache, packed[0].filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== locked.integrity) {
    rmSync(cache, { recursive: true, force: true });
    throw new Error(`${name}@${version} from npm pack has ${integrity}, package-lock.json says ${locked.integrity}`);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', cache]);
  rmSync(tarball);
  return unpacked;
}

/** Every linux x64/arm64 native package sharp lists, as `[name, version]`. */
function sharpLinuxPackages() {
  const manifest = join(ROOT, 'node_modules', 'sharp', 'package.json');
  if (!existsSync(manifest)) return [];
  const { optionalDependencies = {} } = JSON.parse(readFileSync(manifest, 'utf8'));
  return Object.entries(optionalDependencies).filter(([name]) => /^@img\/sharp-(libvips-)?linux-(x64|arm64)$/.test(name));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.length > 2
    ? process.argv.slice(2).map((spec) => [spec.slice(0, spec.lastIndexOf('@')), spec.slice(spec.lastIndexOf('@') + 1)])
    : sharpLinuxPackages();
  for (const [name, version] of wanted) {
    const installed = join(ROOT, 'node_modules', name, 'package.json');
    if (process.argv.length === 2 && existsSync(installed)) continue; // the host's pair: npm installed it
    console.log(fetchNativePackage(name, version));
  }
}
