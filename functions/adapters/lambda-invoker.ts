/**
 * The functions' own calls to the AWS Lambda API: the warmers' self-invocation and the async requests' queued
 * invocation, each one signed `Invoke` request (`aws-request.ts`). Not the SDK's Lambda client: bundled, it and its
 * shared SDK core were about 350 KB of the infer bundle that every cold start compiled, for a call most instances
 * never make (docs/performance.md).
 */
import type { SelfInvoker } from '../core/warmer.js';
import { createAwsPoster } from './aws-request.js';
import type { CredentialsSource } from './aws-signing.js';

/** Options of {@link createLambdaInvoker} and {@link createEventInvoker}. */
export interface LambdaInvokerOptions {
  /** The region of the function (Lambda's `AWS_REGION`). */
  readonly region: string;
  /** Read on the first call (the function's role credentials, from its environment). */
  readonly credentials: () => CredentialsSource;
  /**
   * The Lambda API's endpoint, for tests.
   * @default `https://lambda.<region>.amazonaws.com`
   */
  readonly endpoint?: string;
}

/**
 * Invokes the fan-out's `target` (the qualified ARN the warmer came in through), else `functionName`, synchronously
 * (`RequestResponse`, so that the invocations overlap and land on distinct instances). One attempt: a warmer is
 * best effort, and the next schedule tries again. Rejects when the call or the invoked function failed.
 *
 * @example
 * ```ts
 * const invoke = createLambdaInvoker('infer-iris', { region: 'eu-west-1', credentials: () => credentialsFromEnvironment() });
 * await invoke({ warmer: true, concurrency: 1 });
 * ```
 */
export function createLambdaInvoker(functionName: string, options: LambdaInvokerOptions): SelfInvoker {
  const invoke = lambdaInvoke(options);
  return async (payload, target) => {
    const { status, text, functionError } = await invoke(target ?? functionName, payload, 'RequestResponse');
    if (status < 200 || status >= 300) throw new Error(`warmer invocation refused: ${text}`);
    if (functionError !== undefined) throw new Error(`warmer invocation failed: ${functionError}`);
  };
}

/**
 * Queues `payload` for `target` (a qualified function name such as `infer-iris:async`) with `InvocationType: Event`:
 * Lambda answers 202 once the event is queued, then runs it with the retries and destinations of the target's
 * event invoke configuration. Rejects when Lambda refused to queue it.
 *
 * @example
 * ```ts
 * const enqueue = createEventInvoker('infer-iris:async', { region: 'eu-west-1', credentials: () => credentialsFromEnvironment() });
 * await enqueue({ asyncInference: { model: 'iris', id } });
 * ```
 */
export function createEventInvoker(target: string, options: LambdaInvokerOptions): (payload: unknown) => Promise<void> {
  const invoke = lambdaInvoke(options);
  return async (payload) => {
    const { status, text } = await invoke(target, payload, 'Event');
    if (status !== 202) throw new Error(`asynchronous invocation of ${target} refused: ${text}`);
  };
}

/** One signed `Invoke` call: the status, the error type and body on failure, and the function's error if any. */
function lambdaInvoke(
  options: LambdaInvokerOptions,
): (
  target: string,
  payload: unknown,
  invocationType: 'RequestResponse' | 'Event',
) => Promise<{ status: number; text: string; functionError?: string }> {
  const endpoint = options.endpoint ?? `https://lambda.${options.region}.amazonaws.com`;
  const base = new URL(endpoint);
  const post = createAwsPoster('lambda', endpoint, options.region, options.credentials);
  return async (target, payload, invocationType) => {
    // Escaped once here; the signer escapes the path once more for the canonical request, as Lambda expects.
    const path = `${base.pathname.replace(/\/$/, '')}/2015-03-31/functions/${encodeURIComponent(target)}/invocations`;
    const response = await post(
      path,
      { 'content-type': 'application/json', 'x-amz-invocation-type': invocationType },
      JSON.stringify(payload),
    );
    const status = response.status;
    if (status < 200 || status >= 300) {
      const type = response.headers['x-amzn-errortype'] ?? `HTTP ${status}`;
      return { status, text: `${String(type).split(':')[0]} ${response.text.slice(0, 300)}` };
    }
    const functionError = response.headers['x-amz-function-error'];
    return {
      status,
      text: response.text,
      ...(functionError === undefined ? {} : { functionError: String(functionError) }),
    };
  };
}
