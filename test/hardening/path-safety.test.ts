/**
 * Model names can never reach outside `models/<name>/`: not as S3 keys, not as files under the local data folder.
 * Names are checked where they enter (routes, upload keys) and every key is built from a checked name; these tests
 * try the names an attacker would, by property and by example, over HTTP and through S3 events.
 */
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidModelName } from '../../functions/core/catalog.js';
import { InferenceServerError } from '../../functions/core/errors.js';
import { INVALID_NAME_REJECTIONS, repositoryKeys } from '../../functions/core/model-repository.js';
import { matchRoute } from '../../functions/transport/routes.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { linearModel, sendRaw, startHardened, type HardenedStack } from './fixture.js';

/** Names an attacker would try, raw (as they would sit in a key) and as URL path segments. */
const HOSTILE_NAMES = [
  '..',
  '.',
  '...',
  'a..b',
  '../models',
  'a/b',
  'a\\b',
  '..\\..\\etc',
  '%2e%2e',
  'a%2Fb',
  'línear',
  'linear\u0000',
  '\u202elinear',
  ' linear',
  'linear ',
  '-linear',
  '.linear',
  '_invalid-names',
  '',
  'a'.repeat(129),
  'a'.repeat(1000),
];
const HOSTILE_SEGMENTS = [
  ...HOSTILE_NAMES.filter((n) => n !== '').map(encodeURIComponent),
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '..%2f..%2f..%2fetc',
  '..%5c..%5cetc',
  '%252e%252e',
  '%c0%ae%c0%ae',
];

/** Every key the repository builds for a model, with a version and a rejection file. */
const keysFor = (name: string): string[] => [
  repositoryKeys.manifest(name),
  repositoryKeys.metadata(name, '1'),
  repositoryKeys.modelFile(name, '1'),
  repositoryKeys.versionsPrefix(name),
  repositoryKeys.rejection(name, '2024-01-01T00-00-00-000Z', 'upload.onnx'),
];

describe('names and keys', () => {
  it('refuses every hostile name', () => {
    for (const name of HOSTILE_NAMES) expect(isValidModelName(name), JSON.stringify(name)).toBe(false);
  });

  it("builds, from any name it accepts, keys and local paths that stay under that model's own prefix", () => {
    const dataDir = path.resolve('/srv/data/models-bucket');
    const alphabet = fc.constantFrom('a', 'Z', '0', '9', '.', '-', '_', '/', '\\', '%', ' ', '\u0000', 'é', '~');
    fc.assert(
      fc.property(fc.string({ unit: alphabet, minLength: 1, maxLength: 12 }), (name) => {
        if (!isValidModelName(name)) return;
        for (const key of keysFor(name)) {
          const [root, model, ...rest] = key.split('/');
          expect(['models', 'rejected']).toContain(root);
          expect(model).toBe(name);
          expect(
            rest.every((s) => s !== '.' && s !== '..'),
            key,
          ).toBe(true);
          // As s3rver and FsBlobStore map keys to files: one path segment per key segment.
          const own = path.join(dataDir, root!, name);
          const relative = path.relative(own, path.resolve(dataDir, ...key.split('/')));
          expect(relative.startsWith('..') || path.isAbsolute(relative), key).toBe(false);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('routes only valid model names: any path segment is refused with a 4xx or decodes to a valid name', () => {
    const segments = fc.oneof(
      fc.constantFrom(...HOSTILE_SEGMENTS),
      fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
      fc.string({ unit: fc.constantFrom('.', '%', '2', 'e', 'E', 'f', 'F', '5', 'c', 'a'), maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        segments,
        fc.constantFrom('', '/ready', '/infer', '/versions/1/infer', '/versions/..%2f/infer'),
        (segment, tail) => {
          let route;
          try {
            route = matchRoute(tail.endsWith('infer') ? 'POST' : 'GET', `/v2/models/${segment}${tail}`);
          } catch (error) {
            expect(error).toBeInstanceOf(InferenceServerError);
            expect((error as InferenceServerError).statusCode).toBeGreaterThanOrEqual(400);
            expect((error as InferenceServerError).statusCode).toBeLessThan(500);
            return;
          }
          if ('model' in route) expect(isValidModelName(route.model), segment).toBe(true);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('uploads under hostile model names', () => {
  let stack: HardenedStack;
  beforeAll(async () => {
    stack = await startHardened();
  });
  afterAll(() => stack?.close());

  it('are rejected under rejected/_invalid-names/ before the upload is even read', async () => {
    const names = HOSTILE_NAMES.filter((n) => n !== '' && !n.includes('/'));
    for (const [i, name] of names.entries()) {
      stack.store.keys.length = 0;

      const outcome = await stack.notify(`uploads/${name}/evil-${i}.onnx`);

      expect(outcome.kind, name).toBe('rejected');
      expect(stack.store.keys, name).toHaveLength(1);
      expect(stack.store.keys[0]).toMatch(
        new RegExp(`^rejected/${INVALID_NAME_REJECTIONS}/[0-9TZa-f-]+-evil-${i}\\.onnx\\.json$`),
      );
    }
    const index = await stack.runtime.service.repositoryIndex();
    const refused = index.filter((row) => row.state === 'UNAVAILABLE');
    expect(refused).toHaveLength(names.length);
    for (const row of refused) expect(row.reason).toMatch(/is not an allowed model name/);
    expect(index.filter((row) => row.state === 'READY')).toEqual([]);
  });
});

describe('the local data folder', () => {
  let parent: string;
  let stack: LocalStack;
  beforeAll(async () => {
    // The data folder sits alone in a folder of its own, so that anything escaping it would show up next to it.
    parent = await mkdtemp(path.join(os.tmpdir(), 'path-safety-'));
    await mkdir(path.join(parent, 'data'));
    stack = await startLocal({ port: 0, s3Port: 0, dataDir: path.join(parent, 'data'), silent: true, env: {} });
    await stack.runtime.store.put('uploads/linear/linear.onnx', linearModel(1, 0));
    await stack.settled();
  });
  afterAll(async () => {
    await stack?.close();
    await rm(parent, { recursive: true, force: true });
  });

  it('gains no file outside data/<bucket>/models/<valid name>/ whatever model names the routes are sent', async () => {
    const port = Number(new URL(stack.gatewayUrl).port);
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    const statuses = new Set<number>();
    for (const segment of HOSTILE_SEGMENTS) {
      for (const [method, tail] of [
        ['POST', '/infer'],
        ['GET', ''],
        ['GET', '/ready'],
        ['POST', '/versions/1/infer'],
        ['GET', '/versions/..'],
      ] as const) {
        const answer = await sendRaw(port, {
          method,
          path: `/v2/models/${segment}${tail}`,
          headers: { 'content-type': 'application/json' },
          body: method === 'POST' ? body : undefined,
        });
        statuses.add(answer.status);
      }
    }
    const valid = await sendRaw(port, {
      method: 'POST',
      path: '/v2/models/linear/infer',
      headers: { 'content-type': 'application/json' },
      body,
    });

    expect([...statuses].sort()).toEqual([400, 404]);
    expect(valid.status).toBe(200);
    expect(await readdir(parent)).toEqual(['data']);
    expect(await readdir(path.join(parent, 'data'))).toEqual([stack.s3.bucket]);
    // The bucket folder holds the embedded server's layout only; its keys (one file `key` per object folder) are
    // those of the one valid model.
    const bucketFolder = path.join(parent, 'data', stack.s3.bucket);
    expect((await readdir(bucketFolder)).sort()).toEqual(['layout.json', 'objects', 'staging', 'uploads']);
    const objectFolders = await readdir(path.join(bucketFolder, 'objects'));
    const keys = await Promise.all(
      objectFolders.map((folder) => readFile(path.join(bucketFolder, 'objects', folder, 'key'), 'utf8')),
    );
    expect([...new Set(keys.map((key) => key.split('/').slice(0, 2).join('/')))].sort()).toEqual([
      'models/linear',
      'uploads/linear',
    ]);
  });
});
