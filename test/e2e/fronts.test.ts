/**
 * `npm start` emulating each front (`FRONT`/`FRONT_AUTH`, here startLocal's `front` option): the REST API with an
 * API key, the HTTP API with a local JWT issuer and with SigV4, and a function URL with SigV4. The same request set
 * (health, JSON, binary, a JPEG, errors, 413s) gives the same answers through every front, each carried in its own
 * event format (1.0 or 2.0) to the same handlers; and every front refuses a request without valid credentials with
 * a reason (no key or a wrong one; unsigned, wrongly signed or tampered; a JWT with no token, a wrong issuer,
 * audience or signature, or expired), after which a valid request still succeeds.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner } from '../../functions/adapters/aws-signing.js';
import { encodeInferenceRequest } from '../../functions/core/codec/index.js';
import type { LocalFrontOptions } from '../../functions/local/front.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';

const FRONTS: Record<string, LocalFrontOptions> = {
  'rest, api-key': { api: 'rest', authorization: 'api-key' },
  'http, jwt': { api: 'http', authorization: 'jwt' },
  'http, iam': { api: 'http', authorization: 'iam' },
  'url, iam': { api: 'url', authorization: 'iam' },
};

const stacks = new Map<string, LocalStack>();
const dirs: string[] = [];

beforeAll(async () => {
  // linear (JSON and binary) and detector (a JPEG through declared image preprocessing), as models/ ships them.
  const catalogDir = await mkdtemp(path.join(os.tmpdir(), 'fronts-catalog-'));
  dirs.push(catalogDir);
  for (const file of ['linear.json', 'linear.onnx', 'detector.json', 'detector.onnx']) {
    await copyFile(path.join('models', file), path.join(catalogDir, file));
  }
  for (const [name, front] of Object.entries(FRONTS)) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fronts-data-'));
    dirs.push(dataDir);
    stacks.set(name, await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir, silent: true, front }));
  }
}, 300_000);

afterAll(async () => {
  for (const stack of stacks.values()) await stack.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

interface Request {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: Uint8Array;
  readonly headers?: Record<string, string>;
}

/** Sends `request` with the credentials its front expects. */
async function call(stack: LocalStack, request: Request): Promise<Answer> {
  const url = new URL(request.path, stack.gatewayUrl);
  let headers: Record<string, string> = { ...request.headers };
  const front = stack.front;
  if (front.apiKey !== undefined) headers['x-api-key'] = front.apiKey;
  if (front.jwt !== undefined) headers.authorization = `Bearer ${await front.jwt.issueToken()}`;
  if (front.sigV4 !== undefined) headers = await sign(stack, request, headers);
  return send(url, request, headers);
}

async function sign(stack: LocalStack, request: Request, headers: Record<string, string>) {
  const url = new URL(request.path, stack.gatewayUrl);
  const sigV4 = stack.front.sigV4!;
  const signer = createSigner(sigV4.service as 'lambda' | 'execute-api', sigV4.region, stack.s3.credentials);
  const signed = await signer.sign({
    method: request.method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { ...headers, host: url.host },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return signed.headers as Record<string, string>;
}

async function send(url: URL, request: Request, headers: Record<string, string>): Promise<Answer> {
  const response = await fetch(url, {
    method: request.method,
    headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: Buffer.from(await response.arrayBuffer()),
  };
}

const json = (answer: Answer): unknown => JSON.parse(answer.body.toString('utf8'));

/**
 * An answer's bytes, but a JSON answer parsed and without `created_at`: each front's stack registered its own copy
 * of the model, at its own time.
 */
const comparable = (answer: Answer): unknown =>
  answer.contentType.startsWith('application/json')
    ? JSON.parse(answer.body.toString('utf8'), (key, value: unknown) => (key === 'created_at' ? undefined : value))
    : answer.body.toString('base64');

const jsonInfer = encodeInferenceRequest(
  [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) }],
  { id: 'json-1' },
);
const binaryInfer = encodeInferenceRequest(
  [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) }],
  { id: 'binary-1', binary: true, outputs: [{ name: 'y', binary: true }] },
);

/** The request set every front must answer alike. */
const REQUESTS: Record<string, Request> = {
  ready: { method: 'GET', path: '/v2/health/ready' },
  metadata: { method: 'GET', path: '/v2/models/linear' },
  'json inference': {
    method: 'POST',
    path: '/v2/models/linear/infer',
    body: jsonInfer.body,
    headers: { ...jsonInfer.headers },
  },
  'binary inference': {
    method: 'POST',
    path: '/v2/models/linear/versions/1/infer',
    body: binaryInfer.body,
    headers: { ...binaryInfer.headers },
  },
  'unknown model': {
    method: 'POST',
    path: '/v2/models/nosuch/infer',
    body: jsonInfer.body,
    headers: jsonInfer.headers,
  },
  'malformed JSON': {
    method: 'POST',
    path: '/v2/models/linear/infer',
    body: new TextEncoder().encode('{"inputs": [}'),
    headers: { 'content-type': 'application/json' },
  },
  'wrong method': { method: 'GET', path: '/v2/models/linear/infer' },
  'wrong shape': {
    method: 'POST',
    path: '/v2/models/linear/infer',
    body: new TextEncoder().encode('{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}'),
    headers: { 'content-type': 'application/json' },
  },
};

describe('the same request set through every front', () => {
  const answers = new Map<string, Map<string, Answer>>();
  beforeAll(async () => {
    const photo = await readFile(path.join('models', 'photo.jpg'));
    const all: Record<string, Request> = {
      ...REQUESTS,
      jpeg: {
        method: 'POST',
        path: '/v2/models/detector/infer',
        body: photo,
        headers: { 'content-type': 'image/jpeg' },
      },
    };
    for (const [front, stack] of stacks) {
      const byRequest = new Map<string, Answer>();
      for (const [name, request] of Object.entries(all)) byRequest.set(name, await call(stack, request));
      answers.set(front, byRequest);
    }
  }, 300_000);

  it.each([...Object.keys(REQUESTS), 'jpeg'])('%s: one answer, whatever the front', (name) => {
    const [first, ...others] = [...answers.values()].map((byRequest) => byRequest.get(name)!);
    for (const other of others) {
      expect(other.status).toBe(first!.status);
      expect(other.contentType).toBe(first!.contentType);
      expect(comparable(other)).toEqual(comparable(first!));
    }
  });

  it('answers what each request deserves (so that "the same" is not the same failure)', () => {
    const rest = answers.get('rest, api-key')!;
    expect(rest.get('ready')!.status).toBe(200);
    expect(json(rest.get('json inference')!)).toMatchObject({
      id: 'json-1',
      model_name: 'linear',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 1] }],
    });
    expect(rest.get('binary inference')!.status).toBe(200);
    expect(rest.get('binary inference')!.contentType).toBe('application/octet-stream');
    expect(rest.get('jpeg')!.status).toBe(200);
    expect(rest.get('unknown model')!.status).toBe(404);
    expect(rest.get('malformed JSON')!.status).toBe(400);
    expect(rest.get('wrong method')!.status).toBe(405);
    expect(rest.get('wrong shape')!.status).toBe(400);
    expect(json(rest.get('wrong shape')!)).toEqual({ error: expect.stringMatching(/shape/) });
  });
});

describe('413s: each front its own limit, then the next request succeeds', () => {
  it.each(Object.keys(FRONTS))(
    '%s',
    async (name) => {
      const stack = stacks.get(name)!;
      const limit = stack.front.profile.maxRequestBodyBytes;
      // Over the front's own limit: refused before the function, naming the front.
      const huge = await call(stack, {
        method: 'POST',
        path: '/v2/models/linear/infer',
        body: new Uint8Array(limit + 1),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '2' },
      });
      expect(huge.status).toBe(413);
      expect(json(huge)).toEqual({ error: expect.stringContaining(`${stack.front.profile.title}'s limit`) });
      // Under it but over Lambda's 6 MB event once base64-encoded (binary bodies are base64 on every front).
      const binary = await call(stack, {
        method: 'POST',
        path: '/v2/models/linear/infer',
        body: new Uint8Array(5 * 1024 * 1024),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '2' },
      });
      expect(binary.status).toBe(413);
      expect(json(binary)).toEqual({ error: expect.stringMatching(/base64-encoded.*request payload limit/) });
      expect((await call(stack, REQUESTS['json inference']!)).status).toBe(200);
    },
    60_000,
  );
});

describe('refused without valid credentials, with a reason', () => {
  const infer = REQUESTS['json inference']!;
  const unauthenticated = (stack: LocalStack, headers: Record<string, string> = {}) =>
    send(new URL(infer.path, stack.gatewayUrl), infer, { ...infer.headers, ...headers });

  it('REST with an API key: none, or a wrong one, is a 403', async () => {
    const stack = stacks.get('rest, api-key')!;
    const none = await unauthenticated(stack);
    expect(none.status).toBe(403);
    expect(json(none)).toEqual({
      error: expect.stringMatching(/requires an API key: send it in the x-api-key header/),
    });
    const wrong = await unauthenticated(stack, { 'x-api-key': 'not-the-key' });
    expect(wrong.status).toBe(403);
    expect(json(wrong)).toEqual({ error: expect.stringMatching(/not a key of this API/) });
    expect((await call(stack, infer)).status).toBe(200);
  });

  it('HTTP API with JWT: no token, another issuer, audience or key, or expired, is a 401', async () => {
    const stack = stacks.get('http, jwt')!;
    const issuer = stack.front.jwt!;
    const other = stacks.get('rest, api-key')!; // no issuer of its own: make a foreign key pair's token below
    expect(other.front.jwt).toBeUndefined();
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /requires a JWT: send Authorization: Bearer/],
      [{ authorization: `Bearer ${await issuer.issueToken({ iss: 'https://evil.example.com' })}` }, /issuer \(iss\)/],
      [{ authorization: `Bearer ${await issuer.issueToken({ aud: 'someone-else' })}` }, /audience \(aud\)/],
      [{ authorization: `Bearer ${await issuer.issueToken({ exp: Math.floor(Date.now() / 1000) - 60 })}` }, /expired/],
      [{ authorization: `Bearer ${await foreignToken(issuer.issuer, issuer.audience)}` }, /signature/],
    ];
    for (const [headers, reason] of cases) {
      const refused = await unauthenticated(stack, headers);
      expect(refused.status).toBe(401);
      expect(json(refused)).toEqual({ error: expect.stringMatching(reason) });
    }
    expect((await call(stack, infer)).status).toBe(200);
  });

  it.each(['http, iam', 'url, iam'])('%s: unsigned, wrongly signed or tampered is a 403', async (name) => {
    const stack = stacks.get(name)!;
    const unsigned = await unauthenticated(stack);
    expect(unsigned.status).toBe(403);
    expect(json(unsigned)).toEqual({ error: expect.stringMatching(/Anonymous access is refused/) });

    const forged = await signWith(stack, { accessKeyId: stack.s3.credentials.accessKeyId, secretAccessKey: 'wrong' });
    const wrong = await send(new URL(infer.path, stack.gatewayUrl), infer, forged);
    expect(wrong.status).toBe(403);
    expect(json(wrong)).toEqual({ error: expect.stringMatching(/signature we calculated does not match/) });

    // A signature over one body, sent with another.
    const signed = await signWith(stack, stack.s3.credentials);
    const tampered = await send(
      new URL(infer.path, stack.gatewayUrl),
      { ...infer, body: new TextEncoder().encode(new TextDecoder().decode(infer.body).replace('1', '9')) },
      signed,
    );
    expect(tampered.status).toBe(403);
    expect((await call(stack, infer)).status).toBe(200);
  });

  async function signWith(stack: LocalStack, credentials: { accessKeyId: string; secretAccessKey: string }) {
    const url = new URL(infer.path, stack.gatewayUrl);
    const sigV4 = stack.front.sigV4!;
    const signer = createSigner(sigV4.service as 'lambda' | 'execute-api', sigV4.region, credentials);
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: {},
      headers: { ...infer.headers, host: url.host },
      body: infer.body,
    });
    return signed.headers as Record<string, string>;
  }
});

/** A token with the right issuer and audience, signed by a key that is not the issuer's. */
async function foreignToken(issuer: string, audience: string): Promise<string> {
  const { generateKeyPair, SignJWT } = await import('jose');
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setExpirationTime('1h')
    .sign(privateKey);
}
