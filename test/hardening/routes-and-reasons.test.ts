/**
 * The route matcher and the local gateway agree on every path (one rule: `apiSegments`), and a rejection reason
 * that quotes the upload is bounded before it reaches the repository index.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE_CHARS } from '../../functions/core/redact.js';
import { MODEL_ROUTES, isModelPath, matchRoute } from '../../functions/transport/routes.js';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { linearBody, linearModel, startHardened, type HardenedStack } from './fixture.js';

const JSON_TYPE = { 'content-type': 'application/json' };
let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened();
  expect((await stack.register('linear', 'linear.onnx', linearModel(2, 1))).kind).toBe('registered');
});
afterAll(() => stack?.close());

it('serves a stage-prefixed path and refuses empty segments, through the gateway as in the matcher', async () => {
  const staged = await stack.send({
    method: 'POST',
    path: '/prod/v2/models/linear/infer',
    headers: JSON_TYPE,
    body: linearBody([[1, 2, 3, 4]]),
  });
  const doubled = await stack.send({
    method: 'POST',
    path: '//v2//models//linear/infer',
    headers: JSON_TYPE,
    body: linearBody([[1, 2, 3, 4]]),
  });
  const deep = await stack.send({
    method: 'POST',
    path: '/a/b/v2/models/linear/infer',
    headers: JSON_TYPE,
    body: linearBody([[1, 2, 3, 4]]),
  });

  expect(staged.status, staged.text).toBe(200);
  expect(JSON.parse(staged.text)).toMatchObject({ model_name: 'linear', outputs: [{ data: [21] }] });
  expect(doubled.status).toBe(404);
  expect(JSON.parse(doubled.text)).toEqual({ error: 'no route //v2//models//linear/infer; the API lives under /v2' });
  expect(deep.status).toBe(404);
});

it('sends a path to the model handler exactly when the matcher finds a model route in it', () => {
  const segment = fc.constantFrom(
    '',
    'v2',
    'models',
    'linear',
    'prod',
    'infer',
    'versions',
    '1',
    'ready',
    'health',
    'live',
    'repository',
    'index',
  );
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 7 }), fc.constantFrom('GET', 'POST'), (segments, method) => {
      const path = `/${segments.join('/')}`;
      let kind: string | undefined;
      try {
        kind = matchRoute(method, path).kind;
      } catch (error) {
        // A wrong method is still a match of the route's path.
        kind = (error as Error).name === 'MethodNotAllowedError' ? 'model-or-control' : undefined;
      }
      if (kind === undefined || kind === 'model-or-control') return;
      expect(isModelPath(path), path).toBe(MODEL_ROUTES.has(kind as never));
    }),
  );
});

it('bounds a rejection reason that quotes the upload', async () => {
  const opType = `Op${'X'.repeat(15_000)}`;
  const model = new ModelBuilder()
    .input('x', 'FP32', [1])
    .node(opType, ['x'], ['y'])
    .output('y', 'FP32', [1])
    .toBytes();

  const outcome = await stack.register('longreason', 'long.onnx', model);
  const index = await stack.send({ method: 'POST', path: '/v2/repository/index' });
  const row = (JSON.parse(index.text) as { name: string; reason: string }[]).find((r) => r.name === 'longreason');

  expect(outcome.kind).toBe('rejected');
  // Cut where the reason is recorded ("... (N more characters)") or already where onnxruntime's message enters.
  expect(row?.reason).toMatch(/\.\.\.( \(\d+ more characters\))?$/);
  expect(row!.reason.length).toBeLessThan(MAX_ERROR_MESSAGE_CHARS + 300);
});
