/**
 * The warmers' self-invocation on the AWS Lambda API: one signed `Invoke` request over node:https. Not the SDK's
 * Lambda client: bundled, it and its shared SDK core were about 350 KB of the infer bundle that every cold start
 * compiled, for a call most instances never make (README, "Performance").
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SelfInvoker } from '../core/warmer.js';
import { createSigner, type CredentialsSource } from './aws-signing.js';
import { S3_CLIENT_DEFAULTS } from './s3-settings.js';

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

/** Reads a whole response body as text. */
async function textOf(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
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
  const base = new URL(options.endpoint ?? `https://lambda.${options.region}.amazonaws.com`);
  const https = base.protocol === 'https:';
  const agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  let signer: ReturnType<typeof createSigner> | undefined;
  return async (target, payload, invocationType) => {
    signer ??= createSigner('lambda', options.region, options.credentials());
    const body = JSON.stringify(payload);
    // Escaped once here; the signer escapes the path once more for the canonical request, as Lambda expects.
    const path = `${base.pathname.replace(/\/$/, '')}/2015-03-31/functions/${encodeURIComponent(target)}/invocations`;
    const signed = await signer.sign({
      method: 'POST',
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port === '' ? {} : { port: Number(base.port) }),
      path,
      query: {},
      headers: {
        host: base.host,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-amz-invocation-type': invocationType,
      },
      body,
    });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = (https ? httpsRequest : httpRequest)(
        { method: 'POST', hostname: base.hostname, port: base.port, path, headers: signed.headers, agent },
        resolve,
      );
      outgoing.setTimeout(S3_CLIENT_DEFAULTS.socketTimeoutMs, () =>
        outgoing.destroy(new Error(`the Lambda API stayed silent for ${S3_CLIENT_DEFAULTS.socketTimeoutMs} ms`)),
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
    const text = await textOf(response);
    const status = response.statusCode ?? 0;
    const functionError = response.headers['x-amz-function-error'];
    if (status < 200 || status >= 300) {
      const type = response.headers['x-amzn-errortype'] ?? `HTTP ${status}`;
      return { status, text: `${String(type).split(':')[0]} ${text.slice(0, 300)}` };
    }
    return { status, text, ...(functionError === undefined ? {} : { functionError: String(functionError) }) };
  };
}
