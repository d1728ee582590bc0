import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { Datatype, TensorDataByType } from '../../functions/core/types.js';
import { DATATYPES } from '../../functions/core/types.js';
import { attr, ModelBuilder } from '../../tools/onnx/model-builder.js';
import { inspectModel } from '../../functions/core/onnx/rewrites.js';
import { buildFailingAtRunModel, buildIdentityModel, buildLargeModel } from '../../tools/onnx/sample-models.js';

/** Three values of each datatype, and onnxruntime's name for it. */
const SAMPLES: { readonly [D in Datatype]: { readonly ort: ort.Tensor.Type; readonly values: TensorDataByType[D] } } = {
  BOOL: { ort: 'bool', values: new Uint8Array([1, 0, 1]) },
  UINT8: { ort: 'uint8', values: new Uint8Array([0, 128, 255]) },
  UINT16: { ort: 'uint16', values: new Uint16Array([0, 1000, 65535]) },
  UINT32: { ort: 'uint32', values: new Uint32Array([0, 70000, 4294967295]) },
  UINT64: { ort: 'uint64', values: new BigUint64Array([0n, 1n, 18446744073709551615n]) },
  INT8: { ort: 'int8', values: new Int8Array([-128, 0, 127]) },
  INT16: { ort: 'int16', values: new Int16Array([-32768, 0, 32767]) },
  INT32: { ort: 'int32', values: new Int32Array([-2147483648, 0, 2147483647]) },
  INT64: { ort: 'int64', values: new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]) },
  FP16: { ort: 'float16', values: new Uint16Array([0x3c00, 0xc000, 0x7bff]) }, // 1, -2, 65504
  FP32: { ort: 'float32', values: new Float32Array([1.5, -0, 3.4e38]) },
  FP64: { ort: 'float64', values: new Float64Array([Math.PI, -1e-300, 1e300]) },
  BYTES: { ort: 'string', values: ['', 'héllo', '日本語'] },
};

function plain(data: unknown): unknown[] {
  return Array.from(data as ArrayLike<unknown>);
}

describe('ModelBuilder', () => {
  it.each(DATATYPES)('%s: inputs, outputs and initializers round-trip through onnxruntime', async (datatype) => {
    // Prepare: output = Concat(input, constant) exercises the declared types and the initializer encoding
    const sample = SAMPLES[datatype];
    const model = new ModelBuilder()
      .input('input', datatype, ['N'])
      .initializer('constant', { datatype, dims: [3], data: sample.values })
      .node('Concat', ['input', 'constant'], ['output'], { axis: attr.int(0) })
      .output('output', datatype, [-1])
      .toBytes();

    // Act
    const session = await ort.InferenceSession.create(model);
    const result = await session.run({ input: new ort.Tensor(sample.ort, sample.values, [3]) });

    // Assess
    const output = result.output!;
    expect(output.type).toBe(sample.ort);
    expect(output.dims).toEqual([6]);
    expect(plain(output.data)).toEqual([...plain(sample.values), ...plain(sample.values)]);
    expect(inspectModel(model).outputs[0]).toMatchObject({ datatype, shape: [-1] });
  });

  it.each(DATATYPES)('%s: buildIdentityModel returns its input', async (datatype) => {
    const sample = SAMPLES[datatype];
    const session = await ort.InferenceSession.create(buildIdentityModel(datatype));
    const result = await session.run({ input: new ort.Tensor(sample.ort, sample.values, [3]) });
    expect(plain(result.output!.data)).toEqual(plain(sample.values));
  });

  it('encodes float, int, string and tensor attributes', async () => {
    // Prepare: y = LeakyRelu(x, alpha) + Constant(value), z = Cast(y, to=INT32) and a string attribute on the way
    const model = new ModelBuilder()
      .input('x', 'FP32', [3])
      .node('LeakyRelu', ['x'], ['leaky'], { alpha: attr.float(0.5) })
      .node('Constant', [], ['offset'], {
        value: attr.tensor({ datatype: 'FP32', dims: [3], data: new Float32Array([10, 20, 30]) }),
      })
      .node('Add', ['leaky', 'offset'], ['y'])
      .node('Cast', ['y'], ['z'], { to: attr.int(6) })
      .node('Pad', ['x', 'pads'], ['padded'], { mode: attr.string('edge') })
      .initializer('pads', { datatype: 'INT64', dims: [2], data: new BigInt64Array([1n, 1n]) })
      .output('y', 'FP32', [3])
      .output('z', 'INT32', [3])
      .output('padded', 'FP32', [5])
      .toBytes();

    // Act
    const session = await ort.InferenceSession.create(model);
    const result = await session.run({ x: new ort.Tensor('float32', new Float32Array([-4, 0, 2]), [3]) });

    // Assess
    expect(plain(result.y!.data)).toEqual([8, 20, 32]);
    expect(plain(result.z!.data)).toEqual([8, 20, 32]);
    expect(plain(result.padded!.data)).toEqual([-4, -4, 0, 2, 2]);
  });

  it('refuses what would make an invalid tensor or attribute', () => {
    expect(() => new ModelBuilder().input('x', 'FP32', [-2])).toThrow(
      'invalid dimension -2: use a size >= 0, -1 or a name',
    );
    expect(() =>
      new ModelBuilder().initializer('w', { datatype: 'FP32', dims: [2, 2], data: new Float32Array(3) }),
    ).toThrow('tensor "w": dims [2, 2] hold 4 elements, data has 3');
    expect(() => new ModelBuilder().node('Foo', [], [], { n: attr.int(2.5) })).toThrow(
      'attribute "n": 2.5 is not a safe integer (pass a bigint for int64 values beyond 2^53)',
    );
  });
});

describe('sample models', () => {
  it('buildFailingAtRunModel loads, then fails on run', async () => {
    const session = await ort.InferenceSession.create(buildFailingAtRunModel());
    await expect(session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2]), [2]) })).rejects.toThrow(
      /indices element out of data bounds/,
    );
  });

  it('buildLargeModel reaches the size asked for, deterministically, and computes finite outputs', async () => {
    // Prepare
    const size = 4 * 1024 * 1024;

    // Act
    const model = buildLargeModel(size);
    const again = buildLargeModel(size);
    const otherSeed = buildLargeModel(size, 12);

    // Assess
    expect(Math.abs(model.length - size) / size).toBeLessThan(0.01);
    expect(Buffer.from(again).equals(Buffer.from(model))).toBe(true);
    expect(Buffer.from(otherSeed).equals(Buffer.from(model))).toBe(false);
    const session = await ort.InferenceSession.create(model);
    const result = await session.run({ x: new ort.Tensor('float32', new Float32Array(2 * 256).fill(1), [2, 256]) });
    const y = result.y!;
    expect(y.dims).toEqual([2, 16]);
    const values = plain(y.data) as number[];
    expect(values.every(Number.isFinite)).toBe(true);
    expect(values.some((v) => v !== 0)).toBe(true);
  });
});
