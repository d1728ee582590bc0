/**
 * Every scikit-learn model of the shared conformance corpus, rewritten for serving, must load in onnxruntime-node
 * and reproduce scikit-learn's predictions as the corpus README defines the comparison.
 */
import * as ort from 'onnxruntime-node';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { elementCount } from '../../functions/core/codec/index.js';
import { inspectModel, rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import { sklearnProblems, type SklearnFlag } from '../../conformance/compare.js';
import { resolveCorpusDir } from '../../conformance/corpus.js';
import { describeWithCorpus } from '../support/corpus.js';
import { toNumber, type JsonTensor } from '../../conformance/tensors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpusRoot = resolveCorpusDir(repoRoot);
const corpus = path.join(corpusRoot, 'sklearn');

interface SklearnCase {
  readonly inputs: Readonly<Record<string, JsonTensor>>;
  readonly expected_outputs_in_model_order: readonly JsonTensor[];
  readonly decimal: number;
  readonly flags: readonly SklearnFlag[];
}

interface Output {
  readonly dims: readonly number[];
  readonly data: (number | string)[];
}

const ORT_TYPES: Readonly<Record<string, ort.Tensor.Type>> = { FP32: 'float32', INT64: 'int64', BYTES: 'string' };

function feed(spec: JsonTensor, values: JsonTensor['data'], dims: readonly number[]): ort.Tensor {
  const type = ORT_TYPES[spec.datatype];
  if (type === 'float32') return new ort.Tensor(type, Float32Array.from(values, toNumber), dims);
  if (type === 'int64')
    return new ort.Tensor(
      type,
      BigInt64Array.from(values, (v) => BigInt(v)),
      dims,
    );
  if (type === 'string') return new ort.Tensor(type, values.map(String), dims);
  throw new Error(`case input datatype ${spec.datatype} not handled by this test`);
}

/**
 * Runs a case as the corpus README says: one row per run when the model's batch dimension is fixed to 1, outputs
 * joined along the first dimension.
 */
async function runCase(model: Uint8Array, testCase: SklearnCase): Promise<Output[]> {
  const session = await ort.InferenceSession.create(model);
  const inputs = inspectModel(model).inputs;
  const rows = Object.values(testCase.inputs)[0]?.shape[0] ?? 1;
  const perRow = rows > 1 && inputs.every((i) => i.shape?.[0] === 1);
  const outputs: Output[] = session.outputNames.map(() => ({ dims: [], data: [] }));
  const runs = perRow ? rows : 1;
  for (let run = 0; run < runs; run++) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of inputs) {
      const spec = testCase.inputs[input.name];
      if (!spec) throw new Error(`case.json has no input "${input.name}"`);
      const size = spec.data.length / runs;
      const values = spec.data.slice(run * size, (run + 1) * size);
      const declared = input.shape ?? [];
      const fixed = declared.every((d): d is number => typeof d === 'number' && d >= 0);
      const declaredSize = fixed ? elementCount(declared) : -1;
      // A declared, fully fixed shape of the right size wins (a [4] case input for a [1, 1] model input).
      const dims = declaredSize === size ? declared : perRow ? [1, ...spec.shape.slice(1)] : spec.shape;
      feeds[input.name] = feed(spec, values, dims as number[]);
    }
    const result = await session.run(feeds);
    session.outputNames.forEach((name, i) => {
      const tensor = result[name]!;
      const output = outputs[i]!;
      output.data.push(
        ...Array.from(tensor.data as ArrayLike<number | bigint | string>, (v) =>
          typeof v === 'bigint' ? Number(v) : v,
        ),
      );
      outputs[i] = {
        dims: [(output.dims[0] ?? 0) + (tensor.dims[0] ?? 1), ...tensor.dims.slice(1)],
        data: output.data,
      };
    });
  }
  await session.release();
  return outputs;
}

/** Differences from scikit-learn's predictions, by the corpus README's rule (the runner's own comparison). */
function compare(
  testCase: Pick<SklearnCase, 'expected_outputs_in_model_order' | 'decimal' | 'flags'>,
  actual: readonly Output[],
): string[] {
  const expected = testCase.expected_outputs_in_model_order;
  const observed = actual.map((o, i) => ({ datatype: expected[i]?.datatype ?? 'FP32', shape: o.dims, values: o.data }));
  return sklearnProblems(expected, observed, { decimal: testCase.decimal, flags: testCase.flags });
}

const present = existsSync(corpus);
const cases = present
  ? readdirSync(corpus)
      .filter((name) => existsSync(path.join(corpus, name, 'case.json')))
      .sort()
  : [];

describeWithCorpus(corpusRoot, 'scikit-learn conformance corpus, rewritten for serving', () => {
  it('has the cases this test was written against', () => {
    // The corpus left out the six cases with no honest oracle (its README says why): every case here must match.
    expect(cases.length).toBe(40);
  });

  it.each(cases)('%s', async (name) => {
    // Prepare
    const bytes = new Uint8Array(readFileSync(path.join(corpus, name, 'model.onnx')));
    const testCase = JSON.parse(readFileSync(path.join(corpus, name, 'case.json'), 'utf8')) as SklearnCase;
    const declaredOutputs = inspectModel(bytes).outputs;

    // Act
    const result = rewriteForServing(bytes);

    // Assess: the rewritten model keeps the output names, has tensor outputs only, and loads
    const outputs = inspectModel(result.model).outputs;
    expect(outputs.map((o) => o.name)).toEqual(declaredOutputs.map((o) => o.name));
    expect(outputs.every((o) => o.kind === 'tensor')).toBe(true);
    const zipMaps = result.rewrites.filter((r) => r.kind === 'remove-zipmap');
    expect(zipMaps.map((r) => r.output)).toEqual(declaredOutputs.filter((o) => o.kind !== 'tensor').map((o) => o.name));
    // The only other rewrite is the opset upgrade of old onnxmltools exports (below opset 7).
    expect(result.rewrites.filter((r) => r.kind !== 'remove-zipmap').every((r) => r.kind === 'upgrade-opset')).toBe(
      true,
    );
    if (result.rewrites.length === 0) expect(result.model).toBe(bytes);
    if (zipMaps.length > 0)
      await expect(runCase(bytes, testCase)).rejects.toThrow('Non tensor type is temporarily not supported.');

    expect(compare(testCase, await runCase(result.model, testCase))).toEqual([]);
  });
});
