import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { ServiceUnavailableError } from '../../functions/core/errors.js';
import { ModelRepository, repositoryKeys } from '../../functions/core/model-repository.js';
import { ModelService } from '../../functions/core/model-service.js';
import { registerUpload } from '../../functions/core/registration.js';

const sessionOptions = { intraOpNumThreads: 1, graphOptimizationLevel: 'all' } as const;
const request = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) }],
  binaryOutputByDefault: false,
  parameters: {},
} as const;

describe('ModelService on a repository that lost a file', () => {
  let dir: string;
  let store: FsBlobStore;
  let repository: ModelRepository;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'service-'));
    store = new FsBlobStore(dir);
    repository = new ModelRepository(store);
    await store.put('uploads/linear/linear.onnx', new Uint8Array(await readFile('models/linear.onnx')));
    const outcome = await registerUpload('uploads/linear/linear.onnx', {
      store,
      repository,
      sessionFactory: onnxruntimeSessionFactory,
      sessionOptions,
      maxModelBytes: 1e9,
      limits: DEFAULT_LIMITS,
    });
    expect(outcome.kind).toBe('registered');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('answers 503 (not 404) for a listed version whose file is missing, and serves once it is back', async () => {
    const key = repositoryKeys.modelFile('linear', '1');
    const file = (await store.get(key))!.body;
    await store.delete(key);
    const service = new ModelService({ repository, sessionFactory: onnxruntimeSessionFactory, sessionOptions });
    const target = await service.resolve('linear');

    const missing = service.infer(target, request);
    await expect(missing).rejects.toThrow(ServiceUnavailableError);
    await expect(missing).rejects.toThrow(/listed but its model file is missing/);
    await store.put(key, file);
    const recovered = await service.infer(target, request);

    expect(recovered.modelVersion).toBe('1');
    expect(recovered.outputs[0]?.shape).toEqual([1, 1]);
  });
});
