/**
 * The inference deadline on Lambda, where serving runs onnxruntime on the main thread (no copies, the warm path's
 * target): onnxruntime-node 1.30 blocks that thread for the whole `run`, so no timer of the handler can fire while a
 * run is stuck, and a native run cannot be stopped from inside the process anyway. A watchdog thread can still act:
 * past the deadline it posts the 504 for the invocation to Lambda's Runtime API
 * (`POST /2018-06-01/runtime/invocation/<id>/response`, the call the runtime itself makes with a handler's result),
 * then ends the process with SIGKILL. Lambda starts a fresh instance for the next request; the stuck native work
 * cannot poison this one (burn its CPU, hold its memory) any longer.
 *
 * Cost per run: two messages to the thread (arm, disarm). The thread starts with the first run, beside it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Worker } from 'node:worker_threads';
import type { InferenceTimeoutError } from '../core/errors.js';
import type { RunWatchdog } from '../core/model-service.js';

// Armed with the answer to post; disarmed when the run ends. The process is ended even if the post fails: a stuck
// run must not keep the instance.
const WATCHDOG_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const [host, port] = workerData.split(':');
const armed = new Map();
const end = () => process.kill(process.pid, 'SIGKILL');
parentPort.on('message', (m) => {
  if (m.op === 'disarm') {
    clearTimeout(armed.get(m.run));
    armed.delete(m.run);
    return;
  }
  armed.set(m.run, setTimeout(() => {
    const body = Buffer.from(m.answer.body);
    const chunked = m.answer.headers['transfer-encoding'] === 'chunked';
    const request = http.request({
      host, port: Number(port), method: 'POST',
      path: '/2018-06-01/runtime/invocation/' + encodeURIComponent(m.requestId) + '/response',
      headers: chunked ? m.answer.headers : { ...m.answer.headers, 'content-length': body.length },
    }, (response) => { response.resume(); response.on('end', end); response.on('error', end); });
    request.on('error', end);
    request.setTimeout(1000, end);
    request.end(body);
  }, m.timeoutMs));
});
`;

/** Settings of {@link lambdaRunWatchdog}. */
export interface LambdaRunWatchdogOptions {
  /** `AWS_LAMBDA_RUNTIME_API`: `host:port` of the Runtime API. */
  readonly runtimeApi: string;
  /** The invocation's answer to a deadline error (the handler's one error mapping), as the POST carries it. */
  readonly render: (error: InferenceTimeoutError, requestId: string) => RuntimeApiAnswer;
}

/**
 * An invocation's answer as posted to the Runtime API: a buffered function posts its result as JSON; a streaming
 * one posts in the streaming response mode (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked), or the
 * front would read a buffered result's JSON as the body of a 200.
 */
export interface RuntimeApiAnswer {
  /** Headers of the POST, lower-case names (`content-length` is added unless `transfer-encoding` is chunked). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** A {@link RunWatchdog} for Lambda; `around` tells it which invocation a run belongs to. */
export interface LambdaRunWatchdog extends RunWatchdog {
  /** Runs `work` (one invocation's handling) so that the runs it starts answer invocation `requestId`. */
  around<T>(requestId: string, work: () => Promise<T>): Promise<T>;
}

/**
 * @example
 * const watchdog = lambdaRunWatchdog({ runtimeApi, render: (error, id) => runtimeApiAnswer(errorResponse(error, id), 'buffered') });
 * export const handler = (event, context) => watchdog.around(context.awsRequestId, () => serve(event, context));
 */
export function lambdaRunWatchdog(options: LambdaRunWatchdogOptions): LambdaRunWatchdog {
  const invocation = new AsyncLocalStorage<string>();
  let thread: Worker | undefined;
  let nextRun = 0;
  const threadOf = (): Worker => {
    if (thread === undefined) {
      thread = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: options.runtimeApi });
      // Never what keeps the instance alive between invocations.
      thread.unref();
    }
    return thread;
  };
  return {
    around: (requestId, work) => invocation.run(requestId, work),
    watch: (timeoutMs, expired) => {
      const requestId = invocation.getStore();
      // A run outside an invocation (a preload at init) has no answer to give: the function's timeout applies.
      if (requestId === undefined) return () => undefined;
      const run = nextRun++;
      const watcher = threadOf();
      watcher.postMessage({ op: 'arm', run, timeoutMs, requestId, answer: options.render(expired, requestId) });
      return () => watcher.postMessage({ op: 'disarm', run });
    },
  };
}
