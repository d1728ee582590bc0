/**
 * The local gateway stops reading a body it refused (the connection closes after a bounded drain, instead of
 * reading gigabytes on a keep-alive connection), caps the request bytes it holds across connections, and drops a
 * body that stalls under its minimum rate.
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../functions/local/gateway.js';
import { createControlHandler } from '../../functions/transport/http-handlers.js';
import { createObservability } from '../../functions/wiring/observability.js';
import { linearBody, linearModel, sendRaw, startHardened, type HardenedStack } from './fixture.js';

const MIB = 1024 * 1024;
let stack: HardenedStack;
let gateway: Gateway;
let port: number;

beforeAll(async () => {
  stack = await startHardened();
  expect((await stack.register('linear', 'linear.onnx', linearModel(2, 1))).kind).toBe('registered');
  const observability = createObservability('gateway-bodies', false);
  observability.logger.setLogLevel('SILENT');
  gateway = await startGateway({
    port: 0,
    infer: stack.infer,
    control: createControlHandler(stack.runtime, observability),
    maxBodyBytes: 2 * MIB,
    maxBufferedBytes: 5 * MIB,
  });
  port = Number(new URL(gateway.url).port);
});
afterAll(async () => {
  await gateway?.close();
  await stack?.close();
});

/**
 * Sends a request head, then body bytes as fast as the server takes them, until the server closes the connection
 * or `total` bytes are written. Resolves with the bytes written and what the server answered.
 */
function stream(head: string, total: number): Promise<{ written: number; answer: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let written = 0;
    let answer = '';
    let done = false;
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ written, answer, closedByServer });
    };
    const pump = () => {
      while (!done && written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (written >= total) setTimeout(() => finish(false), 2000);
    };
    socket.on('data', (data: Buffer) => {
      answer += data.toString('latin1');
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(head, pump);
  });
}

it('refuses a declared oversized body at once and closes the connection after a bounded drain', async () => {
  const total = 200 * MIB;
  const head = `POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`;

  const { written, answer, closedByServer } = await stream(head, total);

  expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  expect(answer.toLowerCase()).toContain('connection: close');
  expect(closedByServer).toBe(true);
  expect(written).toBeLessThan(total / 4);
});

it('refuses a chunked body once it passes the limit, without reading the rest', async () => {
  const total = 200 * MIB;
  const head =
    'POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
  // One chunk of the whole size: the server sees body bytes as they come, with no length announced up front.
  const { written, answer, closedByServer } = await stream(`${head}${total.toString(16)}\r\n`, total);

  expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  expect(closedByServer).toBe(true);
  expect(written).toBeLessThan(total / 4);
});

it('answers 503 past the bytes it may hold across connections, and serves again once they are gone', async () => {
  // Three connections each hold 1.5 MiB of a 1.9 MiB body (under the 2 MiB limit) and wait: 4.5 MiB of 5 MiB.
  const sockets = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<net.Socket>((resolve) => {
          const socket = net.connect(port, '127.0.0.1', () => {
            socket.write(
              `POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\ncontent-length: ${Math.floor(1.9 * MIB)}\r\n\r\n`,
            );
            socket.write(Buffer.alloc(1.5 * MIB, 0x20), () => resolve(socket));
          });
          socket.on('error', () => undefined);
        }),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const over = await sendRaw(port, {
    method: 'POST',
    path: '/v2/models/linear/infer',
    headers: { 'content-type': 'application/json' },
    body: Buffer.alloc(MIB, 0x20),
  });
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await sendRaw(port, {
    method: 'POST',
    path: '/v2/models/linear/infer',
    headers: { 'content-type': 'application/json' },
    body: linearBody([[1, 2, 3, 4]]),
  });

  expect(over.status, over.text).toBe(503);
  expect(over.headers['retry-after']).toBe('1');
  expect(JSON.parse(over.text)).toEqual({
    error: 'the gateway holds 5242880 bytes of request bodies already; retry shortly',
  });
  expect(after.status, after.text).toBe(200);
});

it('answers 408 to a body that stalls under the minimum rate, long before the deadline', async () => {
  const slow = await startGateway({
    port: 0,
    infer: stack.infer,
    control: createControlHandler(stack.runtime, createObservability('gateway-bodies', false)),
    bodyTimeoutMs: 60_000,
    minBodyBytesPerSecond: 1024,
    bodyRateWindowMs: 300,
    lingerMs: 200,
  });
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect(Number(new URL(slow.url).port), '127.0.0.1', () => {
      // 100 bytes of a 1,000-byte body, then nothing: 333 bytes/s over the first window at best.
      socket.write('POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n');
      socket.write(Buffer.alloc(100, 0x20));
    });
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => undefined);
  });
  await slow.close();

  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(answer).toMatch(
    /"error":"the request body arrived at \d+ bytes\/s over 0.3 s, under the minimum of 1024 bytes\/s \(100 bytes read\): send the body without pausing"/,
  );
});
