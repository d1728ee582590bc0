/**
 * `readModelSkeleton`: the model read from disk without its weight values must tell registration exactly what the
 * whole model tells it (inputs, outputs, initializers, rewrites) and nothing of the weights.
 */
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { readModelFile } from '../../functions/core/onnx/model-file.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import { readModelSkeleton, writeWithWeights } from '../../functions/core/onnx/skeleton.js';
import { buildLargeModel, buildZipMapClassifier, encodeModel, ModelBuilder } from '../../tools/onnx/index.js';
import { withExternalData } from '../../tools/onnx/external-data.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serverless-skeleton-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function skeletonOf(name: string, bytes: Uint8Array): Promise<Uint8Array> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return readModelSkeleton(file);
}

describe('readModelSkeleton', () => {
  it('keeps everything registration reads and drops the weight values', async () => {
    // Prepare: 4 MB of raw_data weights, and one initializer written as float_data (older exporters).
    const whole = buildLargeModel(4 * 1024 * 1024);
    const proto = onnx.ModelProto.decode(whole);
    proto.graph?.initializer?.push(
      onnx.TensorProto.create({ name: 'legacy', dims: [3], dataType: 1, floatData: [1, 2, 3] }),
    );
    const bytes = encodeModel(proto);

    // Act
    const skeleton = await skeletonOf('large.onnx', bytes);

    // Assess
    expect(skeleton.byteLength).toBeLessThan(1024);
    const full = onnx.ModelProto.decode(bytes);
    const light = onnx.ModelProto.decode(skeleton);
    expect(light.graph?.node).toEqual(full.graph?.node);
    expect(light.graph?.input).toEqual(full.graph?.input);
    expect(light.graph?.output).toEqual(full.graph?.output);
    expect(light.opsetImport).toEqual(full.opsetImport);
    expect(light.irVersion).toEqual(full.irVersion);
    const summary = (m: typeof full) =>
      (m.graph?.initializer ?? []).map((t) => [t.name, (t.dims ?? []).map(Number), t.dataType]);
    expect(summary(light)).toEqual(summary(full));
    expect(
      (light.graph?.initializer ?? []).every((t) => (t.rawData?.length ?? 0) === 0 && (t.floatData?.length ?? 0) === 0),
    ).toBe(true);
    expect([...readModelFile(skeleton).initializerNames]).toEqual(['w1', 'w2', 'legacy']);
  });

  it('is served unchanged exactly when the whole model is', async () => {
    // Prepare
    const plain = buildLargeModel(1024 * 1024);
    const zipMap = buildZipMapClassifier({ labels: ['a', 'b', 'c'] }).bytes;

    // Act
    const plainSkeleton = await skeletonOf('plain.onnx', plain);
    const zipMapSkeleton = await skeletonOf('zipmap.onnx', zipMap);

    // Assess
    expect(rewriteForServing(plainSkeleton).model).toBe(plainSkeleton);
    expect(rewriteForServing(zipMapSkeleton).rewrites).toEqual(rewriteForServing(zipMap).rewrites);
    expect(rewriteForServing(zipMapSkeleton).rewrites.map((r) => r.kind)).toEqual(['remove-zipmap']);
  });

  it('keeps external-data references, so a single .onnx that lacks its data is refused as before', async () => {
    // Prepare
    const { model } = withExternalData(
      new ModelBuilder()
        .input('x', 'FP32', ['N', 2])
        .initializer('w', { datatype: 'FP32', dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) })
        .node('MatMul', ['x', 'w'], ['y'])
        .output('y', 'FP32', ['N', 2])
        .toProto(),
    );

    // Act
    const skeleton = await skeletonOf('external.onnx', model);

    // Assess
    expect(readModelFile(skeleton).externalInitializers).toEqual(['w']);
    expect(() => rewriteForServing(skeleton)).toThrow(/external data/);
  });

  it.each([
    ['a truncated model', () => buildLargeModel(64 * 1024).subarray(0, 30_000)],
    ['a text file', () => new TextEncoder().encode('this is not a model, just some text\n')],
  ])('refuses %s as readModelFile does', async (_what, bytes) => {
    // Act
    const reading = skeletonOf('bad.onnx', bytes());

    // Assess
    await expect(reading).rejects.toBeInstanceOf(ModelRejectedError);
    await expect(reading).rejects.toThrow(/not an ONNX model/);
  });
});

describe('writeWithWeights', () => {
  it('writes a rewritten skeleton with the weights of every form put back: the bytes a whole-model rewrite gives', async () => {
    // Prepare: raw_data, float_data and int64 weights, and a sparse initializer, in an opset-6 graph (upgraded).
    const proto = onnx.ModelProto.decode(buildLargeModel(1024 * 1024));
    proto.opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: 6 })];
    proto.graph?.initializer?.push(
      onnx.TensorProto.create({ name: 'legacy', dims: [3], dataType: 1, floatData: [1, 2, 3] }),
      onnx.TensorProto.create({ name: 'counts', dims: [2], dataType: 7, int64Data: [5, -7] }),
    );
    proto.graph?.sparseInitializer?.push(
      onnx.SparseTensorProto.create({
        values: { name: 'sparse', dims: [2], dataType: 1, floatData: [9, 8] },
        indices: { name: 'sparse_indices', dims: [2], dataType: 7, int64Data: [0, 3] },
        dims: [4],
      }),
    );
    const whole = encodeModel(proto);
    const source = path.join(dir, 'weights.onnx');
    await writeFile(source, whole);
    const rewritten = rewriteForServing(await readModelSkeleton(source));

    // Act
    const written = await writeWithWeights(source, rewritten.model, path.join(dir, 'written.onnx'));

    // Assess
    const expected = rewriteForServing(whole).model;
    const bytes = await readFile(path.join(dir, 'written.onnx'));
    expect(rewritten.rewrites[0]?.kind).toBe('upgrade-opset');
    expect(Buffer.compare(bytes, Buffer.from(expected))).toBe(0);
    expect(written).toEqual({
      sha256: createHash('sha256').update(expected).digest('hex'),
      size: expected.byteLength,
    });
  });

  it("refuses a skeleton whose initializers differ from the file's (a rewrite must leave them)", async () => {
    // Prepare
    const whole = buildLargeModel(64 * 1024);
    const source = path.join(dir, 'mismatch.onnx');
    await writeFile(source, whole);
    const other = await skeletonOf('small.onnx', buildZipMapClassifier({ labels: ['a', 'b'] }).bytes);

    // Act
    const writing = writeWithWeights(source, other, path.join(dir, 'mismatch-out.onnx'));

    // Assess
    await expect(writing).rejects.toThrow(/initializers where the file has 2/);
  });
});
