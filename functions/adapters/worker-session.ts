/**
 * A `SessionFactory` whose sessions live on one worker thread: onnxruntime-node 1.30 blocks the calling thread for
 * the whole of `InferenceSession.create` and of `run` (measured on a 2.8 MB detection model: 1.4 s and 1.1 s with
 * the event loop stalled throughout), so a process that serves several things at once can move them off its event
 * loop (`ONNXRUNTIME_THREAD=worker`). `npm start` uses supervised processes instead (`supervised-session.ts`): a
 * thread dies with the process on a native fault, and cannot be stopped inside a native run. On Lambda one request
 * runs at a time per instance, and the main thread (no message copies) stays the default.
 *
 * The worker's code is passed with `eval`, as the registration child's is, so no bundle needs a file of its own;
 * tensor conversion, options and error text stay in `onnxruntime-session.ts`.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { ModelRejectedError, ServiceUnavailableError } from '../core/errors.js';
import type { ModelSession, SessionFactory, SessionOptions } from '../core/session.js';
import type { Tensor, TensorSpec } from '../core/types.js';
import {
  messageOf,
  ortSessionOptions,
  runFailure,
  specsOf,
  tensorsFromAnswer,
  transferableInputs,
} from './onnxruntime-session.js';

// Sessions by number; every message carries an id its answer repeats.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData);
const sessions = new Map();
let next = 0;
parentPort.on('message', async (m) => {
  try {
    if (m.op === 'create') {
      const session = await ort.InferenceSession.create(m.model, m.options);
      const sid = next++;
      sessions.set(sid, session);
      parentPort.postMessage({ id: m.id, ok: true, sid, inputs: session.inputMetadata, outputs: session.outputMetadata });
    } else if (m.op === 'run') {
      const feeds = {};
      for (const t of m.inputs) feeds[t.name] = new ort.Tensor(t.type, t.data, t.shape);
      const results = await sessions.get(m.sid).run(feeds, m.outputNames);
      parentPort.postMessage({ id: m.id, ok: true, outputs: m.outputNames.map((name) => {
        const v = results[name];
        return v === undefined ? undefined : { type: v.type, dims: v.dims, data: v.data };
      }) });
    } else {
      const session = sessions.get(m.sid);
      sessions.delete(m.sid);
      if (session !== undefined) await session.release();
      parentPort.postMessage({ id: m.id, ok: true });
    }
  } catch (error) {
    parentPort.postMessage({ id: m.id, ok: false, message: String(error && error.message || error) });
  }
});
`;

interface WorkerAnswer {
  readonly id: number;
  readonly ok: boolean;
  readonly message?: string;
  readonly sid?: number;
  readonly inputs?: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputs?: readonly unknown[];
}

/** The one worker of a factory, started on first use and again after it dies. */
class OnnxruntimeWorker {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (a: WorkerAnswer) => void; reject: (e: Error) => void }>();
  /** Bumped each time a worker starts: sessions of an earlier one are gone. */
  public generation = 0;

  /** True when the worker of `generation` was retired and none has started since. */
  public retired(generation: number): boolean {
    return this.worker === undefined && this.generation === generation;
  }

  /**
   * Gives up on the current worker (a run past its deadline): it is terminated, which takes effect once its native
   * call returns, and the next call starts a new one. Its sessions are gone; their requests fail with `reason`.
   */
  public retire(reason: Error): void {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
    void worker.terminate();
  }

  public call(message: Record<string, unknown>): Promise<WorkerAnswer> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    let path = 'onnxruntime-node';
    try {
      path = createRequire(import.meta.url).resolve('onnxruntime-node');
    } catch {
      // Left to the worker's own resolution.
    }
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: path });
    worker.on('message', (answer: WorkerAnswer) => {
      const pending = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      pending?.resolve(answer);
    });
    const died = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const error = new ServiceUnavailableError(`the onnxruntime worker stopped (${why}); retry`, 1);
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
    worker.on('error', (error) => died(error.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    // Never what keeps a process alive: a server closes its sockets and exits. After the listeners: adding a
    // 'message' listener refs the worker's port again.
    worker.unref();
    this.worker = worker;
    this.generation += 1;
    return worker;
  }
}

class WorkerModelSession implements ModelSession {
  public constructor(
    private readonly worker: OnnxruntimeWorker,
    private readonly sid: number,
    private readonly generation: number,
    public readonly inputs: readonly TensorSpec[],
    public readonly outputs: readonly TensorSpec[],
  ) {}

  /** False once the worker that held it was replaced: the session cache loads the version again. */
  public get alive(): boolean {
    return this.worker.generation === this.generation && !this.worker.retired(this.generation);
  }

  public async run(inputs: readonly Tensor[], outputNames: readonly string[], signal?: AbortSignal): Promise<Tensor[]> {
    if (!this.alive) {
      throw new ServiceUnavailableError('the onnxruntime worker restarted and lost this session; retry', 1);
    }
    // A native run cannot be interrupted: past the deadline the worker is retired (its thread ends once the run
    // does), so that the next requests get a fresh worker instead of queueing behind it.
    const retire = () => this.worker.retire(signal?.reason as Error);
    signal?.addEventListener('abort', retire, { once: true });
    let answer: WorkerAnswer;
    try {
      answer = await this.worker.call({
        op: 'run',
        sid: this.sid,
        inputs: transferableInputs(inputs),
        outputNames,
      });
    } finally {
      signal?.removeEventListener('abort', retire);
    }
    if (!answer.ok) throw runFailure(new Error(answer.message));
    return tensorsFromAnswer(outputNames, answer.outputs);
  }

  public async release(): Promise<void> {
    if (!this.alive) return;
    await this.worker.call({ op: 'release', sid: this.sid });
  }
}

/**
 * A `SessionFactory` whose sessions are created and run on one worker thread of this process, so that the event
 * loop keeps answering while onnxruntime works. Inputs and outputs are copied between threads.
 * @example
 * const factory = workerSessionFactory();
 */
export function workerSessionFactory(): SessionFactory {
  const worker = new OnnxruntimeWorker();
  const create = async (model: Uint8Array | string, options: SessionOptions): Promise<ModelSession> => {
    const answer = await worker.call({ op: 'create', model, options: ortSessionOptions(options) });
    if (!answer.ok || answer.sid === undefined) {
      throw new ModelRejectedError(`onnxruntime cannot load the model: ${messageOf(answer.message)}`);
    }
    try {
      const inputs = specsOf(answer.inputs ?? [], 'input');
      const outputs = specsOf((answer.outputs ?? []) as ort.InferenceSession.ValueMetadata[], 'output');
      return new WorkerModelSession(worker, answer.sid, worker.generation, inputs, outputs);
    } catch (error) {
      await worker.call({ op: 'release', sid: answer.sid });
      throw error;
    }
  };
  // The worker reads a file itself: only its path crosses the thread boundary.
  return { create, createFromFile: create };
}
