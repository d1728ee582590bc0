/**
 * A loopback HTTP server standing in for an AWS API that has no local server (CloudWatch, SNS, Step Functions): it
 * answers every request with one status and a body computed from the request's, and records what it received, so
 * that a test can check the protocol headers, the signature's scope and the body an adapter sent.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/** One request the stand-in received. */
export interface Received {
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** What a stand-in answers one request with. */
export type Respond = (
  request: Received,
) => Promise<{ status: number; body: string }> | { status: number; body: string };

/**
 * Starts a stand-in answering `status` with `answer(body)`, or each request with what `respond` says (AWS JSON 1.0
 * content type), closed after the test.
 * @example const sfn = await awsStandIn(200, () => '{}'); createStepFunctions({ endpoint: sfn.endpoint, ... })
 */
export async function awsStandIn(
  status: number | Respond,
  answer: (body: string) => string = () => '',
): Promise<{ readonly received: Received[]; readonly endpoint: string }> {
  const respond: Respond = typeof status === 'function' ? status : ({ body }) => ({ status, body: answer(body) });
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const one: Received = {
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      };
      received.push(one);
      const answered = await respond(one);
      response.writeHead(answered.status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(answered.body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { received, endpoint: `http://127.0.0.1:${port}` };
}
