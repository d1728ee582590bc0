/**
 * Registration from a scratch file (`file-registration.ts`), on a folder repository with real onnxruntime: the
 * reasons read as they did for bytes (no scratch path in them), the scratch folder is removed, and a full `/tmp`
 * is a recorded refusal rather than an event redelivered forever.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import type { DownloadedObject, DownloadOptions, PutCondition } from '../../functions/core/blob-store.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { ModelRepository } from '../../functions/core/model-repository.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import { registerUpload, type RegistrationOptions } from '../../functions/core/registration.js';
import {
  attr,
  buildLargeModel,
  buildScaledLinearModel,
  buildZipMapClassifier,
  encodeModel,
  ModelBuilder,
} from '../../tools/onnx/index.js';

let dir: string;
let scratch: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serverless-file-registration-'));
  scratch = path.join(dir, 'scratch');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A folder store that records which method wrote each key, and can fail the streamed writes (an injected fault). */
class WriteRecordingStore extends FsBlobStore {
  public readonly writes: { method: 'put' | 'putFile'; key: string }[] = [];
  public failPutFile = false;

  public override put(key: string, body: Uint8Array, condition?: PutCondition): Promise<{ etag: string }> {
    this.writes.push({ method: 'put', key });
    return super.put(key, body, condition);
  }

  public override async putFile(key: string, file: string, condition?: PutCondition): Promise<{ etag: string }> {
    this.writes.push({ method: 'putFile', key });
    if (this.failPutFile) throw new Error('injected: the upload of the version failed');
    return super.putFile(key, file, condition);
  }

  public methodOf(key: string): string | undefined {
    return this.writes.find((write) => write.key === key)?.method;
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

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

  it('stores a model that needs no rewrite from the file: its bytes are never put as one buffer', async () => {
    // Prepare: 2 MB of weights, well past anything the skeleton holds.
    const store = new WriteRecordingStore(path.join(dir, 'bucket'));
    const bytes = buildLargeModel(2 * 1024 * 1024);
    await store.put('uploads/big/model.onnx', bytes);

    // Act
    const outcome = await registerUpload('uploads/big/model.onnx', { ...optionsWith(store), maxModelBytes: 1e8 });

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    expect(store.methodOf('models/big/1/model.onnx')).toBe('putFile');
    const stored = await store.get('models/big/1/model.onnx');
    expect(sha256(stored?.body ?? new Uint8Array())).toBe(sha256(bytes));
    const metadata = await new ModelRepository(store).readMetadata('big', '1');
    expect(metadata).toMatchObject({ sha256: sha256(bytes), size: bytes.byteLength, rewrites: [] });
    expect(await readdir(scratch)).toEqual([]);
  });

  it('rewrites a model on its skeleton and streams it with its weights: the same bytes as a rewrite of the whole', async () => {
    // Prepare: 2 MB of weights in an opset-6 graph (upgraded to 7 at registration) with a legacy Reshape shape.
    const store = new WriteRecordingStore(path.join(dir, 'bucket'));
    const proto = onnx.ModelProto.decode(buildLargeModel(2 * 1024 * 1024));
    proto.opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: 6 })];
    const bytes = encodeModel(proto);
    await store.put('uploads/big/old.onnx', bytes);

    // Act
    const outcome = await registerUpload('uploads/big/old.onnx', { ...optionsWith(store), maxModelBytes: 1e8 });

    // Assess: streamed from a file, byte for byte what rewriting the whole model in memory gives.
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    expect(store.methodOf('models/big/1/model.onnx')).toBe('putFile');
    const stored = (await store.get('models/big/1/model.onnx'))?.body ?? new Uint8Array();
    const expected = rewriteForServing(bytes).model;
    expect(expected).not.toBe(bytes);
    expect(sha256(stored)).toBe(sha256(expected));
    const metadata = await new ModelRepository(store).readMetadata('big', '1');
    expect(metadata.rewrites[0]?.kind).toBe('upgrade-opset');
    expect(metadata).toMatchObject({ sha256: sha256(stored), size: stored.byteLength });
    expect(await readdir(scratch)).toEqual([]);
  });

  it('removes a ZipMap on the skeleton and stores the rewritten model', async () => {
    // Prepare
    const store = new WriteRecordingStore(path.join(dir, 'bucket'));
    const bytes = buildZipMapClassifier({ labels: ['a', 'b', 'c'] }).bytes;
    await store.put('uploads/iris/zipmap.onnx', bytes);

    // Act
    const outcome = await registerUpload('uploads/iris/zipmap.onnx', optionsWith(store));

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    const metadata = await new ModelRepository(store).readMetadata('iris', '1');
    expect(metadata.rewrites.map((r) => r.kind)).toEqual(['remove-zipmap']);
    const stored = (await store.get('models/iris/1/model.onnx'))?.body ?? new Uint8Array();
    expect(sha256(stored)).toBe(sha256(rewriteForServing(bytes).model));
    expect(metadata.sha256).toBe(sha256(stored));
  });

  it('refuses a graph over MAX_GRAPH_BYTES before reading it, and counts no weights against it', async () => {
    // Prepare: a 2 MB attribute in the graph; and 2 MB of weights beside a graph of a few hundred bytes.
    const store = new WriteRecordingStore(path.join(dir, 'bucket'));
    const attribute = new ModelBuilder()
      .input('x', 'FP32', ['N', 4])
      .node('Constant', [], ['c'], {
        value: attr.tensor({ datatype: 'FP32', dims: [4], data: new Float32Array(4) }),
        junk: attr.floats(new Array<number>(500_000).fill(0)),
      })
      .node('Add', ['x', 'c'], ['y'])
      .output('y', 'FP32', ['N', 4])
      .toBytes();
    await store.put('uploads/graph/big.onnx', attribute);
    await store.put('uploads/weights/big.onnx', buildLargeModel(2 * 1024 * 1024));
    const options = { ...optionsWith(store), maxModelBytes: 1e8, maxGraphBytes: 1024 * 1024 };

    // Act
    const refused = await registerUpload('uploads/graph/big.onnx', options);
    const registered = await registerUpload('uploads/weights/big.onnx', options);

    // Assess
    expect(refused).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/graph .* holds more than 1048576 bytes.*\(MAX_GRAPH_BYTES\)/),
    });
    expect(registered).toMatchObject({ kind: 'registered', version: '1' });
  });

  it('adds no version when streaming the version fails, and registers it when the event comes again', async () => {
    // Prepare
    const store = new WriteRecordingStore(path.join(dir, 'bucket'));
    await store.put('uploads/big/model.onnx', buildLargeModel(1024 * 1024));
    store.failPutFile = true;
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const repository = new ModelRepository(store, { now: () => clock });
    const options = { ...optionsWith(store), repository, maxModelBytes: 1e8 };

    // Act: the failed delivery's claim on the bytes is taken over once stale (its invocation is presumed dead).
    const failed = await registerUpload('uploads/big/model.onnx', options).catch((error: unknown) => error);
    const afterFailure = await repository.readManifest('big');
    const leftFiles = await store.list('models/big/1/');
    store.failPutFile = false;
    clock += 16 * 60_000;
    const retried = await registerUpload('uploads/big/model.onnx', options);

    // Assess: a storage failure throws (the event is delivered again), and leaves neither a version nor its file.
    expect(failed).toMatchObject({ message: expect.stringMatching(/injected/) });
    expect(afterFailure).toBeUndefined();
    expect(leftFiles).toEqual([]);
    expect(retried).toMatchObject({ kind: 'registered', version: '1' });
    expect((await new ModelRepository(store).readManifest('big'))?.manifest.versions).toHaveLength(1);
    expect(await readdir(scratch)).toEqual([]);
  });
});
