import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { NotFoundError } from '../../functions/core/errors.js';
import { ModelRepository, repositoryKeys, type NewVersion } from '../../functions/core/model-repository.js';
import type { ModelMetadata } from '../../functions/core/types.js';

function candidate(model: string, content: string): NewVersion {
  const modelFile = new TextEncoder().encode(content);
  return {
    model,
    modelFile,
    sha256: `sha-${content}`,
    size: modelFile.byteLength,
    sourceKey: `uploads/${model}/${content}.onnx`,
    createdAt: '2026-11-27T00:00:00.000Z',
    metadataFor: (version): ModelMetadata => ({
      name: model,
      version,
      platform: 'onnxruntime_onnx',
      inputs: [],
      outputs: [],
      sha256: `sha-${content}`,
      size: modelFile.byteLength,
      sourceKey: `uploads/${model}/${content}.onnx`,
      createdAt: '2026-11-27T00:00:00.000Z',
      rewrites: [],
    }),
  };
}

describe('ModelRepository on a folder', () => {
  let dir: string;
  let store: FsBlobStore;
  let repository: ModelRepository;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'repo-'));
    store = new FsBlobStore(dir);
    repository = new ModelRepository(store);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('numbers versions 1, 2, 3 and moves latest to the newest', async () => {
    // Act
    const results = [];
    for (const content of ['a', 'b', 'c']) results.push(await repository.addVersion(candidate('iris', content)));

    // Assess
    expect(results.map((r) => r.version)).toEqual(['1', '2', '3']);
    const manifest = (await repository.readManifest('iris'))?.manifest;
    expect(manifest?.latest).toBe('3');
    expect(manifest?.versions.map((v) => [v.version, v.state, v.sha256])).toEqual([
      ['1', 'READY', 'sha-a'],
      ['2', 'READY', 'sha-b'],
      ['3', 'READY', 'sha-c'],
    ]);
    expect(new TextDecoder().decode(await repository.readModelFile('iris', '2'))).toBe('b');
    expect((await repository.readMetadata('iris', '3')).version).toBe('3');
    expect(await repository.listModels()).toEqual(['iris']);
  });

  it('creates nothing for an upload whose sha256 is already a version', async () => {
    await repository.addVersion(candidate('iris', 'a'));

    const again = await repository.addVersion(candidate('iris', 'a'));

    expect(again).toEqual({ kind: 'duplicate', version: '1' });
    expect((await repository.readManifest('iris'))?.manifest.versions).toHaveLength(1);
    expect(await store.list('models/iris/2/')).toEqual([]);
  });

  it('loses no version when ten uploads race', async () => {
    const contents = Array.from({ length: 10 }, (_, i) => `m${i}`);

    const results = await Promise.all(contents.map((c) => repository.addVersion(candidate('race', c))));

    const versions = results.map((r) => Number(r.version)).sort((a, b) => a - b);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const manifest = (await repository.readManifest('race'))?.manifest;
    expect(manifest?.versions.map((v) => v.sha256).sort()).toEqual(contents.map((c) => `sha-${c}`).sort());
    expect(manifest?.latest).toBe('10');
  });

  it('points latest or a label at an existing version, and refuses unknown ones', async () => {
    await repository.addVersion(candidate('iris', 'a'));
    await repository.addVersion(candidate('iris', 'b'));

    const rolledBack = await repository.setPointer('iris', '1');
    const labelled = await repository.setPointer('iris', '2', 'canary');

    expect(rolledBack.latest).toBe('1');
    expect(labelled).toMatchObject({ latest: '1', labels: { canary: '2' } });
    await expect(repository.setPointer('iris', '7')).rejects.toThrow(NotFoundError);
    await expect(repository.setPointer('nope', '1')).rejects.toThrow('unknown model "nope"');
  });

  it('records rejections without touching the manifest, invalid names in their own folder', async () => {
    await repository.addVersion(candidate('iris', 'a'));
    const before = await store.get(repositoryKeys.manifest('iris'));

    const key = await repository.recordRejection({
      model: 'iris',
      sourceKey: 'uploads/iris/bad.onnx',
      rejectedAt: '2026-11-27T10:00:00.000Z',
      reason: 'not a model',
    });
    const invalidKey = await repository.recordRejection({
      model: '../etc',
      sourceKey: 'uploads/../etc/x.onnx',
      rejectedAt: '2026-11-27T10:00:01.000Z',
      reason: 'bad name',
    });

    const again = await repository.recordRejection({
      model: 'iris',
      sourceKey: 'uploads/iris/bad.onnx',
      rejectedAt: '2026-11-27T10:00:00.000Z',
      reason: 'still not a model',
    });
    expect(key).toMatch(/^rejected\/iris\/2026-11-27T10-00-00-000Z-[0-9a-f]{8}-bad\.onnx\.json$/);
    expect(again).not.toBe(key);
    expect(invalidKey.startsWith('rejected/_invalid-names/')).toBe(true);
    expect((await repository.listRejections('iris')).map((r) => r.reason).sort()).toEqual([
      'not a model',
      'still not a model',
    ]);
    await repository.recordRejection({
      model: 'iris',
      sourceKey: 'uploads/iris/later.onnx',
      rejectedAt: '2026-11-27T11:00:00.000Z',
      reason: 'newest',
    });
    expect((await repository.listRejections('iris', { latest: 1 })).map((r) => r.reason)).toEqual(['newest']);
    expect((await store.get(repositoryKeys.manifest('iris')))?.etag).toBe(before?.etag);
  });
});
