/**
 * Readiness of `npm start`'s stack: `/v2/health/ready` (and a model's `/ready`) answer 503 with `"ready": false`
 * until the start-up seeds are registered, and the first inference after ready succeeds. A busy port is one line
 * naming the variable that moves it, not a stack trace.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { busyPortMessage, startLocal, type LocalStack } from '../../functions/local/local-runtime.js';

const run = promisify(execFile);
const dirs: string[] = [];
const stacks: LocalStack[] = [];
afterAll(async () => {
  for (const stack of stacks) await stack.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'readiness-'));
  dirs.push(dir);
  return dir;
}

/** A port nothing listens on (the kernel's choice, released again). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Holds a port until `close`. */
async function occupy(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const linearBody = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

describe('readiness', () => {
  it('is 503 until the seeds are registered; the first inference after ready succeeds', async () => {
    // Prepare: a known port, so that the gateway can be polled before startLocal resolves.
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const starting = startLocal({ port, s3Port: 0, dataDir: await tempDir(), catalogDir: 'models', silent: true });
    starting.then(
      (stack) => stacks.push(stack),
      () => undefined,
    );

    // Act: poll readiness as a deployment script would, until it says ready.
    const seen: Array<{ status: number; body: Record<string, unknown> }> = [];
    let modelReadyWhileStarting: { status: number; body: unknown } | undefined;
    for (;;) {
      const response = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
      if (response === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      const entry = { status: response.status, body: (await response.json()) as Record<string, unknown> };
      seen.push(entry);
      if (entry.status === 200) break;
      if (modelReadyWhileStarting === undefined) {
        const model = await fetch(`${url}/v2/models/linear/ready`);
        modelReadyWhileStarting = { status: model.status, body: await model.json() };
      }
      expect(response.headers.get('retry-after')).toBe('1');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const infer = await fetch(`${url}/v2/models/linear/infer`, {
      method: 'POST',
      body: linearBody,
      headers: { 'content-type': 'application/json' },
    });

    // Assess
    expect(infer.status).toBe(200);
    expect(await infer.json()).toMatchObject({ model_name: 'linear', model_version: '1' });
    expect(seen.at(-1)?.body).toEqual({ ready: true });
    const early = seen.filter((s) => s.status !== 200);
    expect(early.length, 'the gateway listens while the seeds register, so a poll sees them pending').toBeGreaterThan(
      0,
    );
    for (const s of early)
      expect(s).toEqual({ status: 503, body: { ready: false, error: expect.stringMatching(/start-up models/) } });
    expect(modelReadyWhileStarting).toEqual({
      status: 503,
      body: { name: 'linear', ready: false, error: expect.stringMatching(/start-up models/) },
    });
    const stack = await starting;
    const registered = stack.registrations.flatMap((r) => r.outcomes).filter((o) => o.kind === 'registered');
    expect(registered.map((o) => ('model' in o ? o.model : '')).sort()).toEqual([...stack.seeded].sort());
  }, 120_000);
});

describe('busy ports', () => {
  it('names PORT or S3_PORT in one line, and a busy gateway port releases the S3 port', async () => {
    const busy = await occupy();
    const s3Port = await freePort();
    try {
      const failure = await startLocal({ port: busy.port, s3Port, dataDir: await tempDir(), silent: true }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(busyPortMessage(failure, { port: busy.port, s3Port })).toBe(
        `npm start: port ${busy.port} is already in use (PORT); stop what listens there, or run PORT=${busy.port + 1} npm start`,
      );
      expect(busyPortMessage(failure, { port: 1, s3Port: busy.port })).toMatch(/\(S3_PORT\); .* S3_PORT=/);
      expect(busyPortMessage(new Error('other'), { port: 1, s3Port: 2 })).toBeUndefined();
      // The S3 server started first and was closed again: its port is free for the next start.
      const stack = await startLocal({ port: 0, s3Port, dataDir: await tempDir(), silent: true });
      stacks.push(stack);
      expect(stack.s3.endpoint).toBe(`http://127.0.0.1:${s3Port}`);
    } finally {
      await busy.close();
    }
  });

  it('npm start prints only that line and exits 1', async () => {
    const busy = await occupy();
    try {
      const failure = await run(path.join('node_modules', '.bin', 'tsx'), ['functions/local/main.ts'], {
        env: { ...process.env, PORT: String(await freePort()), S3_PORT: String(busy.port), DATA_DIR: await tempDir() },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure.code).toBe(1);
      expect(failure.stderr.trim()).toBe(
        `npm start: port ${busy.port} is already in use (S3_PORT); stop what listens there, or run S3_PORT=${busy.port + 1} npm start`,
      );
    } finally {
      await busy.close();
    }
  }, 60_000);
});
