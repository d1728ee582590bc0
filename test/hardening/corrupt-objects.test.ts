/**
 * One corrupt object of the repository is its model's problem only: truncated JSON or a manifest of the wrong shape
 * gives that model a 503 naming the object, the repository index still lists every other model, and an upload to
 * that model stays pending until the manifest is fixed, then gets its version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pendingUploads } from '../../functions/core/registration.js';
import { linearBody, linearModel, startHardened, type Answer, type HardenedStack } from './fixture.js';

const JSON_TYPE = { 'content-type': 'application/json' };
let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened();
  for (const model of ['good', 'meta']) {
    const outcome = await stack.register(model, `${model}.onnx`, linearModel(2, 1));
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
});
afterAll(() => stack?.close());

const errorOf = (answer: Answer) => (JSON.parse(answer.text) as { error: string }).error;
const infer = (model: string) =>
  stack.send({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: JSON_TYPE,
    body: linearBody([[1, 2, 3, 4]]),
  });

const CORRUPT: readonly (readonly [string, string, RegExp])[] = [
  ['truncated JSON', '{"name": "x", "latest": "1", "versi', /is not valid JSON \(\d+ bytes\)/],
  ['an empty object', '{}', /is not a valid manifest at "name": Required/],
  ['null', 'null', /is not a valid manifest: Expected object, received null/],
  ['an array', '[]', /is not a valid manifest: Expected object, received array/],
  [
    'versions that are a string',
    '{"name": "x", "latest": "1", "versions": "abc", "labels": {}}',
    /is not a valid manifest at "versions": Expected array, received string/,
  ],
  [
    'a version row without its state',
    '{"name": "x", "latest": "1", "versions": [{"version": "1"}], "labels": {}}',
    /is not a valid manifest at "versions.0.state": Required/,
  ],
];

describe.each(CORRUPT.map(([what, text, reason], index) => ({ what, text, reason, model: `corrupt${index}` })))(
  'a manifest with $what',
  ({ text, reason, model }) => {
    beforeAll(() =>
      stack.runtime.store.put(`models/${model}/manifest.json`, new TextEncoder().encode(text)).then(() => undefined),
    );

    it('is a 503 naming the object on metadata, ready and infer; other models are served', async () => {
      const answers = [
        await stack.send({ method: 'GET', path: `/v2/models/${model}` }),
        await stack.send({ method: 'GET', path: `/v2/models/${model}/ready` }),
        await infer(model),
      ];
      const good = await infer('good');

      for (const answer of answers) {
        expect(answer.status, answer.text).toBe(503);
        expect(answer.headers['retry-after']).toBe('1');
        expect(errorOf(answer)).toMatch(new RegExp(`^models/${model}/manifest\\.json `));
        expect(errorOf(answer)).toMatch(reason);
      }
      expect(good.status).toBe(200);
    });

    it('is one UNAVAILABLE row of the repository index, which lists the others', async () => {
      const index = await stack.send({ method: 'POST', path: '/v2/repository/index' });
      const rows = JSON.parse(index.text) as { name: string; version: string; state: string; reason: string }[];

      expect(index.status).toBe(200);
      expect(rows).toContainEqual({ name: 'good', version: '1', state: 'READY', reason: '' });
      const own = rows.filter((r) => r.name === model);
      expect(own).toHaveLength(1);
      expect(own[0]).toMatchObject({ version: '', state: 'UNAVAILABLE' });
      expect(own[0]?.reason).toMatch(reason);
    });
  },
);

it('keeps an upload to a model with a corrupt manifest pending, and registers it once the manifest is fixed', async () => {
  const manifestKey = 'models/good/manifest.json';
  const intact = (await stack.runtime.store.get(manifestKey))!.body;
  await stack.runtime.store.put(manifestKey, new TextEncoder().encode('{"name": "good", "lat'));

  const refused = await stack.register('good', 'v2.onnx', linearModel(3, 0)).then(
    () => 'registered',
    (error: Error) => error.message,
  );
  const pendingWhileCorrupt = await pendingUploads(stack.runtime, 'good');
  const rejections = await stack.runtime.repository.listRejections('good');
  await stack.runtime.store.put(manifestKey, intact);
  const next = await stack.register('good', 'v3.onnx', linearModel(4, 0));
  const manifest = (await stack.runtime.repository.readManifest('good'))?.manifest;

  expect(refused).toMatch(/1 of 1 uploads could not be processed/);
  expect(pendingWhileCorrupt).toContain('uploads/good/v2.onnx');
  expect(rejections).toEqual([]);
  expect(next).toMatchObject({ kind: 'registered' });
  expect(manifest?.versions.map((v) => v.sourceKey).sort()).toEqual([
    'uploads/good/good.onnx',
    'uploads/good/v2.onnx',
    'uploads/good/v3.onnx',
  ]);
  expect(await pendingUploads(stack.runtime)).toEqual([]);
});

it('answers 503, not 404, for a listed version whose metadata.json is missing', async () => {
  await stack.runtime.store.delete('models/meta/1/metadata.json');

  const answer = await stack.send({ method: 'GET', path: '/v2/models/meta/versions/1' });

  expect(answer.status, answer.text).toBe(503);
  expect(errorOf(answer)).toBe(
    'version 1 of "meta" is listed but its metadata.json is missing from storage; retry later',
  );
});
