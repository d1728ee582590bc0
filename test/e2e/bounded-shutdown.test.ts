/**
 * `npm start` stops within 10 s of SIGTERM whatever runs: here a registration stuck in onnxruntime (a Loop of 2^62
 * iterations, under a deadline far beyond the test) and an inference stuck on the serving thread. The real entry
 * point runs as users run it (`tsx functions/local/main.ts`); afterwards both ports are free again, no process of
 * the stack is left (registration's child included), and the next start registers the abandoned upload.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { ENV } from '../../functions/core/contract.js';
import { startLocal } from '../../functions/local/local-runtime.js';
import { buildLoopModel } from '../../tools/onnx/index.js';

const SHUTDOWN_BOUND_MS = 10_000;
const ENDLESS_KEY = 'uploads/endless/loop.onnx';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Every process descending from `pid`, from `/proc` (Linux). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent is the 4th field, after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [child, of] of parents) {
      if (of === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Whether `pid` is a running process (a zombie has ended; only its exit status is left for its parent). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Resolves once `port` on 127.0.0.1 can be listened on again (it is closed right away). */
function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  for (let attempt = 0; attempt < 1200; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('npm start shutdown', () => {
  // SIGTERM to the entry point (a service manager, `docker stop`), or Ctrl-C: SIGINT to the terminal's whole process
  // group, which must not reach registration's child (its death by SIGINT would be recorded as the model's crash).
  it.each([
    { signal: 'SIGTERM', to: 'the process' },
    { signal: 'SIGINT', to: 'its process group (Ctrl-C)' },
  ] as const)(
    'exits within 10 s of $signal to $to during a stuck registration and inference, releasing its ports',
    async ({ signal, to }) => {
      // Prepare: the entry point on ephemeral ports over a fresh data folder; registration's deadline out of reach.
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shutdown-'));
      dirs.push(dataDir);
      const child = spawn(path.join('node_modules', '.bin', 'tsx'), ['functions/local/main.ts'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // A process group of its own, as a terminal gives `npm start`.
        detached: true,
        env: {
          ...process.env,
          [ENV.port]: '0',
          [ENV.s3Port]: '0',
          [ENV.dataDir]: dataDir,
          [ENV.registrationTimeoutSeconds]: '600',
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );
      let stack: number[] = [];
      try {
        const gatewayUrl = await until(() => /ready on (http:\/\/\S+)/.exec(stdout)?.[1], `the ready line (${stderr})`);
        const s3 = /embedded S3: (\S+) {2}bucket: (\S+) {2}access key: (\S+) {2}secret: (\S+) {2}region: (\S+)/.exec(
          stdout,
        );
        if (s3 === null) throw new Error(`no embedded S3 line in: ${stdout}`);
        const [, endpoint = '', bucket = '', accessKeyId = '', secretAccessKey = '', region = ''] = s3;
        const store = new S3BlobStore(
          createS3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } }),
          bucket,
        );
        const ports = [Number(new URL(gatewayUrl).port), Number(new URL(endpoint).port)];

        // A model whose request chooses its trip count registers (its smoke inference runs 0 trips)...
        await store.put('uploads/spin/spin.onnx', buildLoopModel({ trips: 'input', body: 'Identity' }));
        await until(async () => {
          const response = await fetch(`${gatewayUrl}/v2/models/spin/ready`);
          return response.status === 200 ? true : undefined;
        }, 'spin to be ready');
        // ...then one request asks for 10^12 trips, and the endless upload starts its registration.
        const stuck = fetch(`${gatewayUrl}/v2/models/spin/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [
              { name: 'trips', datatype: 'INT64', shape: [], data: [1_000_000_000_000] },
              { name: 'x', datatype: 'FP32', shape: [1], data: [1] },
            ],
          }),
        }).catch((error: unknown) => error);
        await store.put(ENDLESS_KEY, buildLoopModel({ trips: 2n ** 62n, body: 'Add' }));
        // Registration is stuck once its isolated child runs (`node -e`, below the entry point).
        const registering = await until(
          () => descendants(child.pid ?? 0).find((pid) => commandLine(pid).includes(' -e ')),
          'the registration child',
        );
        await new Promise((resolve) => setTimeout(resolve, 1000));
        stack = [child.pid ?? 0, ...descendants(child.pid ?? 0)];

        // Act
        const signalled = performance.now();
        if (to === 'the process') child.kill(signal);
        else process.kill(-(child.pid ?? 0), signal);
        const exit = await Promise.race([
          exited,
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), SHUTDOWN_BOUND_MS)),
        ]);
        const elapsedMs = performance.now() - signalled;

        // Assess
        expect(exit, `still running ${Math.round(elapsedMs)} ms after ${signal}; stdout: ${stdout}`).toBeDefined();
        expect(await stuck).not.toHaveProperty('status', 200);
        // Every process of the stack is gone within the bound too: a child killed as its parent exits takes the kernel
        // a moment to end, so wait for it up to the bound, never past it.
        while ([registering, ...stack].some(alive) && performance.now() - signalled < SHUTDOWN_BOUND_MS) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(alive(registering)).toBe(false);
        expect(stack.filter(alive).map((pid) => `${pid} ${commandLine(pid)}`)).toEqual([]);
        for (const port of ports) expect(await listenable(port)).toBe(true);
        // The abandoned upload had no outcome: the next start registers it (refused here, at a short deadline).
        const next = await startLocal({
          port: 0,
          s3Port: 0,
          dataDir,
          silent: true,
          env: { ...process.env, [ENV.registrationTimeoutSeconds]: '2' },
        });
        await next.settled();
        await next.close();
        const reconciled = next.registrations.flatMap((result) => result.reconciled ?? []);
        expect(reconciled).toMatchObject([{ kind: 'rejected', key: ENDLESS_KEY }]);
      } finally {
        // Nothing of a failed run may outlive the test.
        for (const pid of [...descendants(child.pid ?? 0), ...stack, child.pid ?? 0].filter(
          (pid) => pid > 0 && alive(pid),
        ))
          process.kill(pid, 'SIGKILL');
      }
    },
    180_000,
  );
});
