/**
 * Whether saving the optimized graph at registration would pay: onnxruntime's `extended` optimizations (the
 * portable ones; `all` adds layout transformations specific to the CPU it runs on) saved to a file, then session
 * creation from that file against creation from the original, both with the serving options. Informative: it backs
 * the decision not to store optimized graphs (README "Performance").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions } from '../functions/adapters/onnxruntime-session.js';
import type { SessionOptions } from '../functions/core/session.js';
import { medians, timeAlternating } from './stats.js';

/** What {@link measureOptimizedGraph} reports. */
export interface OptimizedGraphResults {
  readonly optimized_graph_bytes: number;
  readonly session_create_ms: number;
  readonly optimized_graph_create_ms: number;
  readonly optimized_graph_create_ratio: number;
}

/** Saves `modelBytes`' `extended`-optimized graph in `workDir`, then times session creation from it against the original. */
export async function measureOptimizedGraph(
  modelBytes: Uint8Array,
  sessionOptions: SessionOptions,
  workDir: string,
): Promise<OptimizedGraphResults> {
  const optimizedFile = join(workDir, 'optimized.onnx');
  const options = ortSessionOptions(sessionOptions);
  const saver = await ort.InferenceSession.create(modelBytes, {
    ...options,
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: optimizedFile,
  });
  await saver.release();
  const optimized = new Uint8Array(readFileSync(optimizedFile));
  const create = (bytes: Uint8Array) => async () => {
    const session = await ort.InferenceSession.create(bytes, options);
    await session.release();
  };
  const m = medians(
    await timeAlternating(
      { original: create(modelBytes), optimized: create(optimized) },
      { warmup: 1, blocks: 4, perBlock: 2 },
    ),
  );
  return {
    optimized_graph_bytes: optimized.byteLength,
    session_create_ms: m.original,
    optimized_graph_create_ms: m.optimized,
    optimized_graph_create_ratio: m.optimized / m.original,
  };
}
