import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { attr, encodeModel, mapType, ModelBuilder, sequenceType, tensorType } from '../../tools/onnx/model-builder.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { inspectModel, rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import { buildIdentityModel, buildZipMapClassifier } from '../../tools/onnx/sample-models.js';
import { readFields, rebuildMessage } from '../../functions/core/onnx/wire.js';

const ROWS = new Float32Array([1, 2, 3, 4, 0.5, -1, 0, 2, -3, 0.25, 1, -2]); // 3 rows of 4 features

/** softmax(x · coefficientsᵀ + intercepts), row by row, in float64. */
function expectedProbabilities(x: Float32Array, coefficients: Float32Array, intercepts: Float32Array): number[] {
  const classes = intercepts.length;
  const features = coefficients.length / classes;
  const out: number[] = [];
  for (let row = 0; row < x.length / features; row++) {
    const scores = Array.from(intercepts, (b, c) => {
      let sum = b;
      for (let f = 0; f < features; f++) sum += x[row * features + f]! * coefficients[c * features + f]!;
      return sum;
    });
    const max = Math.max(...scores);
    const exp = scores.map((s) => Math.exp(s - max));
    const total = exp.reduce((a, b) => a + b, 0);
    out.push(...exp.map((e) => e / total));
  }
  return out;
}

function rejectionOf(run: () => unknown): ModelRejectedError {
  try {
    run();
  } catch (error) {
    if (error instanceof ModelRejectedError) return error;
    throw error;
  }
  throw new Error('expected a ModelRejectedError');
}

describe('rewriteForServing: ZipMap', () => {
  const cases = [
    {
      title: 'string labels, default domain imported',
      labels: ['setosa', 'versicolor', 'virginica'],
      defaultDomain: true,
    },
    { title: 'int64 labels, default domain imported', labels: [3, 7, 42], defaultDomain: true },
    { title: 'string labels, only ai.onnx.ml imported (onnxmltools 1.3)', labels: ['no', 'yes'], defaultDomain: false },
    { title: 'int64 labels, only ai.onnx.ml imported', labels: [0, 1], defaultDomain: false },
  ] as const;

  it.each(cases)('$title: serves the probabilities tensor under the same name', async ({ labels, defaultDomain }) => {
    // Prepare
    const classifier = buildZipMapClassifier({ labels, defaultDomain });
    const feeds = { float_input: new ort.Tensor('float32', ROWS, [3, 4]) };
    const original = await ort.InferenceSession.create(classifier.bytes);
    await expect(original.run(feeds)).rejects.toThrow('Non tensor type is temporarily not supported');

    // Act
    const result = rewriteForServing(classifier.bytes);
    const session = await ort.InferenceSession.create(result.model);
    const outputs = await session.run(feeds);

    // Assess
    expect(session.outputNames).toEqual(['output_label', 'output_probability']);
    expect(result.classLabels).toEqual({ output_probability: [...labels] });
    expect(result.rewrites).toEqual([
      {
        kind: 'remove-zipmap',
        output: 'output_probability',
        detail: expect.stringContaining(`tensor(float) [N, ${labels.length}]`),
      },
    ]);
    const probabilities = outputs.output_probability!;
    expect(probabilities.dims).toEqual([3, labels.length]);
    const expected = expectedProbabilities(ROWS, classifier.coefficients, classifier.intercepts);
    for (const [i, p] of Array.from(probabilities.data as Float32Array).entries())
      expect(p).toBeCloseTo(expected[i]!, 5);
    // Column i belongs to label i: the predicted label is the label of the largest column.
    const predicted = Array.from(outputs.output_label!.data as ArrayLike<string | bigint>, (l) =>
      typeof l === 'bigint' ? Number(l) : l,
    );
    const argmax = [0, 1, 2].map((row) => {
      const rowValues = expected.slice(row * labels.length, (row + 1) * labels.length);
      return labels[rowValues.indexOf(Math.max(...rowValues))];
    });
    expect(predicted).toEqual(argmax);
    const inspected = inspectModel(result.model);
    expect(inspected.outputs[1]).toEqual({
      name: 'output_probability',
      kind: 'tensor',
      type: 'tensor(float)',
      datatype: 'FP32',
      shape: ['N', labels.length],
    });
    expect(inspected.opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')).toBe(true);
  });

  it('takes the batch dimension from the declared shape of the ZipMap input', () => {
    // Prepare: the probabilities tensor is declared in value_info with a fixed batch of 1
    const proto = new ModelBuilder({ opsets: { '': 13, 'ai.onnx.ml': 1 } })
      .input('x', 'FP32', [1, 2])
      .node('Softmax', ['x'], ['p'], { axis: attr.int(1) })
      .node('ZipMap', ['p'], ['probs'], { classlabels_strings: attr.strings(['a', 'b']) }, { domain: 'ai.onnx.ml' })
      .output('probs', sequenceType(mapType('BYTES', tensorType('FP32', []))))
      .toProto();
    proto.graph!.valueInfo = [{ name: 'p', type: tensorType('FP32', [1, 2]) }];

    // Act
    const result = rewriteForServing(encodeModel(proto));

    // Assess
    expect(inspectModel(result.model).outputs[0]?.shape).toEqual([1, 2]);
  });

  it('returns int64 labels beyond 2^53 as decimal strings', () => {
    // Prepare
    const big = 2n ** 60n + 1n;
    const classifier = buildZipMapClassifier({ labels: [1n, big] });

    // Act
    const { classLabels } = rewriteForServing(classifier.bytes);

    // Assess
    expect(classLabels).toEqual({ output_probability: [1, '1152921504606846977'] });
  });

  it('keeps every byte it does not rewrite, including fields onnx-proto does not know', () => {
    // Prepare: unknown fields in ModelProto (a future IR's) and in GraphProto survive only a wire-level edit
    const classifier = buildZipMapClassifier({ labels: ['a', 'b'] });
    const modelFields = readFields(classifier.bytes);
    const graphField = modelFields.find((f) => f.number === 7)!;
    const unknownGraphField = new Uint8Array([0xa2, 0x06, 0x03, 0x61, 0x62, 0x63]); // field 100, "abc"
    const graph = new Uint8Array([
      ...rebuildMessage(graphField.value, readFields(graphField.value), new Map()),
      ...unknownGraphField,
    ]);
    const unknownModelField = new Uint8Array([0xc8, 0x06, 0x2a]); // field 105, varint 42
    const model = new Uint8Array([
      ...rebuildMessage(classifier.bytes, modelFields, new Map([[graphField, graph]])),
      ...unknownModelField,
    ]);

    // Act
    const result = rewriteForServing(model);

    // Assess
    const fields = readFields(result.model);
    expect(fields.find((f) => f.number === 105)).toBeDefined();
    const rewrittenGraph = readFields(fields.find((f) => f.number === 7)!.value);
    expect(rewrittenGraph.find((f) => f.number === 100)?.value).toEqual(new Uint8Array([0x61, 0x62, 0x63]));
    // Everything else decodes to the same messages, but for the one node and the one output.
    const before = onnx.ModelProto.decode(model);
    const after = onnx.ModelProto.decode(result.model);
    expect(after.graph!.initializer).toEqual(before.graph!.initializer);
    expect(after.graph!.input).toEqual(before.graph!.input);
    expect(after.graph?.output?.[0]).toEqual(before.graph?.output?.[0]);
    expect(after.graph?.node?.map((n) => n.opType)).toEqual(['LinearClassifier', 'Identity', 'Identity']);
    expect(after.graph?.node?.[0]).toEqual(before.graph?.node?.[0]);
    expect(after.opsetImport).toEqual(before.opsetImport);
  });

  it('returns the original bytes, not a copy, when nothing needs rewriting', () => {
    // Prepare
    const model = buildIdentityModel('FP32');

    // Act
    const result = rewriteForServing(model);

    // Assess
    expect(result.model).toBe(model);
    expect(result.rewrites).toEqual([]);
    expect(result.classLabels).toEqual({});
  });
});

describe('rewriteForServing: rejections', () => {
  it('rejects an empty file', () => {
    const error = rejectionOf(() => rewriteForServing(new Uint8Array()));
    expect(error.message).toMatch(/^The model file is empty \(0 bytes\)\. Upload the binary \.onnx file/);
  });

  it('rejects bytes that are not protobuf', () => {
    const garbage = new TextEncoder().encode('<!DOCTYPE html><html>not a model</html>');
    const error = rejectionOf(() => rewriteForServing(garbage));
    expect(error.name).toBe('ModelRejectedError');
    expect(error.message).toMatch(/^The file is not an ONNX model: it does not parse as an ONNX ModelProto/);
    expect(error.message).toContain('Upload the binary .onnx file your exporter wrote');
  });

  it('rejects a truncated model', () => {
    const model = buildIdentityModel('FP32');
    const error = rejectionOf(() => rewriteForServing(model.subarray(0, model.length - 5)));
    expect(error.message).toContain('truncated or corrupt protobuf data');
  });

  it('rejects well-formed protobuf that holds no graph', () => {
    const noGraph = onnx.ModelProto.encode({ irVersion: 8, producerName: 'x' }).finish();
    const error = rejectionOf(() => rewriteForServing(noGraph));
    expect(error.message).toMatch(/^The file is not an ONNX model: it holds no graph \(ModelProto\.graph\)/);
  });

  it('rejects a sequence output that no ZipMap produces, naming it, its type and what to do', () => {
    // Prepare
    const model = new ModelBuilder()
      .input('a', 'FP32', [2])
      .input('b', 'FP32', [3])
      .node('SequenceConstruct', ['a', 'b'], ['parts'])
      .output('parts', sequenceType(tensorType('FP32', [-1])))
      .toBytes();

    // Act
    const error = rejectionOf(() => rewriteForServing(model));

    // Assess
    expect(error.message).toBe(
      'Output "parts" has type seq(tensor(float)); onnxruntime-node can only return tensors ("Non tensor type is ' +
        'temporarily not supported."). Re-export the model so that every graph output is a tensor. For a ' +
        "scikit-learn classifier, re-export it without ZipMap: skl2onnx.to_onnx(model, X, options={id(model): {'zipmap': False}}).",
    );
  });

  it('rejects a map output and an optional output', () => {
    const mapModel = new ModelBuilder({ opsets: { '': 17, 'ai.onnx.ml': 3 } })
      .input('k', 'INT64', [3])
      .input('v', 'FP32', [3])
      .output('m', mapType('INT64', tensorType('FP32', [])))
      .toBytes();
    expect(rejectionOf(() => rewriteForServing(mapModel)).message).toMatch(
      /^Output "m" has type map\(int64,tensor\(float\)\);/,
    );
    const optionalModel = new ModelBuilder()
      .input('x', 'FP32', [3])
      .node('Optional', ['x'], ['o'])
      .output('o', { optionalType: { elemType: tensorType('FP32', [3]) } })
      .toBytes();
    expect(rejectionOf(() => rewriteForServing(optionalModel)).message).toMatch(
      /^Output "o" has type optional\(tensor\(float\)\);/,
    );
  });

  it('rejects a model whose weights live in external data files', () => {
    const proto = new ModelBuilder()
      .input('x', 'FP32', [2])
      .node('Add', ['x', 'w'], ['y'])
      .output('y', 'FP32', [2])
      .toProto();
    proto.graph!.initializer = [
      { name: 'w', dataType: 1, dims: [2], dataLocation: 1, externalData: [{ key: 'location', value: 'weights.bin' }] },
    ];
    expect(rejectionOf(() => rewriteForServing(encodeModel(proto))).message).toBe(
      'The model keeps 1 weight tensor(s) (e.g. "w") in external data files, which a single .onnx upload does not ' +
        'carry. Save it as one file: onnx.save_model(model, path, save_as_external_data=False) (possible below 2 GB), ' +
        'or upload it as a .zip with its data files (docs/versions.md, "External data").',
    );
  });

  it('rejects a non-tensor input', () => {
    const model = new ModelBuilder()
      .input('parts', sequenceType(tensorType('FP32', [-1])))
      .node('ConcatFromSequence', ['parts'], ['joined'], { axis: attr.int(0) })
      .output('joined', 'FP32', [-1])
      .toBytes();
    expect(rejectionOf(() => rewriteForServing(model)).message).toBe(
      'Input "parts" has type seq(tensor(float)); only tensor inputs can be sent in an inference request. ' +
        'Re-export the model so that every graph input is a tensor.',
    );
  });

  it('rejects a ZipMap whose output other nodes also read', () => {
    const model = new ModelBuilder({ opsets: { '': 17, 'ai.onnx.ml': 1 } })
      .input('x', 'FP32', [1, 2])
      .node('ZipMap', ['x'], ['probs'], { classlabels_int64s: attr.ints([0, 1]) }, { domain: 'ai.onnx.ml', name: 'zm' })
      .node('SequenceLength', ['probs'], ['count'], {}, { name: 'len' })
      .output('probs', sequenceType(mapType('INT64', tensorType('FP32', []))))
      .output('count', 'INT64', [])
      .toBytes();
    expect(rejectionOf(() => rewriteForServing(model)).message).toMatch(
      /^Output "probs" \(type seq\(map\(int64,tensor\(float\)\)\)\) is also read by node "len" \(SequenceLength\)/,
    );
  });
});

describe('inspectModel', () => {
  it('reads the header and the interface, listing initializer-backed inputs apart as onnxruntime does', async () => {
    // Prepare: IR 3 exporters list weights among the inputs
    const model = new ModelBuilder({
      irVersion: 3,
      opsets: { '': 8 },
      producerName: 'OnnxMLTools',
      producerVersion: '1.3.1',
    })
      .input('x', 'FP32', ['N', 2])
      .input('w', 'FP32', [2, 1])
      .initializer('w', { datatype: 'FP32', dims: [2, 1], data: new Float32Array([1, 2]) })
      .node('MatMul', ['x', 'w'], ['y'])
      .output('y', 'FP32', ['N', -1])
      .output('z', { sparseTensorType: { elemType: 1 } })
      .toBytes();

    // Act
    const inspection = inspectModel(model);

    // Assess
    expect(inspection).toEqual({
      irVersion: 3,
      opsetImports: [{ domain: '', version: 8 }],
      producerName: 'OnnxMLTools',
      producerVersion: '1.3.1',
      inputs: [{ name: 'x', kind: 'tensor', type: 'tensor(float)', datatype: 'FP32', shape: ['N', 2] }],
      outputs: [
        { name: 'y', kind: 'tensor', type: 'tensor(float)', datatype: 'FP32', shape: ['N', -1] },
        { name: 'z', kind: 'sparse_tensor', type: 'sparse_tensor(float)' },
      ],
      initializerInputs: ['w'],
    });
    const session = await ort.InferenceSession.create(
      new ModelBuilder({ irVersion: 3, opsets: { '': 8 } })
        .input('x', 'FP32', ['N', 2])
        .input('w', 'FP32', [2, 1])
        .initializer('w', { datatype: 'FP32', dims: [2, 1], data: new Float32Array([1, 2]) })
        .node('MatMul', ['x', 'w'], ['y'])
        .output('y', 'FP32', ['N', 1])
        .toBytes(),
    );
    expect(session.inputNames).toEqual(['x']);
  });

  it('rejects what rewriteForServing rejects as not a model', () => {
    expect(() => inspectModel(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(ModelRejectedError);
  });
});
