/**
 * A `SessionFactory` whose sessions each live in their own onnxruntime child process, for a process that serves
 * several models at once (`npm start`). A worker thread could not do what serving needs there: a native fault in
 * onnxruntime (SIGFPE on `INT32_MIN / -1`, an abort) ends the whole process, and a `run` cannot be stopped from
 * outside while it is inside native code (onnxruntime-node 1.30 runs it synchronously on the calling thread). A child
 * can be killed, and a dead child costs only what it was running.
 *
 * - Deadline: when a run's `signal` aborts, the child is killed with SIGKILL and the run rejects with the signal's
 *   reason; requests queued behind it on the same session get a 503 with `Retry-After`.
 * - Crash: a child that dies is the running request's {@link InferenceCrashedError} (502, naming the signal); the
 *   requests queued behind it get a 503.
 * - Restart: either way the session reports `alive === false`, and the session cache loads the version again (a new
 *   child) on the next request.
 *
 * One child per session (per model version) rather than a pool: a model stuck in a long run blocks only its own
 * requests, and killing its child drops no other model's session. Each child costs a Node process (about 80 MB),
 * which the session budget counts: it bounds how many stay loaded. The child is a few lines of plain JavaScript passed to
 * `node -e`, as registration's is: no file of its own to bundle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type * as ort from 'onnxruntime-node';
import { InferenceCrashedError, ModelRejectedError, ServiceUnavailableError } from '../core/errors.js';
import { killOnExit, onnxruntimePath } from './child-processes.js';
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

// One session per child; every message carries an id its answer repeats. The child exits when its parent goes away.
const CHILD_SOURCE = `
const ort = require(process.argv[1]);
let session;
process.on('disconnect', () => process.exit(0));
process.on('message', async (m) => {
  try {
    if (m.op === 'create') {
      session = await ort.InferenceSession.create(m.model, m.options);
      process.send({ id: m.id, ok: true, inputs: session.inputMetadata, outputs: session.outputMetadata });
    } else {
      const feeds = {};
      for (const t of m.inputs) feeds[t.name] = new ort.Tensor(t.type, t.data, t.shape);
      const results = await session.run(feeds, m.outputNames);
      process.send({ id: m.id, ok: true, outputs: m.outputNames.map((name) => {
        const v = results[name];
        return v === undefined ? undefined : { type: v.type, dims: v.dims, data: v.data };
      }) });
    }
  } catch (error) {
    process.send({ id: m.id, ok: false, message: String(error && error.message || error) });
  }
});
`;

/**
 * Resident memory of a child holding a tiny model (Node and onnxruntime themselves; measured: 81 MB on Linux x64):
 * the session budget counts it, so many small models cannot add a process each without bound.
 */
const CHILD_OVERHEAD_BYTES = 80 * 2 ** 20;

interface ChildAnswer {
  readonly id: number;
  readonly ok: boolean;
  readonly message?: string;
  readonly inputs?: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputs?: readonly unknown[];
}

interface Pending {
  readonly resolve: (answer: ChildAnswer) => void;
  readonly reject: (error: Error) => void;
}

/** One session in its own child process. */
class SupervisedModelSession implements ModelSession {
  /** In the order sent: the child answers in that order, so the first is the one running. */
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private ended = false;
  /** Set once the session exists in the child: a death before is a failed load, after it a failed run. */
  private loaded = false;
  public inputs: readonly TensorSpec[] = [];
  public outputs: readonly TensorSpec[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly live: Set<SupervisedModelSession>,
  ) {
    live.add(this);
    child.on('message', (answer: ChildAnswer) => {
      const pending = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      this.holdOpen();
      pending?.resolve(answer);
    });
    child.on('exit', (code, signal) => {
      const how = signal ?? `exit code ${code}`;
      this.end(
        () =>
          this.loaded
            ? new InferenceCrashedError(
                `onnxruntime's process died (${how}) while running the model on this request, a native fault in ` +
                  'the model or in onnxruntime: the request is refused, and the model is loaded again for the next one',
              )
            : new Error(`onnxruntime's process died (${how}) while loading the model`),
        `onnxruntime's process died (${how}) while running another request of this model; retry`,
      );
    });
    child.on('error', (error) =>
      this.end(
        () => new ServiceUnavailableError(`onnxruntime's process failed: ${messageOf(error)}; retry`, 1),
        `onnxruntime's process failed: ${messageOf(error)}; retry`,
      ),
    );
  }

  /** False once the child is gone: the session cache then loads the version again. */
  public get alive(): boolean {
    return !this.ended;
  }

  /** Starts a child and creates the session in it; a model onnxruntime refuses is a `ModelRejectedError`. */
  public static async create(
    model: Uint8Array | string,
    options: SessionOptions,
    live: Set<SupervisedModelSession>,
  ): Promise<SupervisedModelSession> {
    const child = spawn(process.execPath, ['-e', CHILD_SOURCE, onnxruntimePath()], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      serialization: 'advanced',
    });
    // Never what keeps this process alive: only an awaited answer does (see holdOpen). Ends with this process.
    child.unref();
    killOnExit(child);
    const session = new SupervisedModelSession(child, live);
    const answer = await session.call({ op: 'create', model, options: ortSessionOptions(options) });
    try {
      if (!answer.ok) throw new ModelRejectedError(`onnxruntime cannot load the model: ${messageOf(answer.message)}`);
      session.inputs = specsOf(answer.inputs ?? [], 'input');
      session.outputs = specsOf((answer.outputs ?? []) as ort.InferenceSession.ValueMetadata[], 'output');
      session.loaded = true;
    } catch (error) {
      await session.release();
      throw error;
    }
    return session;
  }

  public async run(inputs: readonly Tensor[], outputNames: readonly string[], signal?: AbortSignal): Promise<Tensor[]> {
    signal?.throwIfAborted();
    const { id, answer } = this.send({ op: 'run', inputs: transferableInputs(inputs), outputNames });
    // The only way to stop a native run: kill the process that runs it.
    const stop = () =>
      this.end(
        (failed) => (failed === id ? (signal?.reason as Error) : undefined),
        'onnxruntime was stopped at the deadline of an earlier request of this model; retry',
      );
    signal?.addEventListener('abort', stop, { once: true });
    let result: ChildAnswer;
    try {
      result = await answer;
    } finally {
      signal?.removeEventListener('abort', stop);
    }
    if (!result.ok) throw runFailure(new Error(result.message));
    return tensorsFromAnswer(outputNames, result.outputs);
  }

  public release(): Promise<void> {
    this.end(() => undefined, 'the session was released');
    return Promise.resolve();
  }

  private call(message: Record<string, unknown>): Promise<ChildAnswer> {
    return this.send(message).answer;
  }

  private send(message: Record<string, unknown>): { id: number; answer: Promise<ChildAnswer> } {
    const id = this.nextId++;
    if (this.ended) {
      return {
        id,
        answer: Promise.reject(new ServiceUnavailableError("the model's onnxruntime process ended; retry", 1)),
      };
    }
    const answer = new Promise<ChildAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.holdOpen();
      this.child.send({ ...message, id }, (error) => {
        if (error !== null)
          this.end(() => undefined, `onnxruntime's process could not be reached: ${error.message}; retry`);
      });
    });
    return { id, answer };
  }

  /** The child's channel keeps this process alive only while an answer is awaited: a server exits when it closes. */
  private holdOpen(): void {
    const channel = this.child.channel as { ref?: () => void; unref?: () => void } | undefined;
    if (this.pending.size > 0) channel?.ref?.();
    else channel?.unref?.();
  }

  /**
   * Kills the child (once) and fails every request waiting on it: the first (the one running) with `first(id)` when
   * that gives an error, the others (and the first otherwise) with a 503 saying `others`.
   */
  private end(first: (id: number) => Error | undefined, others: string): void {
    if (this.ended) return;
    this.ended = true;
    this.child.kill('SIGKILL');
    let running = true;
    for (const [id, pending] of this.pending) {
      pending.reject((running ? first(id) : undefined) ?? new ServiceUnavailableError(others, 1));
      running = false;
    }
    this.pending.clear();
    this.live.delete(this);
  }
}

/** A session factory over supervised children, with a way to stop them all. */
export interface SupervisedSessionFactory extends SessionFactory {
  /** Child processes currently running (one per loaded session). */
  readonly processes: () => number;
  /** Kills every child: the sessions end (a server that shuts down calls it). */
  close(): void;
}

/**
 * A `SessionFactory` whose sessions each run in a supervised onnxruntime child process: killed at a run's deadline,
 * and replaced (through the session cache) after it dies.
 * @example
 * const factory = supervisedSessionFactory();
 * // ... serve ...
 * factory.close();
 */
export function supervisedSessionFactory(): SupervisedSessionFactory {
  const live = new Set<SupervisedModelSession>();
  const create = (model: Uint8Array | string, options: SessionOptions): Promise<ModelSession> =>
    SupervisedModelSession.create(model, options, live);
  return {
    sessionOverheadBytes: CHILD_OVERHEAD_BYTES,
    create,
    // The child reads the file itself: only its path crosses the process boundary.
    createFromFile: create,
    processes: () => live.size,
    close: () => {
      for (const session of [...live]) void session.release();
    },
  };
}
