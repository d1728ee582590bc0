/**
 * Bounded image decoding on `npm start`'s stack (`startLocal()`), with hostile images a few hundred KB each:
 * - progressive-JPEG scan bombs (2,647 legal scans at 6320 x 6320, about a minute of CPU each here) are refused from
 *   their markers, before libjpeg reads a scan;
 * - a 40 MP CMYK JPEG (600 KB; over 10 s to turn into sRGB here) is stopped at its decode time limit;
 * - neither starves the embedded S3 server, whose file reads share libuv's four threads with sharp: decodes pass one
 *   at a time, so a small S3 GET answers within 1 s meanwhile;
 * - 16 x 40 MP PNGs in one request (2 MB) are refused at the per-request pixel limit, with at most one decoded image
 *   held, instead of 16 (1.9 GB).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { identityModel, sendRaw, type Answer } from '../hardening/fixture.js';
import { flatCmykJpeg, scanBombJpeg } from './scan-bomb.js';

/** Short, so that the test waits a second per decode, not the default 5. */
const DECODE_TIMEOUT_SECONDS = 1;
const SIDE = 6320; // 39,942,400 pixels: under the default 40,000,000
const MB = 1024 * 1024;
/** What one decoded image at the pixel limit takes (8-bit RGB), the unit of the memory bound. */
const DECODED_IMAGE_BYTES = 3 * DEFAULT_LIMITS.maxImagePixels;

let stack: LocalStack;
let dataDir: string;
let port: number;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'decode-bounds-'));
  stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { MODEL_LIMITS: JSON.stringify({ imageDecodeTimeoutSeconds: DECODE_TIMEOUT_SECONDS }) },
  });
  port = Number(new URL(stack.gatewayUrl).port);
  const sidecar = { preprocess: { images: { input: { size: [2, 2], resize: 'stretch' } } } };
  await stack.runtime.store.put('uploads/picture/picture.onnx.json', Buffer.from(JSON.stringify(sidecar)));
  await stack.runtime.store.put('uploads/picture/picture.onnx', identityModel('FP32', ['N', 3, 2, 2]));
  await stack.runtime.store.put('probe/small.txt', Buffer.from('a small object'));
  await stack.settled();
  expect(stack.registrations.flatMap((r) => r.outcomes).map((o) => o.kind)).toEqual(['registered']);
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const postImage = (body: Uint8Array, type = 'image/jpeg') =>
  sendRaw(port, {
    method: 'POST',
    path: '/v2/models/picture/infer',
    headers: { 'content-type': type, accept: 'application/json' },
    body,
  });

function errorOf(answer: Answer): string {
  return (JSON.parse(answer.text) as { error: string }).error;
}

/**
 * Runs `load` while GETting a small object from the embedded S3 server in a loop; returns the load's result and
 * the latency of every GET, in milliseconds.
 */
async function whileGetting<T>(load: () => Promise<T>): Promise<{ result: T; latencies: number[] }> {
  const latencies: number[] = [];
  let done = false;
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      const object = await stack.runtime.store.get('probe/small.txt');
      latencies.push(performance.now() - started);
      expect(Buffer.from(object!.body).toString()).toBe('a small object');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    return { result: await load(), latencies };
  } finally {
    done = true;
    await probe;
  }
}

it('refuses four scan bombs at once from their markers, naming limits.maxJpegScans, while S3 answers', async () => {
  const bomb = scanBombJpeg({ width: SIDE, height: SIDE });
  expect(bomb.scans).toBe(2647);

  const { result: answers, latencies } = await whileGetting(() =>
    Promise.all([0, 1, 2, 3].map(() => postImage(bomb.bytes))),
  );

  for (const answer of answers) {
    expect(answer.status, answer.text).toBe(413);
    expect(errorOf(answer)).toMatch(
      /^the JPEG has 2647 scans, over the limit of 100 \(limits\.maxJpegScans\): .*save it again as a baseline/,
    );
  }
  console.log(`4 scan bombs at once: S3 GET max ${Math.round(Math.max(...latencies))} ms`);
  expect(latencies.length).toBeGreaterThan(0);
  expect(Math.max(...latencies)).toBeLessThan(1000);
});

it('stops a decode at limits.imageDecodeTimeoutSeconds; four at once pass one at a time while S3 answers', async () => {
  // A flat 40 MP CMYK JPEG: small on the wire, seconds of colour conversion (lcms) per decode.
  const cmyk = flatCmykJpeg(SIDE, SIDE);
  expect(cmyk.byteLength).toBeLessThan(MB);

  const { result: answers, latencies } = await whileGetting(() => Promise.all([0, 1, 2, 3].map(() => postImage(cmyk))));

  // Each decode runs to its time limit; one waiting for its turn longer than that is told to retry.
  const statuses = answers.map((a) => a.status);
  console.log(`4 CMYK decodes at once: ${statuses.join(', ')}; S3 GET max ${Math.round(Math.max(...latencies))} ms`);
  expect(statuses).toContain(413);
  for (const answer of answers) {
    if (answer.status === 413) {
      expect(errorOf(answer)).toBe(
        `decoding the image took longer than ${DECODE_TIMEOUT_SECONDS} s (limits.imageDecodeTimeoutSeconds): send a smaller image`,
      );
    } else {
      expect(answer.status, answer.text).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      expect(errorOf(answer)).toMatch(/^the server is decoding other images and this one waited \d+ s for its turn/);
    }
  }
  expect(latencies.length).toBeGreaterThan(0);
  expect(Math.max(...latencies)).toBeLessThan(1000);
}, 60_000);

/** A flat grey 40 MP PNG of about 130 KB. */
const flatPng = () =>
  sharp({ create: { width: SIDE, height: SIDE, channels: 3, background: '#808080' } })
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer();

/**
 * Sends `images` as one BYTES input of the binary extension to `picture` on `gatewayPort`, sampling this process's
 * RSS meanwhile; returns the answer and the peak RSS growth in bytes.
 */
async function postBatch(gatewayPort: number, images: readonly Buffer[]): Promise<{ answer: Answer; growth: number }> {
  const framed = Buffer.concat(
    images.flatMap((image) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(image.byteLength);
      return [length, image];
    }),
  );
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'input',
          datatype: 'BYTES',
          shape: [images.length],
          parameters: { binary_data_size: framed.byteLength },
        },
      ],
    }),
  );
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const answer = await sendRaw(gatewayPort, {
    method: 'POST',
    path: '/v2/models/picture/infer',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
    body: Buffer.concat([header, framed]),
  });
  clearInterval(sampler);
  const growth = peak - before;
  console.log(
    `${images.length} x 40 MP PNGs (${framed.byteLength} bytes): ${answer.status}, peak RSS growth ` +
      `${Math.round(growth / MB)} MiB (one decoded image: ${Math.round(DECODED_IMAGE_BYTES / MB)} MiB)`,
  );
  return { answer, growth };
}

it('refuses 16 x 40 MP PNGs in one request at the per-request pixel limit, holding one decoded image', async () => {
  const png = await flatPng();

  const { answer, growth } = await postBatch(
    port,
    Array.from({ length: 16 }, () => png),
  );

  expect(answer.status, answer.text).toBe(413);
  expect(errorOf(answer)).toBe(
    `input "input", BYTES element 1: the image is ${SIDE} x ${SIDE} = ${SIDE * SIDE} pixels; with the ` +
      `${SIDE * SIDE} pixels of the images before it in this request that makes ${2 * SIDE * SIDE}, over the limit ` +
      `of ${DEFAULT_LIMITS.maxImagePixels} pixels decoded per request (limits.maxImagePixels): send fewer images ` +
      'per request, or smaller ones',
  );
  // The README's bound: one decoded image at the limit, and as much again for libvips, the body and its copies.
  expect(growth).toBeLessThan(2 * DECODED_IMAGE_BYTES);
}, 60_000);

it('serves the next valid image', async () => {
  const small = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();

  const answer = await postImage(small, 'image/png');

  expect(answer.status, answer.text).toBe(200);
  expect(JSON.parse(answer.text).outputs[0].data).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
});

describe('with a pixel budget for 8 images of 40 MP', () => {
  let wide: LocalStack;
  let wideDir: string;

  beforeAll(async () => {
    wideDir = await mkdtemp(path.join(os.tmpdir(), 'decode-bounds-wide-'));
    wide = await startLocal({
      port: 0,
      s3Port: 0,
      dataDir: wideDir,
      silent: true,
      env: { MODEL_LIMITS: JSON.stringify({ maxImagePixels: 8 * SIDE * SIDE }) },
    });
    const sidecar = { preprocess: { images: { input: { size: [2, 2], resize: 'stretch' } } } };
    await wide.runtime.store.put('uploads/picture/picture.onnx.json', Buffer.from(JSON.stringify(sidecar)));
    await wide.runtime.store.put('uploads/picture/picture.onnx', identityModel('FP32', ['N', 3, 2, 2]));
    await wide.settled();
  }, 60_000);
  afterAll(async () => {
    await wide?.close();
    await rm(wideDir, { recursive: true, force: true });
  });

  it('turns each image into its slice of the batch as it is decoded, never holding all 8', async () => {
    const png = await flatPng();

    const { answer, growth } = await postBatch(
      Number(new URL(wide.gatewayUrl).port),
      Array.from({ length: 8 }, () => png),
    );

    expect(answer.status, answer.text).toBe(200);
    const [output] = JSON.parse(answer.text).outputs;
    expect(output.shape).toEqual([8, 3, 2, 2]);
    // 0x80 / 255 in every element of every image.
    expect(new Set(output.data)).toEqual(new Set([Math.fround(128 / 255)]));
    // Decoded first, the 8 would take 8 decoded images (914 MiB); converted as decoded, only what the garbage
    // collector has not reclaimed yet adds to the one in hand (measured: 269 MiB).
    expect(growth).toBeLessThan(4 * DECODED_IMAGE_BYTES);
  }, 60_000);
});
