/** The warmers' self-invocation on the AWS Lambda API. */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SelfInvoker } from '../core/warmer.js';

/**
 * Invokes the fan-out's `target` (the qualified ARN the warmer came in through), else `functionName`, synchronously (so that the invocations overlap and land on distinct instances).
 * The Lambda client is imported and built on the first fan-out only: most instances never fan out, and a client
 * built at init would cost every cold start its module initialisation.
 */
export function createLambdaInvoker(functionName: string, client?: LambdaClient): SelfInvoker {
  const encoder = new TextEncoder();
  let ready:
    | Promise<{ client: LambdaClient; InvokeCommand: typeof import('@aws-sdk/client-lambda').InvokeCommand }>
    | undefined;
  return async (payload, target) => {
    if (ready === undefined) {
      ready = import('@aws-sdk/client-lambda').then((sdk) => ({
        client: client ?? new sdk.LambdaClient({}),
        InvokeCommand: sdk.InvokeCommand,
      }));
      // A failed import is not kept: the next fan-out tries again.
      ready.catch(() => (ready = undefined));
    }
    const { client: lambda, InvokeCommand } = await ready;
    const response = await lambda.send(
      new InvokeCommand({
        FunctionName: target ?? functionName,
        InvocationType: 'RequestResponse',
        Payload: encoder.encode(JSON.stringify(payload)),
      }),
    );
    if (response.FunctionError !== undefined) throw new Error(`warmer invocation failed: ${response.FunctionError}`);
  };
}
