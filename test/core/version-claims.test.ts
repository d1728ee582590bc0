/**
 * Version claims (`models/<m>/claims/version-<n>.json`) on a real folder store: a number taken by an upload that the
 * store then refuses is released and reused, two deliveries of the same bytes at once end with one number and no
 * files under the other, and an attempt that died after its claim is finished under the same number by the next one.
 * Faults are injected by a thin decorator around the real store.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import type { PutCondition } from '../../functions/core/blob-store.js';
import {
  isStoreRefusal,
  ModelRepository,
  repositoryKeys,
  type NewVersion,
} from '../../functions/core/model-repository.js';
import type { ModelMetadata } from '../../functions/core/types.js';

/** The folder store, refusing (as S3 answers a key it cannot hold: a 400) every `putFile` whose key matches. */
class RefusingStore extends FsBlobStore {
  public refuse: RegExp | undefined;

  public override putFile(key: string, file: string, condition?: PutCondition): Promise<{ etag: string }> {
    if (this.refuse?.test(key) === true) {
      const error = Object.assign(new Error('Your key is too long'), {
        name: 'KeyTooLongError',
        $metadata: { httpStatusCode: 400 },
      });
      return Promise.reject(error);
    }
    return super.putFile(key, file, condition);
  }
}

let dir: string;
let store: RefusingStore;
let repository: ModelRepository;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'claims-'));
  store = new RefusingStore(path.join(dir, 'bucket'));
  repository = new ModelRepository(store);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A version of `content`, with one external-data file at `location` when given. */
async function candidate(content: string, location?: string): Promise<NewVersion> {
  const modelFile = new TextEncoder().encode(content);
  const dataFiles = [];
  if (location !== undefined) {
    const file = path.join(dir, `${content}.data`);
    await writeFile(file, 'weights');
    dataFiles.push({ location, path: file });
  }
  return {
    model: 'm',
    modelFile,
    sha256: `sha-${content}`,
    size: modelFile.byteLength,
    sourceKey: `uploads/m/${content}.onnx`,
    createdAt: '2026-12-06T00:00:00.000Z',
    dataFiles,
    metadataFor: (version): ModelMetadata => ({
      name: 'm',
      version,
      platform: 'onnxruntime_onnx',
      inputs: [],
      outputs: [],
      sha256: `sha-${content}`,
      size: modelFile.byteLength,
      sourceKey: `uploads/m/${content}.onnx`,
      createdAt: '2026-12-06T00:00:00.000Z',
      rewrites: [],
    }),
  };
}

const claimOf = async (version: string) =>
  JSON.parse(new TextDecoder().decode((await store.get(repositoryKeys.versionClaim('m', version)))?.body)) as {
    sha256: string;
    released?: boolean;
  };

describe('version claims', () => {
  it('releases the number of an upload the store refuses after its claim, and the next version takes it', async () => {
    // Prepare
    await repository.addVersion(await candidate('first'));
    store.refuse = /refused-weights$/;

    // Act
    const failure = await repository
      .addVersion(await candidate('bad', 'refused-weights'))
      .catch((error: unknown) => error);
    const released = await claimOf('2');
    const next = await repository.addVersion(await candidate('good'));

    // Assess
    expect(isStoreRefusal(failure)).toBe(true);
    expect(released).toMatchObject({ sha256: 'sha-bad', released: true });
    expect(next).toMatchObject({ kind: 'added', version: '2' });
    expect(await claimOf('2')).toEqual(expect.not.objectContaining({ released: true }));
    expect((await repository.readManifest('m'))?.manifest.versions.map((v) => [v.version, v.sha256])).toEqual([
      ['1', 'sha-first'],
      ['2', 'sha-good'],
    ]);
    expect(new TextDecoder().decode(await repository.readModelFile('m', '2'))).toBe('good');
  });

  it('gives four deliveries of the same bytes at once one number, with no file under any other', async () => {
    // Act
    const results = await Promise.all(
      Array.from({ length: 4 }, async () => repository.addVersion(await candidate('same'))),
    );

    // Assess
    expect(results.map((r) => r.version)).toEqual(['1', '1', '1', '1']);
    expect(results.filter((r) => r.kind === 'added').length).toBeGreaterThanOrEqual(1);
    expect((await repository.readManifest('m'))?.manifest.versions.map((v) => v.version)).toEqual(['1']);
    const files = (await store.list('models/m/')).filter((key) => !key.includes('/claims/'));
    expect(files).toEqual(['models/m/1/metadata.json', 'models/m/1/model.onnx', 'models/m/manifest.json']);
    // Any other number claimed meanwhile was released, so the next version is 2.
    expect(await repository.addVersion(await candidate('other'))).toMatchObject({ version: '2' });
  });

  it('finishes an attempt that died after its claim under the same number, without waiting', async () => {
    // Prepare: the first attempt dies right after claiming (the hook throws where a process would be killed).
    const died = await repository
      .addVersion({
        ...(await candidate('resumed')),
        afterStep: (step) => {
          if (step === 'claimed') throw new Error('killed');
        },
      })
      .catch((error: Error) => error.message);

    // Act
    const again = await repository.addVersion(await candidate('resumed'));

    // Assess
    expect(died).toBe('killed');
    expect(again).toMatchObject({ kind: 'added', version: '1' });
    expect(await repository.addVersion(await candidate('after'))).toMatchObject({ version: '2' });
  });
});
