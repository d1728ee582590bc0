/**
 * The conformance runner's own parts, on small inputs whose answers are known: TensorProto decoding, the comparison
 * rules of the corpus README, model names, and the direct onnxruntime check used to explain mismatches.
 */
import { describe, expect, it } from 'vitest';
import { allCloseProblems, sklearnProblems, sklearnShapesMatch } from '../../conformance/compare.js';
import { discoverCases, modelNameOf } from '../../conformance/corpus.js';
import { runDirectly, withZipMapInputsAsOutputs } from '../../conformance/direct.js';
import { decodeTensorProto, UnsupportedTensorProtoError } from '../../conformance/tensor-proto.js';
import { joinRows, sliceRows, fromJson, type Observed } from '../../conformance/tensors.js';
import { isValidModelName } from '../../functions/core/catalog.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { buildZipMapClassifier } from '../../tools/onnx/sample-models.js';

function encodeTensor(message: Parameters<typeof onnx.TensorProto.create>[0]): Uint8Array {
  return onnx.TensorProto.encode(onnx.TensorProto.create(message)).finish();
}

describe('decodeTensorProto', () => {
  it('reads raw_data at an unaligned offset of the file', () => {
    // Prepare: the name before raw_data puts the floats at an odd byte offset.
    const values = new Float32Array([1.5, -2, 3.25, NaN]);
    const bytes = encodeTensor({ name: 'x', dataType: 1, dims: [2, 2], rawData: new Uint8Array(values.buffer) });

    // Act
    const tensor = decodeTensorProto(bytes);

    // Assess
    expect(tensor).toMatchObject({ name: 'x', datatype: 'FP32', shape: [2, 2] });
    expect(Array.from(tensor.data as Float32Array)).toEqual([1.5, -2, 3.25, NaN]);
  });

  it('reads the typed fields: float_data, int64_data, int32_data (BOOL), string_data, double_data', () => {
    // Act
    const floats = decodeTensorProto(encodeTensor({ dataType: 1, dims: [3], floatData: [0.5, 1, 2] }), 'f');
    const int64s = decodeTensorProto(encodeTensor({ dataType: 7, dims: [2], int64Data: [-3, 9007199254740991] }));
    const bools = decodeTensorProto(encodeTensor({ dataType: 9, dims: [3], int32Data: [1, 0, 1] }));
    const strings = decodeTensorProto(
      encodeTensor({ dataType: 8, dims: [2], stringData: [new TextEncoder().encode('é'), new Uint8Array()] }),
    );
    const doubles = decodeTensorProto(encodeTensor({ dataType: 11, dims: [1, 1], doubleData: [0.1] }));

    // Assess
    expect(floats).toEqual({ name: 'f', datatype: 'FP32', shape: [3], data: new Float32Array([0.5, 1, 2]) });
    expect(int64s.data).toEqual(new BigInt64Array([-3n, 9007199254740991n]));
    expect(bools).toMatchObject({ datatype: 'BOOL', data: new Uint8Array([1, 0, 1]) });
    expect(strings).toMatchObject({ datatype: 'BYTES', data: ['é', ''] });
    expect(doubles).toMatchObject({ datatype: 'FP64', shape: [1, 1], data: new Float64Array([0.1]) });
  });

  it('refuses element types KServe V2 cannot carry', () => {
    expect(() => decodeTensorProto(encodeTensor({ name: 'c', dataType: 14, dims: [1], floatData: [1, 2] }))).toThrow(
      UnsupportedTensorProtoError,
    );
  });
});

const json = (datatype: 'FP64' | 'BYTES', shape: number[], data: (number | string)[]) => ({ datatype, shape, data });
const observed = (datatype: Observed['datatype'], shape: number[], values: (number | string)[]): Observed => ({
  datatype,
  shape,
  values,
});

describe('the scikit-learn oracle', () => {
  it('applies the README shape rules: [N] answered as [N, 1], and SkipDim1', () => {
    expect(sklearnShapesMatch([3], [3, 1], false)).toBe(true);
    expect(sklearnShapesMatch([3], [3, 2], false)).toBe(false);
    expect(sklearnShapesMatch([1, 2], [1, 2, 1], false)).toBe(false);
    expect(sklearnShapesMatch([1, 2], [1, 2, 1], true)).toBe(true);
    expect(sklearnShapesMatch([2, 3], [3, 2], true)).toBe(false);
  });

  it('compares with 10^-decimal, tolerates one row with OneOff, and only the labels with NoProb', () => {
    // Prepare
    const expected = [json('BYTES', [3], ['a', 'b', 'a']), json('FP64', [3, 2], [0.9, 0.1, 0.2, 0.8, 'NaN', 1])];
    const labels = observed('BYTES', [3], ['a', 'b', 'a']);
    const close = observed('FP32', [3, 2], [0.90004, 0.1, 0.2, 0.8, NaN, 1]);
    const oneRowOff = observed('FP32', [3, 2], [0.9, 0.1, 0.3, 0.8, NaN, 1]);
    const twoRowsOff = observed('FP32', [3, 2], [0.8, 0.1, 0.3, 0.8, NaN, 1]);

    // Act / Assess
    expect(sklearnProblems(expected, [labels, close], { decimal: 4, flags: [] })).toEqual([]);
    expect(sklearnProblems(expected, [labels, close], { decimal: 5, flags: [] })).toEqual([
      'output 1: 1 of 3 rows differ beyond 1e-5 (element 0: expected 0.9, got 0.90004)',
    ]);
    expect(sklearnProblems(expected, [labels, oneRowOff], { decimal: 5, flags: ['OneOff'] })).toEqual([]);
    expect(sklearnProblems(expected, [labels, twoRowsOff], { decimal: 5, flags: ['OneOff'] })).toHaveLength(1);
    expect(sklearnProblems(expected, [labels, twoRowsOff], { decimal: 5, flags: ['NoProb'] })).toEqual([]);
    expect(
      sklearnProblems(expected, [observed('BYTES', [3], ['a', 'a', 'a'])], { decimal: 5, flags: ['NoProb'] }),
    ).toHaveLength(1);
  });
});

describe('allCloseProblems', () => {
  it('uses atol + rtol * |expected|, equal NaNs, exact integers and strings, equal shapes and datatypes', () => {
    // Prepare
    const tolerance = { rtol: 1e-3, atol: 1e-7 };
    const expected = [
      observed('FP32', [3], [1000, 0, NaN]),
      observed('INT64', [2], [1, 2]),
      observed('BYTES', [1], ['x']),
    ];

    // Act / Assess
    expect(
      allCloseProblems(expected, [observed('FP32', [3], [1000.9, 5e-8, NaN]), expected[1]!, expected[2]!], tolerance),
    ).toEqual([]);
    expect(
      allCloseProblems(expected, [observed('FP32', [3], [1001.2, 0, NaN]), expected[1]!, expected[2]!], tolerance),
    ).toEqual(['output 0: 1 of 3 elements differ beyond rtol 0.001, atol 1e-7 (element 0: expected 1000, got 1001.2)']);
    expect(
      allCloseProblems(
        expected,
        [expected[0]!, observed('INT64', [2], [1, 3]), observed('BYTES', [1], ['y'])],
        tolerance,
      ),
    ).toHaveLength(2);
    expect(
      allCloseProblems(expected, [observed('FP32', [1, 3], [1000, 0, NaN]), expected[1]!, expected[2]!], tolerance),
    ).toEqual(['output 0: shape [1, 3], expected [3]']);
    expect(
      allCloseProblems(expected, [observed('FP64', [3], [1000, 0, NaN]), expected[1]!, expected[2]!], tolerance),
    ).toEqual(['output 0: datatype FP64, expected FP32']);
    expect(allCloseProblems(expected, [expected[0]!], tolerance)).toEqual(['1 outputs, expected 3']);
  });
});

describe('tensors for one-row requests', () => {
  it('cuts a batch into rows and joins the answers back', () => {
    // Prepare
    const batch = fromJson('x', { datatype: 'FP32', shape: [3, 2], data: [1, 2, 3, 'NaN', 5, 6] });

    // Act
    const rows = [0, 1, 2].map((r) => sliceRows(batch, r, 1));
    const joined = joinRows(
      rows.map((r) => ({ datatype: r.datatype, shape: r.shape, values: Array.from(r.data as Float32Array) })),
    );

    // Assess
    expect(rows.map((r) => r.shape)).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    expect(joined).toEqual({ datatype: 'FP32', shape: [3, 2], values: [1, 2, 3, NaN, 5, 6] });
  });
});

describe('model names of cases', () => {
  it('sanitises folder names to the allowed pattern', () => {
    const names = [
      modelNameOf('sklearn', 'SklearnNormalizerL2-SkipDim1'),
      modelNameOf('onnx-backend', 'a b/c..d'),
      modelNameOf('paddle', 'x'.repeat(300)),
    ];
    expect(names.slice(0, 2)).toEqual(['sklearn.SklearnNormalizerL2-SkipDim1', 'onnx-backend.a-b-c.d']);
    for (const name of names) expect(isValidModelName(name)).toBe(true);
  });

  it('finds no cases in a folder without the corpus', () => {
    expect(discoverCases('/nonexistent-corpus')).toEqual([]);
  });
});

describe('withZipMapInputsAsOutputs', () => {
  it('lets onnxruntime-node return the probabilities a ZipMap classifier computes', async () => {
    // Prepare
    const classifier = buildZipMapClassifier({ labels: ['no', 'yes'], defaultDomain: true });
    const input = {
      name: 'float_input',
      datatype: 'FP32' as const,
      shape: [1, 4],
      data: new Float32Array([1, 0, 0, 0]),
    };
    const original = await runDirectly(classifier.bytes, [input]);

    // Act
    const direct = await runDirectly(withZipMapInputsAsOutputs(classifier.bytes), [input]);

    // Assess
    expect(original).toMatchObject({ ok: false, stage: 'run', error: expect.stringContaining('Non tensor type') });
    if (!direct.ok) throw new Error(direct.error);
    const [label, probabilities] = direct.outputs;
    expect(label?.data).toHaveLength(1);
    expect(probabilities?.shape).toEqual([1, 2]);
    const [p0, p1] = Array.from(probabilities?.data as Float32Array);
    expect((p0 ?? 0) + (p1 ?? 0)).toBeCloseTo(1, 5);
    const scores = [0, 1].map((c) => (classifier.intercepts[c] ?? 0) + (classifier.coefficients[c * 4] ?? 0));
    expect(Math.log((p1 ?? 1) / (p0 ?? 1))).toBeCloseTo((scores[1] ?? 0) - (scores[0] ?? 0), 4);
  });
});
