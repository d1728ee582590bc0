import type { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { createLambdaInvoker } from '../../functions/adapters/lambda-invoker.js';

/** The Lambda API is the one AWS boundary without a local server: a recording client stands in for it. */
function recordingClient(answer: { FunctionError?: string } = {}) {
  const sent: InvokeCommand[] = [];
  const client = {
    send: async (command: InvokeCommand) => {
      sent.push(command);
      return { StatusCode: 200, ...answer };
    },
  };
  return { sent, client: client as unknown as LambdaClient };
}

describe('createLambdaInvoker', () => {
  it('invokes the function synchronously with the warmer payload', async () => {
    const { sent, client } = recordingClient();
    const invoke = createLambdaInvoker('infer-iris', client);

    await invoke({ warmer: true, concurrency: 1, holdMs: 150 });
    await invoke({ warmer: true, concurrency: 1, holdMs: 150 });

    expect(sent).toHaveLength(2);
    expect(sent[0]?.input).toMatchObject({ FunctionName: 'infer-iris', InvocationType: 'RequestResponse' });
    expect(JSON.parse(new TextDecoder().decode(sent[0]?.input.Payload as Uint8Array))).toEqual({
      warmer: true,
      concurrency: 1,
      holdMs: 150,
    });
  });

  it('fails when the invoked function failed', async () => {
    const { client } = recordingClient({ FunctionError: 'Unhandled' });

    await expect(createLambdaInvoker('infer-iris', client)({ warmer: true })).rejects.toThrow(
      'warmer invocation failed: Unhandled',
    );
  });
});
