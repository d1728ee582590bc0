/**
 * Lambda's asynchronous invocation (`InvocationType: Event`) of an infer function under `npm start`: the call
 * returns at once, the handler runs in the background, a failed attempt is retried
 * (`ASYNC_INVOCATION.retryAttempts`), and the outcome goes to the destinations the stack configures
 * (`infra/async-invocation.ts`): on success a record like the EventBridge destination's, on failure the record
 * Lambda sends to the on-failure destination, which is the same function.
 */
import { ASYNC_INVOCATION, type AsyncFailureRecord, type AsyncJobEvent } from '../core/async-jobs.js';
import type { InferHandler } from '../transport/http-handlers.js';

/** A destination record: what Lambda delivers to an async invocation's destination. */
export interface AsyncInvocationRecord {
  readonly timestamp: string;
  readonly requestContext: { readonly condition: 'Success' | 'RetriesExhausted'; approximateInvokeCount: number };
  readonly requestPayload: AsyncJobEvent;
  readonly responsePayload: unknown;
}

/** Settings of {@link localAsyncInvoker}. */
export interface LocalAsyncInvokerOptions {
  /** The function invoked: resolved on each call (the handler is built after its invoker). */
  readonly handler: () => InferHandler;
  /** The on-success destination (deployed: EventBridge's default bus); the on-failure one is the function itself. */
  readonly onSuccess: (record: AsyncInvocationRecord) => void;
  /** Where a failure of the on-failure destination itself is reported (deployed: the function's log). */
  readonly onDestinationError: (error: unknown) => void;
  /** Attempts after the first. @default ASYNC_INVOCATION.retryAttempts */
  readonly retryAttempts?: number;
}

/** A local `Event` invoker and a way to wait for what it started. */
export interface LocalAsyncInvoker {
  /** Queues the invocation and returns, as Lambda's 202 does. */
  readonly invoke: (event: AsyncJobEvent) => Promise<void>;
  /** Resolves when every invocation started so far (destinations included) has finished. */
  readonly settled: () => Promise<void>;
}

/** Builds the local equivalent of `Invoke` with `InvocationType: Event`. */
export function localAsyncInvoker(options: LocalAsyncInvokerOptions): LocalAsyncInvoker {
  const pending = new Set<Promise<void>>();
  const retryAttempts = options.retryAttempts ?? ASYNC_INVOCATION.retryAttempts;

  async function deliver(event: AsyncJobEvent): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= retryAttempts + 1; attempt++) {
      try {
        const response = await options.handler()(event);
        options.onSuccess({
          timestamp: new Date().toISOString(),
          requestContext: { condition: 'Success', approximateInvokeCount: attempt },
          requestPayload: event,
          responsePayload: response,
        });
        return;
      } catch (error) {
        lastError = error;
      }
    }
    const record: AsyncFailureRecord & AsyncInvocationRecord = {
      timestamp: new Date().toISOString(),
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: retryAttempts + 1 },
      requestPayload: event,
      responsePayload: {
        errorType: (lastError as Error | undefined)?.name ?? 'Error',
        errorMessage: (lastError as Error | undefined)?.message ?? String(lastError),
      },
    };
    try {
      await options.handler()(record);
    } catch (error) {
      options.onDestinationError(error);
    }
  }

  return {
    invoke: (event) => {
      // Detached from the caller, as Lambda's queue is: the 202 does not wait for the job.
      const running: Promise<void> = deliver(event).finally(() => pending.delete(running));
      pending.add(running);
      return Promise.resolve();
    },
    settled: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
