/**
 * Bounded request reading, on `npm start`'s stack (`startLocal()`): stalled uploads are dropped at the body-read
 * deadline, so that they stop holding the gateway's request bytes and the next POST is served; and a body over the
 * 10 MB limit gets a 413 that Node's fetch (undici) and curl can read, because the gateway reads and drops the rest
 * of it (a lingering close) instead of resetting the connection while the client still sends.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { PLATFORM_LIMITS } from '../../functions/core/platform-limits.js';
import { ConfigurationError, readConfig } from '../../functions/wiring/config.js';
import { linearBody, linearModel, sendRaw } from './fixture.js';

const MIB = 1024 * 1024;
const LIMIT = PLATFORM_LIMITS.apiGatewayMaxBodyBytes;
/** Short, so that the test waits seconds, not the default 30. */
const BODY_TIMEOUT_SECONDS = 2;
/** Set by .ci/run, which installs curl: then a missing curl fails instead of skipping. */
const REQUIRE_CURL = process.env.REQUIRE_CURL === '1';
const hasCurl = spawnSync('curl', ['--version']).status === 0;

let stack: LocalStack;
let dataDir: string;
let port: number;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-reading-'));
  stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { GATEWAY_BODY_TIMEOUT_SECONDS: String(BODY_TIMEOUT_SECONDS), GATEWAY_LINGER_SECONDS: '1' },
  });
  port = Number(new URL(stack.gatewayUrl).port);
  await stack.runtime.store.put('uploads/linear/linear.onnx', linearModel(2, 1));
  await stack.settled();
  expect(stack.registrations.flatMap((r) => r.outcomes).map((o) => o.kind)).toEqual(['registered']);
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const post = () =>
  sendRaw(port, {
    method: 'POST',
    path: '/v2/models/linear/infer',
    headers: { 'content-type': 'application/json' },
    body: linearBody([[1, 2, 3, 4]]),
  });

/** Opens a connection that declares a 10 MiB body, sends all of it but the last byte, and goes silent. */
function stalledUpload(): Promise<{ socket: net.Socket; answer: Promise<string> }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${LIMIT}\r\n\r\n`,
      );
      socket.write(Buffer.alloc(LIMIT - 1, 0x20), () => resolve({ socket, answer }));
    });
    let text = '';
    const answer = new Promise<string>((done) => {
      socket.on('data', (data: Buffer) => {
        text += data.toString('latin1');
      });
      socket.on('close', () => done(text));
    });
    socket.on('error', () => undefined);
  });
}

it('drops four stalled 10 MiB uploads at the read deadline, and then serves other POSTs', async () => {
  const stalled = await Promise.all([0, 1, 2, 3].map(() => stalledUpload()));
  // The four hold the gateway's 40 MiB of request bytes: another POST is refused meanwhile (what they caused before
  // the deadline existed, for as long as they stayed).
  let during = await post();
  for (let i = 0; i < 20 && during.status === 200; i++) during = await post();

  const answers = await Promise.all(stalled.map((s) => s.answer));
  const after = await post();
  for (const s of stalled) s.socket.destroy();

  expect(during.status, during.text).toBe(503);
  for (const answer of answers) {
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain(
      `"error":"the request body did not arrive within ${BODY_TIMEOUT_SECONDS} s (${LIMIT - 1} bytes read)`,
    );
  }
  expect(after.status, after.text).toBe(200);
  // y = 2 x (1 + 2 + 3 + 4) + 1.
  expect(JSON.parse(after.text).outputs[0].data).toEqual([21]);
}, 30_000);

it('answers a 12 MB body with a 413 that Node fetch reads', async () => {
  const response = await fetch(`${stack.gatewayUrl}/v2/models/linear/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.alloc(12 * 1000 * 1000, 0x20),
  });

  expect(response.status).toBe(413);
  expect(await response.json()).toEqual({
    error: `the request body is over ${LIMIT} bytes, the API Gateway REST API's limit: send fewer rows per request`,
  });
  // The connection ended cleanly: the next request is served.
  expect((await post()).status).toBe(200);
});

it.runIf(hasCurl || REQUIRE_CURL)(
  'answers a 12 MB body with a 413 that curl reads, with and without Expect: 100-continue',
  async () => {
    const file = path.join(dataDir, 'twelve-mb.json');
    await writeFile(file, Buffer.alloc(12 * 1000 * 1000, 0x20));
    const curl = (...extra: string[]) =>
      promisify(execFile)('curl', [
        '-sS',
        '-w',
        '\n%{http_code}',
        '-H',
        'content-type: application/json',
        ...extra,
        '--data-binary',
        `@${file}`,
        `${stack.gatewayUrl}/v2/models/linear/infer`,
      ]);

    const expecting = await curl();
    const streaming = await curl('-H', 'Expect:');

    const error = `{"error":"the request body is over ${LIMIT} bytes, the API Gateway REST API's limit: send fewer rows per request"}`;
    expect(expecting.stdout).toBe(`${error}\n413`);
    expect(streaming.stdout).toBe(`${error}\n413`);
    expect(streaming.stderr).toBe('');
  },
);

it.runIf(!hasCurl && !REQUIRE_CURL)('needs curl for the curl case (apt-get install curl; REQUIRE_CURL=1 in CI)', () => {
  expect(hasCurl).toBe(false);
});

it('closes the connection of a body over twice the limit after a bounded drain', async () => {
  const total = 200 * MIB;
  const { written, answer } = await new Promise<{ written: number; answer: string }>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let sent = 0;
    let text = '';
    const chunk = Buffer.alloc(MIB, 0x20);
    const pump = () => {
      while (!socket.destroyed && sent < total) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
    });
    socket.on('close', () => resolve({ written: sent, answer: text }));
    socket.on('error', () => undefined);
    socket.write(`POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n`);
    socket.write(`${total.toString(16)}\r\n`, pump);
  });

  expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  // Read up to twice the limit, then closed: never the whole 200 MiB (what the socket buffers hold counts too).
  expect(written).toBeLessThan(2 * LIMIT + 16 * MIB);
});

it('reads the read bounds from the environment, with the defaults the README states', () => {
  expect(readConfig({}).gateway).toEqual({ bodyTimeoutMs: 30_000, minBodyBytesPerSecond: 16_384, lingerMs: 5_000 });
  expect(
    readConfig({ GATEWAY_BODY_TIMEOUT_SECONDS: '0.5', GATEWAY_MIN_BODY_RATE: '0', GATEWAY_LINGER_SECONDS: '0' })
      .gateway,
  ).toEqual({ bodyTimeoutMs: 500, minBodyBytesPerSecond: 0, lingerMs: 0 });
  expect(() => readConfig({ GATEWAY_BODY_TIMEOUT_SECONDS: '0' })).toThrow(
    new ConfigurationError('GATEWAY_BODY_TIMEOUT_SECONDS must be a positive number, got "0"'),
  );
  expect(() => readConfig({ GATEWAY_MIN_BODY_RATE: 'fast' })).toThrow(
    new ConfigurationError('GATEWAY_MIN_BODY_RATE must be a number of 0 or more, got "fast"'),
  );
});
