/**
 * A `SessionFactory` whose sessions live in a child process under a deadline and a memory cap, for registration's
 * smoke test: an upload is untrusted code for onnxruntime (a `Loop` of 2^62 iterations, an allocation of 40 GB, a
 * kernel that aborts), and none of that may freeze or kill the process that also serves, or leave the upload without
 * an outcome. The child is killed when the deadline passes, when its resident memory passes the cap, or when the
 * session is released; each of those is a `ModelRejectedError`, so the upload is refused with the reason.
 *
 * The child is a few lines of plain JavaScript passed to `node -e`: it needs no file of its own in the Lambda bundle,
 * and everything else (options, metadata, tensor conversion, error text) stays in `onnxruntime-session.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { ENV } from '../core/contract.js';
import { killOnExit, onnxruntimePath } from './child-processes.js';
import { ModelRejectedError } from '../core/errors.js';
import { MAX_TENSOR_RANK, type ModelSession, type SessionFactory, type SessionOptions } from '../core/session.js';
import type { Tensor, TensorSpec } from '../core/types.js';
import {
  messageOf,
  ortSessionOptions,
  runFailure,
  specsOf,
  tensorsFromAnswer,
  transferableInputs,
} from './onnxruntime-session.js';

/** Bounds of one isolated session. */
export interface IsolationLimits {
  /** Wall-clock time the session may take, from its creation to its last run. */
  readonly deadlineMs: number;
  /** Resident memory of the child process (onnxruntime's native allocations included). */
  readonly memoryBytes: number;
}

/** How often the child's resident memory is sampled. */
const MEMORY_POLL_MS = 50;

// The child: creates one session from the bytes it is sent, runs it on request, answers over the IPC channel, and
// exits when its parent goes away. Errors travel as text; the parent turns them into the adapter's errors.
// Shapes deeper than MAX_TENSOR_RANK (argv[2]) are refused here, before millions of dimensions cross the channel.
// Tests can make it crash as onnxruntime would (\`ENV.isolatedSessionFault\`), to prove that a signal ends as a refusal.
const CHILD_SOURCE = `
const ort = require(process.argv[1]);
const maxRank = Number(process.argv[2]);
const tooDeep = (name, shape) => Array.isArray(shape) && shape.length > maxRank
  ? 'tensor "' + name + '" has ' + shape.length + ' dimensions; at most ' + maxRank + ' are served (the numpy limit): ' +
    're-export the model so that its inputs and outputs have fewer' : undefined;
const [faultSignal, faultOp] = (process.env.${ENV.isolatedSessionFault} || '').split(':');
let session;
process.on('disconnect', () => process.exit(0));
process.on('message', async (message) => {
  if (faultSignal && message.op === faultOp) process.kill(process.pid, faultSignal);
  try {
    if (message.op === 'create') {
      session = await ort.InferenceSession.create(message.model, message.options);
      const deep = [...session.inputMetadata, ...session.outputMetadata].map((m) => tooDeep(m.name, m.shape)).find(Boolean);
      if (deep) return process.send({ ok: false, message: deep });
      process.send({ ok: true, inputs: session.inputMetadata, outputs: session.outputMetadata });
    } else {
      const feeds = {};
      for (const t of message.inputs) feeds[t.name] = new ort.Tensor(t.type, t.data, t.shape);
      const results = await session.run(feeds, message.outputNames);
      const deep = message.outputNames.map((name) => tooDeep(name, results[name] && results[name].dims)).find(Boolean);
      if (deep) return process.send({ ok: false, message: deep });
      process.send({ ok: true, outputs: message.outputNames.map((name) => {
        const value = results[name];
        return value === undefined ? undefined : { type: value.type, dims: value.dims, data: value.data };
      }) });
    }
  } catch (error) {
    process.send({ ok: false, message: String(error && error.message || error) });
  }
});
`;

interface ChildAnswer {
  readonly ok: boolean;
  readonly message?: string;
  readonly inputs?: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputs?: readonly (
    | ort.InferenceSession.ValueMetadata
    | { type: string; dims: number[]; data: unknown }
    | undefined
  )[];
}

/** Resident memory of a process in bytes, from `/proc` (Linux, as on Lambda); `undefined` elsewhere. */
function residentBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** One session in its own child process. */
class IsolatedModelSession implements ModelSession {
  private pending: { resolve: (answer: ChildAnswer) => void; reject: (error: Error) => void } | undefined;
  /** Why the child is gone, once it is. */
  private ended: Error | undefined;
  private readonly deadline: ReturnType<typeof setTimeout>;
  private readonly memoryWatch: ReturnType<typeof setInterval>;
  private doing = 'starting';
  public inputs: readonly TensorSpec[] = [];
  public outputs: readonly TensorSpec[] = [];

  private constructor(
    private readonly child: ChildProcess,
    limits: IsolationLimits,
  ) {
    const seconds = Number((limits.deadlineMs / 1000).toFixed(1));
    const megabytes = Math.round(limits.memoryBytes / 2 ** 20);
    this.deadline = setTimeout(
      () => this.end(`onnxruntime did not finish ${this.doing} within ${seconds} s (the registration deadline)`),
      limits.deadlineMs,
    );
    this.memoryWatch = setInterval(() => {
      const resident = child.pid === undefined ? undefined : residentBytes(child.pid);
      if (resident !== undefined && resident > limits.memoryBytes) {
        this.end(`onnxruntime used more than ${megabytes} MB while ${this.doing} (the registration memory cap)`);
      }
    }, MEMORY_POLL_MS);
    child.on('message', (answer: ChildAnswer) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(answer);
    });
    child.on('exit', (code, signal) => {
      // A signal we did not send (ours end the session first): the model's native fault, named so that the user
      // can tell a crash from a refusal by onnxruntime.
      this.end(
        signal === null
          ? `onnxruntime stopped the process while ${this.doing} (exit code ${code})`
          : `the model crashed onnxruntime (${signal}) while ${this.doing}`,
      );
    });
    // Not the upload's fault (no process could start): a plain error, so that the event is delivered again.
    child.on('error', (error) => this.end(`the onnxruntime process failed: ${error.message}`, error, false));
  }

  /** Starts a child, creates the session in it; a model onnxruntime refuses is a `ModelRejectedError`. */
  public static async create(
    model: Uint8Array | string,
    options: SessionOptions,
    limits: IsolationLimits,
  ): Promise<IsolatedModelSession> {
    const child = spawn(process.execPath, ['-e', CHILD_SOURCE, onnxruntimePath(), String(MAX_TENSOR_RANK)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
      // A process group of its own: Ctrl-C reaches the terminal's whole group, and a child dead of that SIGINT would
      // be recorded as the model's crash. It ends with this process instead (killOnExit), its upload still pending.
      detached: true,
    });
    killOnExit(child);
    // onnxruntime writes fatal errors to stderr; keep the tail for the reason, and never let it block the child.
    child.stderr?.setEncoding('utf8').on('data', () => undefined);
    const session = new IsolatedModelSession(child, limits);
    session.doing = 'loading the model';
    let answer: ChildAnswer;
    try {
      answer = await session.call({ op: 'create', model, options: ortSessionOptions(options) });
    } catch (error) {
      await session.release();
      throw error;
    }
    if (!answer.ok) {
      await session.release();
      throw new ModelRejectedError(`onnxruntime cannot load the model: ${messageOf(answer.message)}`);
    }
    try {
      session.inputs = specsOf(answer.inputs ?? [], 'input');
      session.outputs = specsOf((answer.outputs ?? []) as ort.InferenceSession.ValueMetadata[], 'output');
    } catch (error) {
      await session.release();
      throw error;
    }
    return session;
  }

  public async run(inputs: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    this.doing = 'running the model';
    const answer = await this.call({
      op: 'run',
      inputs: transferableInputs(inputs),
      outputNames,
    });
    this.doing = 'idle';
    if (!answer.ok) throw runFailure(new Error(answer.message));
    return tensorsFromAnswer(outputNames, answer.outputs);
  }

  public release(): Promise<void> {
    this.end('the session was released');
    return Promise.resolve();
  }

  private call(message: unknown): Promise<ChildAnswer> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(message as object, (error) => {
        if (error !== null) this.end(`the onnxruntime process could not be reached: ${error.message}`, error, false);
      });
    });
  }

  /** Kills the child (once) and fails whatever waited on it with `reason`: the model's fault unless `rejects` is false. */
  private end(reason: string, cause?: Error, rejects = true): void {
    if (this.ended !== undefined) return;
    const options = cause === undefined ? undefined : { cause };
    this.ended = rejects ? new ModelRejectedError(reason, options) : new Error(reason, options);
    clearTimeout(this.deadline);
    clearInterval(this.memoryWatch);
    this.child.kill('SIGKILL');
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.ended);
  }
}

/**
 * A `SessionFactory` whose sessions each run in a child process, killed at `limits.deadlineMs` after creation or
 * when it holds more than `limits.memoryBytes` resident (sampled every 50 ms; Linux only, where `/proc` tells).
 * @example
 * const factory = isolatedSessionFactory({ deadlineMs: 100_000, memoryBytes: 2 * 2 ** 30 });
 */
export function isolatedSessionFactory(limits: IsolationLimits): SessionFactory {
  return {
    create: (model, options) => IsolatedModelSession.create(model, options, limits),
    // The child reads the file itself: only its path crosses the process boundary.
    createFromFile: (file, options) => IsolatedModelSession.create(file, options, limits),
  };
}
