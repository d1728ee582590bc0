/**
 * The shutdown hook of the deployed infer function, in a real child process against a loopback Extensions API:
 * it registers an internal extension with no events (what makes Lambda send SIGTERM), holds `event/next`, and on
 * SIGTERM runs its work (capture's last batch) before exiting 0. Without an Extensions API it says why, and its
 * held call never keeps the process alive.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { SHUTDOWN_EXTENSION_NAME } from '../../functions/adapters/lambda-shutdown.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-serverless-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const adapter = fileURLToPath(new URL('../../functions/adapters/lambda-shutdown.ts', import.meta.url));
const CHILD = `
import { writeFileSync } from 'node:fs';
import { onLambdaShutdown } from ${JSON.stringify(adapter)};
const [api, out] = process.argv.slice(2);
await onLambdaShutdown(api, async () => {
  await new Promise((resolve) => setTimeout(resolve, 50));
  writeFileSync(out, 'flushed');
}, { unregistered: (reason) => console.log('unregistered: ' + reason) });
// Lambda's runtime loop keeps a real instance alive between invocations; this stands in for it.
if (process.argv[4] === 'runtime-loop') setInterval(() => undefined, 60_000);
console.log('ready');
`;
const childFile = join(dir, 'child.mts');
writeFileSync(childFile, CHILD);

/** A loopback Extensions API: registration answered with `status`; `event/next` held open, never answered. */
async function extensionsApi(status: number) {
  const seen: { register?: { name?: string; body: string }; nextId?: string } = {};
  let nextArrived: () => void = () => undefined;
  const next = new Promise<void>((resolve) => {
    nextArrived = resolve;
  });
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/2020-01-01/extension/register') {
        seen.register = { name: req.headers['lambda-extension-name'] as string, body };
        res.writeHead(status, status === 200 ? { 'lambda-extension-identifier': 'ext-1' } : {}).end('{}');
      } else if (req.method === 'GET' && req.url === '/2020-01-01/extension/event/next') {
        seen.nextId = req.headers['lambda-extension-identifier'] as string;
        nextArrived();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    seen,
    next,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function startChild(api: string, out: string, runtimeLoop: boolean) {
  const child = spawn(process.execPath, ['--import', 'tsx', childFile, api, out, runtimeLoop ? 'runtime-loop' : ''], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready')) resolve();
    });
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, ready, exit, stdout: () => stdout };
}

it('registers an internal extension with no events, holds next, and on SIGTERM runs the work, then exits 0', async () => {
  const api = await extensionsApi(200);
  const out = join(dir, 'flushed-1');
  try {
    const run = startChild(api.address, out, true);
    await run.ready;
    await api.next;
    run.child.kill('SIGTERM');
    const exit = await run.exit;

    expect(api.seen.register).toEqual({ name: SHUTDOWN_EXTENSION_NAME, body: '{"events":[]}' });
    expect(api.seen.nextId).toBe('ext-1');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, 'utf8')).toBe('flushed');
  } finally {
    await api.close();
  }
});

it('says why when the extension cannot be registered, and never holds the process', async () => {
  const api = await extensionsApi(403);
  try {
    const run = startChild(api.address, join(dir, 'flushed-2'), false);
    // Nothing else keeps it alive: it ends by itself.
    const exit = await run.exit;
    expect(run.stdout()).toContain('unregistered: the Extensions API answered 403 to the registration');
    expect(exit).toEqual({ code: 0, signal: null });
  } finally {
    await api.close();
  }
});
