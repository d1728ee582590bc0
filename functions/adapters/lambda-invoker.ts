/**
 * The warmers' self-invocation on the AWS Lambda API: one signed `Invoke` request over node:https. Not the SDK's
 * Lambda client: bundled, it and its shared SDK core were about 350 KB of the infer bundle that every cold start
 * compiled, for a call most instances never make (README, "Performance").
 */
import type { SelfInvoker } from '../core/warmer.js';
import { createAwsPoster } from './aws-request.js';
import type { CredentialsSource } from './aws-signing.js';

/** Options of {@link createLambdaInvoker}. */
export interface LambdaInvokerOptions {
  /** The region of the function (Lambda's `AWS_REGION`). */
  readonly region: string;
  /** Read on the first fan-out (the function's role credentials, from its environment). */
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
  const endpoint = options.endpoint ?? `https://lambda.${options.region}.amazonaws.com`;
  const base = new URL(endpoint);
  const post = createAwsPoster('lambda', endpoint, options.region, options.credentials);
  return async (payload, target) => {
    // Escaped once here; the signer escapes the path once more for the canonical request, as Lambda expects.
    const path = `${base.pathname.replace(/\/$/, '')}/2015-03-31/functions/${encodeURIComponent(target ?? functionName)}/invocations`;
    const response = await post(
      path,
      { 'content-type': 'application/json', 'x-amz-invocation-type': 'RequestResponse' },
      JSON.stringify(payload),
    );
    if (response.status < 200 || response.status >= 300) {
      const type = response.headers['x-amzn-errortype'] ?? `HTTP ${response.status}`;
      throw new Error(`warmer invocation refused: ${String(type).split(':')[0]} ${response.text.slice(0, 300)}`);
    }
    const functionError = response.headers['x-amz-function-error'];
    if (functionError !== undefined) throw new Error(`warmer invocation failed: ${String(functionError)}`);
  };
}
