/**
 * Response streaming (docs/streaming.md): a 20 MB binary answer streamed through `npm start`'s gateway
 * (`RESPONSE_STREAMING=true`), against `session.run` of the same request in this process as the baseline. The
 * ratios say what delivering the answer costs on top of computing it, and how soon its first byte arrives.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeInferenceRequest } from '../functions/core/codec/index.js';
import { startLocal } from '../functions/local/local-runtime.js';
import { buildTileModel } from '../tools/onnx/index.js';
import { medians, timeAlternating } from './stats.js';

/** What {@link measureStreaming} reports (milliseconds are medians). */
export interface StreamingResults {
  readonly answer_bytes: number;
  readonly session_run_ms: number;
  readonly streamed_ms: number;
  readonly first_byte_ms: number;
  /** Streamed end to end (request, inference, delivery) over `session.run` alone. */
  readonly streamed_over_run: number;
  /** When the first body byte arrived, over when the last did. */
  readonly first_byte_over_last: number;
}

const REPEATS = 5243;
const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1000);

/** One streamed request: resolves with when the first and the last body bytes arrived (ms since sent). */
function streamedRequest(url: string, body: Uint8Array, headers: Record<string, string>) {
  return new Promise<{ first: number; last: number; bytes: number }>((resolve, reject) => {
    const started = performance.now();
    let first = NaN;
    let bytes = 0;
    const request = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': body.byteLength } });
    request.on('response', (response) => {
      response.on('data', (chunk: Buffer) => {
        if (Number.isNaN(first)) first = performance.now() - started;
        bytes += chunk.length;
      });
      response.on('end', () =>
        response.statusCode === 200
          ? resolve({ first, last: performance.now() - started, bytes })
          : reject(new Error(`status ${response.statusCode}`)),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Runs the section in a local stack of its own under `workDir`. */
export async function measureStreaming(workDir: string): Promise<StreamingResults> {
  const dataDir = mkdtempSync(join(workDir, 'streaming-'));
  const stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { ...process.env, RESPONSE_STREAMING: 'true' },
  });
  const session = await ort.InferenceSession.create(buildTileModel());
  try {
    await stack.runtime.store.put('uploads/tile/tile.onnx', buildTileModel());
    await stack.settled();
    const request = encodeInferenceRequest(
      [
        { name: 'x', datatype: 'FP32', shape: [x.length], data: x },
        { name: 'repeats', datatype: 'INT64', shape: [1], data: BigInt64Array.from([BigInt(REPEATS)]) },
      ],
      { binaryOutput: true },
    );
    const url = `${stack.gatewayUrl}/v2/models/tile/infer`;
    const feeds = {
      x: new ort.Tensor('float32', x, [x.length]),
      repeats: new ort.Tensor('int64', BigInt64Array.from([BigInt(REPEATS)]), [1]),
    };
    const firsts: number[] = [];
    const lasts: number[] = [];
    let answerBytes = 0;
    const samples = await timeAlternating(
      {
        run: () => session.run(feeds),
        streamed: async () => {
          const timing = await streamedRequest(url, request.body, { ...request.headers });
          firsts.push(timing.first);
          lasts.push(timing.last);
          answerBytes = timing.bytes;
        },
      },
      { warmup: 2, blocks: 5, perBlock: 2 },
    );
    const { run, streamed } = medians(samples);
    const { first, last } = medians({ first: firsts, last: lasts });
    return {
      answer_bytes: answerBytes,
      session_run_ms: run,
      streamed_ms: streamed,
      first_byte_ms: first,
      streamed_over_run: streamed / run,
      first_byte_over_last: first / last,
    };
  } finally {
    await session.release();
    await stack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
