/**
 * The warmers' self-invocation, against a loopback HTTP server standing in for the Lambda API (the one AWS
 * boundary without a local server): what is sent (path, headers, signature scope, payload) and how answers map.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLambdaInvoker } from '../../functions/adapters/lambda-invoker.js';

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

let server: Server | undefined;

/** A Lambda API answering `status` with `headers`, recording what it received. */
async function lambdaApi(status = 200, headers: Record<string, string> = {}) {
  const received: Received[] = [];
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(status === 200 ? 'null' : '{"message":"denied"}');
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { received, endpoint: `http://127.0.0.1:${port}` };
}

const credentials = () => ({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'session' });

afterEach(async () => {
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  server = undefined;
});

describe('createLambdaInvoker', () => {
  it('invokes the function synchronously with the warmer payload, signed for lambda in its region', async () => {
    // Prepare
    const api = await lambdaApi();
    const invoke = createLambdaInvoker('infer-iris', { region: 'eu-west-1', credentials, endpoint: api.endpoint });

    // Act
    await invoke({ warmer: true, concurrency: 1, holdMs: 150 });
    await invoke({ warmer: true, concurrency: 1, holdMs: 150 }, 'arn:aws:lambda:eu-west-1:1:function:infer-iris:live');

    // Assess
    expect(api.received).toHaveLength(2);
    const [first, second] = api.received;
    expect(first).toMatchObject({ method: 'POST', url: '/2015-03-31/functions/infer-iris/invocations' });
    expect(first?.headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(first?.headers['x-amz-security-token']).toBe('session');
    expect(first?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[a-z;-]*x-amz-invocation-type/,
    );
    expect(JSON.parse(first?.body ?? '')).toEqual({ warmer: true, concurrency: 1, holdMs: 150 });
    expect(second?.url).toBe(
      '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Ainfer-iris%3Alive/invocations',
    );
  });

  it('fails when the invoked function failed', async () => {
    // Prepare
    const api = await lambdaApi(200, { 'x-amz-function-error': 'Unhandled' });

    // Act
    const invoked = createLambdaInvoker('infer-iris', { region: 'us-east-1', credentials, endpoint: api.endpoint })({
      warmer: true,
    });

    // Assess
    await expect(invoked).rejects.toThrow('warmer invocation failed: Unhandled');
  });

  it('fails with the API error type when the call is refused', async () => {
    // Prepare
    const api = await lambdaApi(403, { 'x-amzn-errortype': 'AccessDeniedException:http://internal' });

    // Act
    const invoked = createLambdaInvoker('infer-iris', { region: 'us-east-1', credentials, endpoint: api.endpoint })({
      warmer: true,
    });

    // Assess
    await expect(invoked).rejects.toThrow(/warmer invocation refused: AccessDeniedException \{"message":"denied"\}/);
  });
});
