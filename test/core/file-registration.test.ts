/**
 * Registration from a scratch file (`file-registration.ts`), on a folder repository with real onnxruntime: the
 * reasons read as they did for bytes (no scratch path in them), the scratch folder is removed, and a full `/tmp`
 * is a recorded refusal rather than an event redelivered forever.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import type { DownloadedObject, DownloadOptions } from '../../functions/core/blob-store.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { ModelRepository } from '../../functions/core/model-repository.js';
import { registerUpload, type RegistrationOptions } from '../../functions/core/registration.js';
import { buildScaledLinearModel, ModelBuilder } from '../../tools/onnx/index.js';

let dir: string;
let scratch: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serverless-file-registration-'));
  scratch = path.join(dir, 'scratch');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function optionsWith(store: FsBlobStore): RegistrationOptions {
  return {
    store,
    repository: new ModelRepository(store),
    sessionFactory: onnxruntimeSessionFactory,
    sessionOptions: { intraOpNumThreads: 1, graphOptimizationLevel: 'all' },
    maxModelBytes: 1024 * 1024,
    limits: DEFAULT_LIMITS,
    scratchDir: scratch,
  };
}

describe('registration from a file', () => {
  it('registers a single .onnx from the path and leaves no scratch files', async () => {
    // Prepare
    const store = new FsBlobStore(path.join(dir, 'bucket'));
    await store.put('uploads/m/linear.onnx', buildScaledLinearModel(2));

    // Act
    const outcome = await registerUpload('uploads/m/linear.onnx', optionsWith(store));

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    expect(await readdir(scratch)).toEqual([]);
  });

  it("gives onnxruntime's reason without the scratch path it read", async () => {
    // Prepare
    const store = new FsBlobStore(path.join(dir, 'bucket'));
    const unknownOp = new ModelBuilder()
      .input('x', 'FP32', ['N'])
      .node('NoSuchOp', ['x'], ['y'])
      .output('y', 'FP32', ['N']);
    await store.put('uploads/m/bad.onnx', unknownOp.toBytes());

    // Act
    const outcome = await registerUpload('uploads/m/bad.onnx', optionsWith(store));

    // Assess
    const reason = outcome.kind === 'rejected' ? outcome.reason : '';
    expect(reason).toMatch(
      /^onnxruntime cannot load the model: This is an invalid model\..*No Op registered for NoSuchOp/,
    );
    expect(reason).not.toContain(scratch);
  });

  it('records a refusal that says what to change when /tmp is full (fault injected)', async () => {
    // Prepare: the download fails as a full disk makes it fail.
    class FullDiskStore extends FsBlobStore {
      public override async download(
        _key: string,
        _file: string,
        _options: DownloadOptions,
      ): Promise<DownloadedObject> {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
    }
    const store = new FullDiskStore(path.join(dir, 'bucket'));
    await store.put('uploads/m/linear.onnx', buildScaledLinearModel(2));

    // Act
    const outcome = await registerUpload('uploads/m/linear.onnx', optionsWith(store));

    // Assess
    expect(outcome).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/ran out of temporary storage \(\/tmp\).*more ephemeral storage/),
    });
    expect(await new ModelRepository(store).readManifest('m')).toBeUndefined();
  });
});
