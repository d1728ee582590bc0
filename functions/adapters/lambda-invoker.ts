/** The warmers' self-invocation on the AWS Lambda API. */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { SelfInvoker } from '../handlers/warmer.js';

/** Invokes `functionName` synchronously (so that the invocations overlap and land on distinct instances). */
export function createLambdaInvoker(functionName: string, client: LambdaClient = new LambdaClient({})): SelfInvoker {
  const encoder = new TextEncoder();
  return async (payload) => {
    const response = await client.send(
      new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: encoder.encode(JSON.stringify(payload)) }),
    );
    if (response.FunctionError !== undefined) throw new Error(`warmer invocation failed: ${response.FunctionError}`);
  };
}
