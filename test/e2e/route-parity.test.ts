/**
 * One route table, local and deployed: the routes of the synthesized API (derived from the template, catch-all
 * model routes included) are exactly the requests the local gateway answers, for a catalog model and for a model
 * that was only uploaded. "Answers" means a handler took the request: anything but a no-such-route 404 or a 405.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { loadCatalog } from '../../infra/catalog-loader.js';
import { removeTempDirs, routes, synthesize } from '../infra/fixture.js';

let stack: LocalStack;
let dataDir: string;
let deployed: string[];

beforeAll(async () => {
  const { template } = synthesize(
    { models: loadCatalog('models'), modelsDir: 'models' },
    { bundling: false, id: 'Parity' },
  );
  deployed = [...routes(template).keys()];
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'parity-'));
  stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir: 'models', silent: true });
  // A model with no catalog entry, uploaded as a user would.
  await stack.runtime.store.put(
    'uploads/uploaded-only/model.onnx',
    new Uint8Array(await readFile(path.join('models', 'linear.onnx'))),
  );
  await stack.settled();
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
  removeTempDirs();
});

/** True when a route template of the API (`/v2/models/{model}/infer`) matches the path, as API Gateway matches it. */
function deployedAnswers(method: string, requestPath: string): boolean {
  const segments = requestPath.split('/').filter(Boolean);
  return deployed.some((route) => {
    const [routeMethod, template] = route.split(' ') as [string, string];
    const parts = template.split('/').filter(Boolean);
    return (
      routeMethod === method &&
      parts.length === segments.length &&
      parts.every((part, i) => part === segments[i] || (part.startsWith('{') && part.endsWith('}')))
    );
  });
}

async function localAnswers(method: string, requestPath: string): Promise<boolean> {
  const response = await fetch(`${stack.gatewayUrl}${requestPath}`, {
    method,
    ...(method === 'POST' ? { body: '{"inputs":[]}', headers: { 'content-type': 'application/json' } } : {}),
  });
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  if (response.status === 405) return false;
  return !(response.status === 404 && /^(no route|missing version)/.test(body.error ?? ''));
}

it('the local gateway answers exactly the routes of the synthesized API', async () => {
  const catalogModel = loadCatalog('models')[0]!.name;
  const paths = [
    '/',
    '/v2/openapi.json',
    '/v2/openapi.json/x',
    '/v2',
    '/v2/health',
    '/v2/health/live',
    '/v2/health/ready',
    '/v2/repository',
    '/v2/repository/index',
    '/v2/models',
    '/v2/other',
  ];
  for (const model of [catalogModel, 'uploaded-only']) {
    const base = `/v2/models/${model}`;
    for (const prefix of [base, `${base}/versions/1`])
      paths.push(prefix, `${prefix}/ready`, `${prefix}/infer`, `${prefix}/config-x`, `${prefix}/openapi.json`);
    paths.push(`${base}/versions`);
  }
  const mismatches: string[] = [];
  let answered = 0;
  for (const requestPath of paths) {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      const [deployedSays, localSays] = [deployedAnswers(method, requestPath), await localAnswers(method, requestPath)];
      if (deployedSays) answered++;
      if (deployedSays !== localSays)
        mismatches.push(`${method} ${requestPath}: deployed ${deployedSays}, local ${localSays}`);
    }
  }
  expect(mismatches).toEqual([]);
  // Both models' eight routes (metadata, ready, infer, openapi.json; with and without a version) and the six control
  // routes listed (the console, the OpenAPI document, server metadata, health live and ready, the index).
  expect(answered).toBe(2 * 8 + 6);
  expect(deployed).toEqual(
    expect.arrayContaining(['POST /v2/models/{model}/infer', `POST /v2/models/${catalogModel}/infer`]),
  );
}, 120_000);
