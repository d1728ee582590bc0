/**
 * The version converter, one adapter at a time: small opset-1/6 graphs that onnxruntime refuses as they are, upgraded
 * by `rewriteForServing`, run by onnxruntime, and compared with values computed here from the old operator's spec.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { attr, ModelBuilder, type AttributeValue } from '../../tools/onnx/model-builder.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import { ADAPTED_STEPS, ONNXRUNTIME_MIN_OPSET } from '../../functions/core/onnx/version-converter.js';
import { lengthDelimitedField, readFields, rebuildMessage } from '../../functions/core/onnx/wire.js';
import { concatBytes } from '../../functions/core/codec/message.js';

/** A float tensor of `dims` with values 0.5*i - 3 (negative and positive, so that PRelu's slope matters). */
function ramp(dims: readonly number[]): Float32Array {
  const size = dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => 0.5 * i - 3);
}

/** An IR-3 model of one node at `opset`, as the 2017-2018 exporters wrote them. */
function oneNodeModel(
  opset: number,
  op: string,
  inputs: readonly { name: string; dims: readonly number[]; init?: Float32Array }[],
  output: { name: string; dims: readonly number[] },
  attributes: Record<string, AttributeValue> = {},
): Uint8Array {
  const builder = new ModelBuilder({
    irVersion: 3,
    opsets: { '': opset },
    producerName: 'pytorch',
    producerVersion: '0.3',
  });
  for (const input of inputs) {
    builder.input(input.name, 'FP32', input.dims);
    if (input.init) builder.initializer(input.name, { datatype: 'FP32', dims: input.dims, data: input.init });
  }
  return builder
    .node(
      op,
      inputs.map((i) => i.name),
      [output.name],
      attributes,
    )
    .output(output.name, 'FP32', output.dims)
    .toBytes();
}

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[]): void {
  expect(actual.length).toBe(expected.length);
  for (const [i, e] of expected.entries()) expect(actual[i]).toBeCloseTo(e, 5);
}

function rejectionOf(model: Uint8Array): string {
  try {
    rewriteForServing(model);
  } catch (error) {
    if (error instanceof ModelRejectedError) return error.message;
    throw error;
  }
  throw new Error('expected a ModelRejectedError');
}

function opsetOf(model: Uint8Array): number {
  return Number(onnx.ModelProto.decode(model).opsetImport.find((o) => (o.domain ?? '') === '')?.version);
}

beforeAll(() => {
  ort.env.logLevel = 'fatal';
});

describe('upgradeOpset through rewriteForServing', () => {
  it('Add(6) broadcast from axis 1: B [3] over A [2, 3, 4] gets trailing ones, as A[i, j, k] + B[j]', async () => {
    // Prepare
    const a = ramp([2, 3, 4]);
    const b = new Float32Array([10, 20, 30]);
    const model = oneNodeModel(
      6,
      'Add',
      [
        { name: 'a', dims: [2, 3, 4] },
        { name: 'b', dims: [3] },
      ],
      { name: 'y', dims: [2, 3, 4] },
      {
        broadcast: attr.int(1),
        axis: attr.int(1),
      },
    );
    const feeds = { a: new ort.Tensor('float32', a, [2, 3, 4]), b: new ort.Tensor('float32', b, [3]) };
    await expect(run(model, feeds)).rejects.toThrow(/Add\(6\)/);

    // Act
    const result = rewriteForServing(model);
    const { y } = await run(result.model, feeds);

    // Assess
    expect(opsetOf(result.model)).toBe(ONNXRUNTIME_MIN_OPSET);
    expectClose(
      y!.data as Float32Array,
      Array.from(a, (v, i) => v + b[Math.floor(i / 4) % 3]!),
    );
    expect(result.rewrites.map((r) => r.kind)).toEqual(['upgrade-opset', 'upgrade-opset']);
    expect(result.rewrites[1]?.detail).toMatch(/^Add\(6→7\): .*\(Unsqueeze inserted\) \(1 node\)$/);
  });

  it('Sub(6) broadcast without axis keeps the trailing alignment numpy uses: A[i, j] - B[j]', async () => {
    // Prepare
    const a = ramp([2, 3]);
    const b = new Float32Array([1, 2, 4]);
    const model = oneNodeModel(
      6,
      'Sub',
      [
        { name: 'a', dims: [2, 3] },
        { name: 'b', dims: [3] },
      ],
      { name: 'y', dims: [2, 3] },
      {
        broadcast: attr.int(1),
      },
    );
    const feeds = { a: new ort.Tensor('float32', a, [2, 3]), b: new ort.Tensor('float32', b, [3]) };

    // Act
    const { y } = await run(rewriteForServing(model).model, feeds);

    // Assess
    expectClose(
      y!.data as Float32Array,
      Array.from(a, (v, i) => v - b[i % 3]!),
    );
  });

  it('Gemm(6) broadcast=1 with transB: A·Bᵀ + C[n] row by row', async () => {
    // Prepare
    const a = ramp([2, 3]);
    const w = Float32Array.from([1, 0, -1, 2, 1, 0.5]); // [2, 3], used transposed
    const c = new Float32Array([100, -100]);
    const model = oneNodeModel(
      6,
      'Gemm',
      [
        { name: 'a', dims: [2, 3] },
        { name: 'w', dims: [2, 3], init: w },
        { name: 'c', dims: [2], init: c },
      ],
      { name: 'y', dims: [2, 2] },
      { broadcast: attr.int(1), transB: attr.int(1) },
    );

    // Act
    const { y } = await run(rewriteForServing(model).model, { a: new ort.Tensor('float32', a, [2, 3]) });

    // Assess
    const expected: number[] = [];
    for (let m = 0; m < 2; m += 1) {
      for (let n = 0; n < 2; n += 1) {
        let sum = c[n]!;
        for (let k = 0; k < 3; k += 1) sum += a[m * 3 + k]! * w[n * 3 + k]!;
        expected.push(sum);
      }
    }
    expectClose(y!.data as Float32Array, expected);
  });

  it('PRelu(6) with one slope per channel keeps it on dimension 1 of NCHW', async () => {
    // Prepare
    const x = ramp([1, 3, 2, 2]);
    const slope = new Float32Array([0.1, 0.2, 0.3]);
    const model = oneNodeModel(
      6,
      'PRelu',
      [
        { name: 'x', dims: [1, 3, 2, 2] },
        { name: 's', dims: [3], init: slope },
      ],
      { name: 'y', dims: [1, 3, 2, 2] },
    );

    // Act
    const { y } = await run(rewriteForServing(model).model, { x: new ort.Tensor('float32', x, [1, 3, 2, 2]) });

    // Assess
    expectClose(
      y!.data as Float32Array,
      Array.from(x, (v, i) => (v >= 0 ? v : v * slope[Math.floor(i / 4)]!)),
    );
  });

  it('BatchNormalization(6) is_test=1 computes inference with the running statistics; is_test=0 is refused', async () => {
    // Prepare
    const x = ramp([2, 2, 3]);
    const stats = { scale: [2, 0.5], bias: [1, -1], mean: [-1, 2], var: [4, 0.25] };
    const inputs = [
      { name: 'x', dims: [2, 2, 3] },
      ...Object.entries(stats).map(([name, values]) => ({ name, dims: [2], init: Float32Array.from(values) })),
    ];
    const build = (isTest: number) =>
      oneNodeModel(
        6,
        'BatchNormalization',
        inputs,
        { name: 'y', dims: [2, 2, 3] },
        { epsilon: attr.float(1e-5), is_test: attr.int(isTest) },
      );

    // Act
    const { y } = await run(rewriteForServing(build(1)).model, { x: new ort.Tensor('float32', x, [2, 2, 3]) });
    const refusal = rejectionOf(build(0));

    // Assess
    expectClose(
      y!.data as Float32Array,
      Array.from(x, (v, i) => {
        const c = Math.floor(i / 3) % 2;
        return (stats.scale[c]! * (v - stats.mean[c]!)) / Math.sqrt(stats.var[c]! + 1e-5) + stats.bias[c]!;
      }),
    );
    expect(refusal).toContain('BatchNormalization, version 6 to 7');
    expect(refusal).toContain('is_test=0');
  });

  it('an opset-1 graph: Reshape(1) shape attribute, Concat(1) default axis, Mul(1) consumed_inputs, Pad(1) paddings', async () => {
    // Prepare: x [2, 3] → reshape [3, 2] → concat with itself on the default axis 1 → [3, 4] → ×2 → pad one column.
    const x = ramp([2, 3]);
    const model = new ModelBuilder({ irVersion: 3, opsets: { '': 1 } })
      .input('x', 'FP32', [2, 3])
      .initializer('two', { datatype: 'FP32', dims: [1], data: new Float32Array([2]) })
      .input('two', 'FP32', [1])
      .node('Reshape', ['x'], ['r'], { shape: attr.ints([3, 2]) })
      .node('Concat', ['r', 'r'], ['c'])
      .node('Mul', ['c', 'two'], ['m'], { broadcast: attr.int(1), consumed_inputs: attr.ints([0, 0]) })
      .node('Pad', ['m'], ['y'], { paddings: attr.ints([0, 0, 0, 1]), value: attr.float(-7) })
      .output('y', 'FP32', [3, 5])
      .toBytes();

    // Act
    const result = rewriteForServing(model);
    const { y } = await run(result.model, { x: new ort.Tensor('float32', x, [2, 3]) });

    // Assess
    const expected: number[] = [];
    for (let row = 0; row < 3; row += 1) {
      const pair = [x[row * 2]!, x[row * 2 + 1]!].map((v) => v * 2);
      expected.push(...pair, ...pair, -7);
    }
    expectClose(y!.data as Float32Array, expected);
    const details = result.rewrites.map((r) => r.detail).join('\n');
    expect(details).toContain('Default-domain opset 1 raised to 7');
    expect(details).toContain('Reshape(1→5): shape attribute given as a Constant input');
    expect(details).toContain('Concat(1→4): axis=1 made explicit');
    expect(details).toContain('Mul(1→6): legacy consumed_inputs attribute dropped');
    expect(details).toContain('Pad(1→2): paddings attribute renamed pads');
  });

  it('Upsample(1) height_scale/width_scale become scales [1, 1, h, w] (nearest)', async () => {
    // Prepare
    const x = Float32Array.from([1, 2, 3, 4]);
    const model = oneNodeModel(
      6,
      'Upsample',
      [{ name: 'x', dims: [1, 1, 2, 2] }],
      { name: 'y', dims: [1, 1, 4, 4] },
      {
        height_scale: attr.float(2),
        width_scale: attr.float(2),
      },
    );

    // Act
    const { y } = await run(rewriteForServing(model).model, { x: new ort.Tensor('float32', x, [1, 1, 2, 2]) });

    // Assess
    const expected = Array.from(
      { length: 16 },
      (_, i) => x[Math.floor(Math.floor(i / 4) / 2) * 2 + Math.floor((i % 4) / 2)]!,
    );
    expectClose(y!.data as Float32Array, expected);
  });

  it('keeps experimental operators of opset 1 (ImageScaler) that onnxruntime still implements', async () => {
    // Prepare: ImageScaler(1) is y = scale * x + bias[c]; it never changed before opset 7.
    const x = ramp([1, 2, 1, 2]);
    const model = oneNodeModel(
      6,
      'ImageScaler',
      [{ name: 'x', dims: [1, 2, 1, 2] }],
      { name: 'y', dims: [1, 2, 1, 2] },
      {
        scale: attr.float(2),
        bias: attr.floats([1, -1]),
      },
    );

    // Act
    const result = rewriteForServing(model);
    const { y } = await run(result.model, { x: new ort.Tensor('float32', x, [1, 2, 1, 2]) });

    // Assess
    expectClose(
      y!.data as Float32Array,
      Array.from(x, (v, i) => 2 * v + (i < 2 ? 1 : -1)),
    );
    expect(result.rewrites.map((r) => r.detail)).toEqual([
      expect.stringContaining('no operator of the graph changed meaning'),
    ]);
  });

  it('moves a Reshape(1) shape of any size to the Constant as its varints, packed or not, values exact', () => {
    for (const count of [3, 5000]) {
      // Prepare: negative values (10-byte varints), zeros and large values; over 4 KiB the attribute is read as bytes.
      const shape = Array.from({ length: count }, (_, i) => [-1, 0, 1, 2 ** 40, -(2 ** 50)][i % 5] as number);
      const unpacked = new ModelBuilder({ opsets: { '': 1 } })
        .input('x', 'FP32', [1])
        .node('Reshape', ['x'], ['y'], { shape: attr.ints(shape) })
        .output('y', 'FP32', [-1])
        .toBytes();
      // The same model with the attribute's ints packed into one length-delimited field, as some writers do.
      const varints = readFields(onnx.TensorProto.encode({ int64Data: shape }).finish())[0]?.value ?? new Uint8Array();
      const attribute = concatBytes([
        onnx.AttributeProto.encode({ name: 'shape', type: onnx.AttributeProto.AttributeType.INTS }).finish(),
        lengthDelimitedField(8, varints),
      ]);
      const node = concatBytes([
        onnx.NodeProto.encode({ input: ['x'], output: ['y'], name: 'r', opType: 'Reshape', domain: '' }).finish(),
        lengthDelimitedField(5, attribute),
      ]);
      const fields = readFields(unpacked);
      const graphField = fields.find((f) => f.number === 7);
      const graphFields = readFields(graphField?.value ?? new Uint8Array());
      const nodeField = graphFields.find((f) => f.number === 1);
      if (graphField === undefined || nodeField === undefined) throw new Error('the test model has no node');
      const packed = rebuildMessage(
        unpacked,
        fields,
        new Map([[graphField, rebuildMessage(graphField.value, graphFields, new Map([[nodeField, node]]))]]),
      );

      for (const original of [unpacked, packed]) {
        // Act
        const { model } = rewriteForServing(original);

        // Assess: a Constant of dims [count] holding exactly the shape, feeding the Reshape's second input.
        const graph = onnx.ModelProto.decode(model).graph;
        const constant = graph?.node?.find((n) => n.opType === 'Constant');
        const reshape = graph?.node?.find((n) => n.opType === 'Reshape');
        const tensor = constant?.attribute?.[0]?.t;
        expect(tensor?.dims?.map(Number)).toEqual([count]);
        expect(tensor?.dataType).toBe(7);
        expect(tensor?.int64Data?.map((v) => Number(v))).toEqual(shape);
        expect(reshape?.input).toEqual(['x', constant?.output?.[0]]);
        expect(reshape?.attribute).toEqual([]);
      }
    }
  });

  it('refuses, naming operator and version, what it cannot convert exactly', () => {
    // Prepare
    const tile = oneNodeModel(
      5,
      'Tile',
      [
        { name: 'x', dims: [2] },
        { name: 't', dims: [1] },
      ],
      { name: 'y', dims: [4] },
    );
    const unknown = oneNodeModel(6, 'Swish', [{ name: 'x', dims: [1, 1, 4, 4] }], { name: 'y', dims: [1, 1, 4, 4] });
    const bilinear = oneNodeModel(
      6,
      'Upsample',
      [{ name: 'x', dims: [1, 1, 2, 2] }],
      { name: 'y', dims: [1, 1, 4, 4] },
      {
        height_scale: attr.float(2),
        width_scale: attr.float(2),
        mode: attr.string('bilinear'),
      },
    );
    const unknownRank = new ModelBuilder({ irVersion: 3, opsets: { '': 6 } })
      .input('a', { tensorType: { elemType: 1 } })
      .input('b', 'FP32', [3])
      .node('Add', ['a', 'b'], ['y'], { broadcast: attr.int(1), axis: attr.int(1) })
      .output('y', { tensorType: { elemType: 1 } })
      .toBytes();

    // Act
    const reasons = [tile, unknown, unknownRank, bilinear].map(rejectionOf);

    // Assess
    expect(reasons[0]).toMatch(/uses Tile\(1\), whose meaning changed in opset 6/);
    expect(reasons[1]).toMatch(/uses Swish, which opset 6 of the ONNX standard does not define/);
    expect(reasons[2]).toMatch(/node "Add_0" \(Add, version 6 to 7\).*the rank of "a" is not declared/);
    expect(reasons[3]).toMatch(/\(Upsample, version 1 to 7\).*mode "bilinear" has no exact counterpart/);
    for (const reason of reasons) expect(reason).toContain('opset 7 or later');
  });

  it('leaves models at opset 7 and later as they are (same bytes)', () => {
    // Prepare
    const model = oneNodeModel(
      7,
      'Add',
      [
        { name: 'a', dims: [2] },
        { name: 'b', dims: [2] },
      ],
      { name: 'y', dims: [2] },
    );

    // Act
    const result = rewriteForServing(model);

    // Assess
    expect(result.model).toBe(model);
    expect(result.rewrites).toEqual([]);
  });

  it('has an adapter for every version step of the opset-6 exports in the corpus', () => {
    // Assess: the steps the README lists.
    expect(ADAPTED_STEPS).toEqual(
      expect.arrayContaining([
        'Add 6->7',
        'Mul 6->7',
        'Gemm 6->7',
        'BatchNormalization 6->7',
        'PRelu 6->7',
        'AveragePool 1->7',
        'Dropout 6->7',
      ]),
    );
  });
});
