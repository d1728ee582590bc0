/**
 * The event each emulated front hands the function, over real HTTP: the REST API's 1.0 proxy event (every body
 * base64), and the 2.0 event of the HTTP API and function URLs as AWS documents it (rawPath and rawQueryString as
 * sent, repeated headers and parameters joined with commas, cookies apart, requestContext.http, the route key and
 * path parameters of the HTTP API, `$default` for a URL, text bodies as text). The handlers here only record the
 * event they get: the event is what is under test; test/e2e/fronts.test.ts runs the real handlers.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiFront } from '../../functions/core/fronts.js';
import { createLocalFront } from '../../functions/local/front.js';
import { startGateway, type Gateway } from '../../functions/local/gateway.js';

let gateway: Gateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

/** Starts a gateway for `api` whose functions record their event and answer 200. */
async function recording(api: ApiFront): Promise<{ events: unknown[]; url: string }> {
  const events: unknown[] = [];
  const handler = async (event: unknown) => {
    events.push(event);
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
  };
  const front = await createLocalFront(
    { api, authorization: 'none' },
    { accessKeyId: 'a', secretAccessKey: 's' },
    'us-east-1',
  );
  gateway = await startGateway({ port: 0, front, infer: handler, control: handler });
  return { events, url: gateway.url };
}

/** A request with repeated headers and cookies, which fetch would merge: written to the socket as is. */
function rawRequest(url: string, path: string, headers: [string, string][], body: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      const head = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.end(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n${head}\r\n${body}`);
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

const HEADERS: [string, string][] = [
  ['Content-Type', 'application/json'],
  ['X-Trace', 'one'],
  ['X-Trace', 'two'],
  ['Cookie', 'a=1; b=2'],
  ['Cookie', 'c=3'],
  ['Content-Length', '11'],
];
const PATH = '/v2/models/ir%69s/versions/2/infer?x=1&x=2&y=%20z';

describe('payload format 2.0', () => {
  it('HTTP API: raw path and query, joined headers and parameters, cookies, route key, path parameters', async () => {
    const { events, url } = await recording('http');
    expect(await rawRequest(url, PATH, HEADERS, '{"id":"x"}\n')).toBe(200);
    const event = events[0] as APIGatewayProxyEventV2;
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /v2/models/{model}/versions/{v}/infer',
      rawPath: '/v2/models/ir%69s/versions/2/infer',
      rawQueryString: 'x=1&x=2&y=%20z',
      cookies: ['a=1', 'b=2', 'c=3'],
      queryStringParameters: { x: '1,2', y: ' z' },
      pathParameters: { model: 'iris', v: '2' },
      body: '{"id":"x"}\n',
      isBase64Encoded: false,
      requestContext: {
        http: { method: 'POST', path: '/v2/models/ir%69s/versions/2/infer', protocol: 'HTTP/1.1' },
        routeKey: 'POST /v2/models/{model}/versions/{v}/infer',
        stage: '$default',
      },
    });
    expect(event.headers['x-trace']).toBe('one,two');
    expect(event.headers['cookie']).toBeUndefined();
    expect(event.requestContext.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect('path' in event).toBe(false);
  });

  it('function URL: $default route, no path parameters; binary and compressed bodies base64', async () => {
    const { events, url } = await recording('url');
    const binary: [string, string][] = [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Length', '3'],
    ];
    await rawRequest(url, '/v2/models/iris/infer', binary, 'abc');
    const gzipJson: [string, string][] = [
      ['Content-Type', 'application/json'],
      ['Content-Encoding', 'gzip'],
      ['Content-Length', '3'],
    ];
    await rawRequest(url, '/v2/models/iris/infer', gzipJson, 'xyz');
    const [first, second] = events as APIGatewayProxyEventV2[];
    expect(first).toMatchObject({ routeKey: '$default', body: 'YWJj', isBase64Encoded: true });
    expect(first?.pathParameters).toBeUndefined();
    expect(first?.queryStringParameters).toBeUndefined();
    expect(second).toMatchObject({ body: 'eHl6', isBase64Encoded: true });
  });
});

describe('payload format 1.0', () => {
  it('REST API: path, multi-value headers, every body base64', async () => {
    const { events, url } = await recording('rest');
    await rawRequest(url, PATH, HEADERS, '{"id":"x"}\n');
    const event = events[0] as APIGatewayProxyEvent;
    expect(event).toMatchObject({
      path: '/v2/models/ir%69s/versions/2/infer',
      httpMethod: 'POST',
      isBase64Encoded: true,
      body: Buffer.from('{"id":"x"}\n').toString('base64'),
    });
    expect(event.multiValueHeaders['x-trace']).toEqual(['one', 'two']);
    expect('version' in event).toBe(false);
  });
});

describe('integration timeout', () => {
  it("answers 504 naming the front's timeout when the function is late, and serves the next request", async () => {
    // Prepare: a function that answers only when released (the first call), at once afterwards.
    let release: (() => void) | undefined;
    let calls = 0;
    const handler = async () => {
      calls += 1;
      if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"late":false}' };
    };
    const front = await createLocalFront({ api: 'http' }, { accessKeyId: 'a', secretAccessKey: 's' }, 'us-east-1');
    gateway = await startGateway({ port: 0, front, infer: handler, control: handler, integrationTimeoutMs: 300 });

    // Act
    const late = await fetch(`${gateway.url}/v2/health/ready`);
    const lateBody = await late.json();
    release?.();
    const next = await fetch(`${gateway.url}/v2/health/ready`);

    // Assess
    expect(late.status).toBe(504);
    expect(lateBody).toEqual({
      error: expect.stringMatching(/did not answer within 0\.3 s, the API Gateway HTTP API's timeout/),
    });
    expect(next.status).toBe(200);
    expect(await next.json()).toEqual({ late: false });
  });
});
