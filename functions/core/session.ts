/**
 * The inference-engine boundary of the core. `functions/adapters/onnxruntime-session.ts` implements it on
 * onnxruntime-node; the core never imports onnxruntime itself.
 */
import type { Tensor, TensorSpec } from './types.js';

/** Graph optimization level, as onnxruntime names it. */
/**
 * Most dimensions a served tensor may have: numpy's limit (`NPY_MAXDIMS`, 64 since numpy 2.0), so every client
 * can build and read it. Registration refuses a model whose inputs or outputs have more (a legacy `Reshape` of
 * millions of ones would otherwise carry a shape of millions of numbers through every step and answer).
 */
export const MAX_TENSOR_RANK = 64;

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** How a session is created. */
export interface SessionOptions {
  /** Threads used inside one operator; Lambda gives one vCPU per 1,769 MB of memory. */
  readonly intraOpNumThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
}

/** A loaded model, ready to run. */
export interface ModelSession {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /**
   * False once the engine behind the session is gone (its process died or was stopped at a deadline): the session
   * cache then loads the version again instead of running on it. @default true
   */
  readonly alive?: boolean;
  /**
   * Runs the model; `outputNames` selects and orders the outputs returned. When `signal` aborts (the inference
   * deadline), the session stops the work as far as its engine allows and rejects with `signal.reason`.
   */
  run(inputs: readonly Tensor[], outputNames: readonly string[], signal?: AbortSignal): Promise<Tensor[]>;
  /** Frees native memory; the session must not be used afterwards. */
  release(): Promise<void>;
}

/** Creates sessions from model bytes, or from a model file on local disk. */
export interface SessionFactory {
  /**
   * Memory each session costs beyond its model (a process of its own), charged against the session budget with the
   * model file's size. @default 0
   */
  readonly sessionOverheadBytes?: number;
  create(model: Uint8Array, options: SessionOptions): Promise<ModelSession>;
  /**
   * Creates the session from a `.onnx` file (its external data files beside it): the engine reads the file itself,
   * so no copy of the model passes through JavaScript memory. Serving loads every model this way.
   */
  createFromFile(file: string, options: SessionOptions): Promise<ModelSession>;
}
