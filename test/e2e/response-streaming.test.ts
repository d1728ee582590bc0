/**
 * Answers past Lambda's 6 MB buffered limit (issue 26): where the front streams (`RESPONSE_STREAMING=true`, what
 * infra sets for a function URL with `RESPONSE_STREAM` or a REST integration with `STREAM`), `npm start`'s stack
 * streams a 20 MB answer to the client intact; where it does not, the same request is a 413 that names the limit and
 * the option that lifts it, and the next request is served.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { PLATFORM_LIMITS } from '../../functions/core/platform-limits.js';
import type { Tensor } from '../../functions/core/types.js';
import type { LocalFrontOptions } from '../../functions/local/front.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { buildTileModel } from '../../tools/onnx/index.js';

const tileModel = buildTileModel();

// 1,000 distinct values 5,243 times: 5,243,000 FP32 elements, 20,972,000 bytes of output.
const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1000 + i / 7);
const inputs = (repeats: number): Tensor[] => [
  { name: 'x', datatype: 'FP32', shape: [x.length], data: x },
  { name: 'repeats', datatype: 'INT64', shape: [1], data: BigInt64Array.from([BigInt(repeats)]) },
];
const LARGE = 5243;

/**
 * `npm start`'s stack for the describe block it is called in, with `env` and the tile model registered: started
 * before its tests, closed and removed after them.
 */
function localStackWith(env: Record<string, string>, front?: LocalFrontOptions): () => LocalStack {
  let stack: LocalStack | undefined;
  let dataDir: string | undefined;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'streaming-'));
    stack = await startLocal({
      port: 0,
      s3Port: 0,
      dataDir,
      silent: true,
      env: { ...process.env, ...env },
      ...(front === undefined ? {} : { front }),
    });
    await stack.runtime.store.put('uploads/tile/tile.onnx', tileModel);
    await stack.settled();
    expect(stack.registrations.flatMap((r) => r.outcomes).map((o) => o.kind)).toEqual(['registered']);
  });
  afterAll(async () => {
    await stack?.close();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });
  return () => stack!;
}

/**
 * Infers with binary outputs. Node's fetch asks for gzip by default and decompresses what it gets: `identity`
 * unless told otherwise, so that the answer's bytes are what the function wrote.
 */
async function infer(stack: LocalStack, model: string, repeats: number, acceptEncoding = 'identity') {
  const request = encodeInferenceRequest(inputs(repeats), { binaryOutput: true });
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    body: request.body,
    headers: { ...request.headers, 'accept-encoding': acceptEncoding },
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

/** What onnxruntime itself answers for the same inputs: the bytes the client must receive. */
async function sessionOutput(repeats: number): Promise<Uint8Array> {
  const session = await ort.InferenceSession.create(tileModel);
  try {
    const result = await session.run({
      x: new ort.Tensor('float32', x, [x.length]),
      repeats: new ort.Tensor('int64', BigInt64Array.from([BigInt(repeats)]), [1]),
    });
    const y = result['y']!.data as Float32Array;
    return new Uint8Array(y.buffer, y.byteOffset, y.byteLength).slice();
  } finally {
    await session.release();
  }
}

describe('a front that streams', () => {
  const streaming = localStackWith({ RESPONSE_STREAMING: 'true' });

  it('streams a 20 MB answer to the client intact, then serves the next request', async () => {
    const expected = await sessionOutput(LARGE);

    const answer = await infer(streaming(), 'tile', LARGE);
    const next = await infer(streaming(), 'tile', 2);

    expect(answer.status, new TextDecoder().decode(answer.body.subarray(0, 300))).toBe(200);
    // Sent as it came, not as one buffered body of known length.
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(expected.byteLength).toBe(LARGE * x.length * 4);
    expect(expected.byteLength).toBeGreaterThan(PLATFORM_LIMITS.lambdaResponsePayloadBytes * 3);
    const decoded = decodeInferenceResponse(answer.body, answer.headers);
    const y = decoded.outputs[0]!;
    expect(y.shape).toEqual([LARGE * x.length]);
    const bytes = y.data as Float32Array;
    expect(Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), expected)).toBe(0);
    expect(next.status).toBe(200);
    expect(Array.from(decodeInferenceResponse(next.body, next.headers).outputs[0]!.data as Float32Array)).toEqual([
      ...x,
      ...x,
    ]);
  });

  it('streams a compressed answer when the client asks for one', async () => {
    const expected = await sessionOutput(LARGE);

    const answer = await infer(streaming(), 'tile', LARGE, 'gzip');

    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBe('gzip');
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    // fetch has decompressed it: the bytes after the JSON header are onnxruntime's.
    const y = decodeInferenceResponse(answer.body, answer.headers).outputs[0]!.data as Float32Array;
    expect(Buffer.compare(Buffer.from(y.buffer, y.byteOffset, y.byteLength), expected)).toBe(0);
  });

  it('serves the next request after a client that left mid-answer', async () => {
    const request = encodeInferenceRequest(inputs(LARGE), { binaryOutput: true });
    const left = await new Promise<number>((resolve, reject) => {
      const sent = http.request(`${streaming().gatewayUrl}/v2/models/tile/infer`, {
        method: 'POST',
        headers: { ...request.headers, 'content-length': String(request.body.byteLength) },
      });
      sent.on('response', (response) => {
        // The head and a first piece arrived: leave without reading the rest.
        response.once('data', () => {
          sent.destroy();
          resolve(response.statusCode ?? 0);
        });
      });
      sent.on('error', (error) => {
        if (!sent.destroyed) reject(error);
      });
      sent.end(request.body);
    });

    const next = await infer(streaming(), 'tile', 1);

    expect(left).toBe(200);
    expect(next.status).toBe(200);
    expect(Array.from(decodeInferenceResponse(next.body, next.headers).outputs[0]!.data as Float32Array)).toEqual([
      ...x,
    ]);
  });

  it('streams errors with their status and message', async () => {
    const missing = await infer(streaming(), 'no-such-model', 1);

    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/json');
    expect(JSON.parse(new TextDecoder().decode(missing.body))).toEqual({
      error: expect.stringContaining('no-such-model'),
    });
  });
});

describe("the function-URL front's emulation (FRONT=url), RESPONSE_STREAMING unset", () => {
  // As the CDK app decides it (frontStreams): a function URL streams the infer functions' answers by default.
  const url = localStackWith({}, { api: 'url', authorization: 'none' });

  it('streams a 20 MB answer through the function URL in 2.0 events, intact', async () => {
    const expected = await sessionOutput(LARGE);

    const answer = await infer(url(), 'tile', LARGE);

    expect(url().front.api).toBe('url');
    expect(answer.status, new TextDecoder().decode(answer.body.subarray(0, 300))).toBe(200);
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    const y = decodeInferenceResponse(answer.body, answer.headers).outputs[0]!.data as Float32Array;
    expect(Buffer.compare(Buffer.from(y.buffer, y.byteOffset, y.byteLength), expected)).toBe(0);
  });
});

describe('a buffered front', () => {
  const buffered = localStackWith({ RESPONSE_STREAMING: 'false' });

  it('refuses the same answer with a 413 naming the limit and the option that lifts it; the next request succeeds', async () => {
    const answer = await infer(buffered(), 'tile', LARGE);
    const next = await infer(buffered(), 'tile', 1);

    expect(answer.status).toBe(413);
    const { error } = JSON.parse(new TextDecoder().decode(answer.body)) as { error: string };
    expect(error).toContain(`over the ${PLATFORM_LIMITS.defaultMaxResponseBytes}-byte limit of a Lambda response`);
    expect(error).toContain('-c streaming=true');
    expect(error).toContain('-c api=url');
    expect(error).toContain('RESPONSE_STREAMING=true');
    expect(next.status).toBe(200);
    expect(Array.from(decodeInferenceResponse(next.body, next.headers).outputs[0]!.data as Float32Array)).toEqual([
      ...x,
    ]);
  });
});

describe('a front that cannot stream, asked to', () => {
  it('refuses HTTP API + RESPONSE_STREAMING=true before serving, and leaves no server holding a port', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'streaming-refused-'));
    const s3Port = await freePort();
    const start = (env: Record<string, string>, front?: LocalFrontOptions) =>
      startLocal({
        port: 0,
        s3Port,
        dataDir,
        silent: true,
        env: { ...process.env, ...env },
        ...(front ? { front } : {}),
      });

    await expect(start({ RESPONSE_STREAMING: 'true' }, { api: 'http', authorization: 'none' })).rejects.toThrow(
      /HTTP APIs cannot stream answers; use -c api=url or -c api=rest/,
    );
    // The same S3 port is free again: the refused stack closed its embedded S3 server.
    const next = await start({ RESPONSE_STREAMING: 'false' });
    await next.close();
    await rm(dataDir, { recursive: true, force: true });
  });
});

/** A loopback port no one listens on now. */
async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
