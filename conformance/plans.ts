/**
 * What the runner does with each case: the requests it sends, the sample it uploads with the model, and the
 * oracle its answers are compared with, per corpus folder (see `../shared/conformance/README.md`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { elementCount } from '../functions/core/codec/index.js';
import { inspectModel, type ValueSummary } from '../functions/core/onnx/inspect.js';
import { int64ToSafe, onnx, type Int64Like } from '../functions/core/onnx/proto.js';
import type { Tensor } from '../functions/core/types.js';
import {
  allCloseProblems,
  ONNX_BACKEND_TOLERANCE,
  sklearnProblems,
  type AllCloseTolerance,
  type SklearnFlag,
} from './compare.js';
import type { CorpusCase } from './corpus.js';
import { runDirectly } from './direct.js';
import { decodeTensorProto } from './tensor-proto.js';
import {
  fromJson,
  generatedInput,
  joinRows,
  observe,
  sliceRows,
  toNumber,
  type JsonTensor,
  type Observed,
} from './tensors.js';

/** Inputs with more elements than this travel in the binary tensor extension (and so do the outputs). */
export const BINARY_ABOVE_ELEMENTS = 4096;

/**
 * The first request is uploaded as the registration sample (`model.onnx.json`, V2 JSON) when it is this small;
 * larger models are smoke-tested by registration on generated inputs of their declared shapes.
 */
export const SAMPLE_MAX_ELEMENTS = 65_536;

/**
 * PaddlePaddle oracle: onnxruntime called directly. Same engine, so only summation order (threads, graph
 * optimizations) may differ.
 */
export const PADDLE_TOLERANCE: AllCloseTolerance = { rtol: 1e-4, atol: 1e-6 };

/** The check of the `zipmap: true` request parameter on one ZipMap classifier. */
export interface ZipMapCheck {
  /** The graph output that ended in a ZipMap. */
  readonly output: string;
  /** Its class labels, read from the uploaded model's ZipMap node. */
  readonly labels: readonly (string | number)[];
  /** scikit-learn's probabilities for the rows of the first request, row by row in label order. */
  readonly expectedRows: readonly (readonly number[])[];
  /** Absolute tolerance. */
  readonly tolerance: number;
}

/** Everything the runner needs for one case. */
export interface CasePlan {
  /** The file uploaded, as the corpus has it. */
  readonly model: Uint8Array;
  /** The graph's outputs, in order: answers are read by these names. */
  readonly outputNames: readonly string[];
  /** One entry per inference request: its input tensors. */
  readonly requests: readonly (readonly Tensor[])[];
  /** Uploaded as `model.onnx.json` before the model, so that registration smoke-tests the case's own inputs. */
  readonly sample?: readonly Tensor[];
  /** Send inputs and ask for outputs in the binary tensor extension. */
  readonly binary: boolean;
  /**
   * The case has BYTES (string) tensors: its first request is sent again in the other form (binary instead of
   * JSON or back), and both answers must be identical.
   */
  readonly bytesInBothForms: boolean;
  /** How the requests were formed, for the report. */
  readonly how: string;
  readonly zipMap?: ZipMapCheck;
  /** Differences between the oracle and the answers (one list of outputs, in `outputNames` order, per request). */
  check(answers: readonly (readonly Observed[])[]): string[];
}

/** Builds the plan of a case from its folder. */
export async function planCase(testCase: CorpusCase): Promise<CasePlan> {
  const model = new Uint8Array(await readFile(path.join(testCase.dir, 'model.onnx')));
  switch (testCase.category) {
    case 'sklearn':
      return sklearnPlan(testCase, model);
    case 'onnx-backend':
      return backendPlan(testCase, model);
    case 'onnx-light':
      return lightPlan(testCase, model);
    case 'paddle':
      return paddlePlan(testCase, model);
    case 'frameworks':
      return frameworksPlan(testCase, model);
  }
}

function totalElements(tensors: readonly Tensor[]): number {
  return tensors.reduce((sum, t) => sum + t.data.length, 0);
}

function withSample(requests: readonly (readonly Tensor[])[]): { sample?: readonly Tensor[] } {
  const first = requests[0];
  return first !== undefined && totalElements(first) <= SAMPLE_MAX_ELEMENTS ? { sample: first } : {};
}

function hasBytes(inputs: readonly Tensor[], outputs: readonly { readonly datatype: string }[]): boolean {
  return [...inputs, ...outputs].some((t) => t.datatype === 'BYTES');
}

/** A stable seed per case, so that generated inputs are the same on every run and machine (FNV-1a). */
function seedOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

// ---------------------------------------------------------------------------------------------------------------
// scikit-learn: case.json holds the inputs and scikit-learn's own predictions.

interface SklearnCaseFile {
  readonly inputs: Readonly<Record<string, JsonTensor>>;
  readonly expected_outputs_in_model_order: readonly JsonTensor[];
  readonly decimal: number;
  readonly flags: readonly SklearnFlag[];
}

function sklearnPlan(testCase: CorpusCase, model: Uint8Array): CasePlan {
  const file = JSON.parse(readFileSync(path.join(testCase.dir, 'case.json'), 'utf8')) as SklearnCaseFile;
  const inspection = inspectModel(model);
  const declared = inspection.inputs;
  const caseInputs = Object.entries(file.inputs);
  const rows = caseInputs[0]?.[1].shape[0] ?? 1;
  // Most of these models were converted with a fixed batch of 1: one row per request, answers joined (README).
  const perRow = rows > 1 && declared.every((input) => input.shape?.[0] === 1);
  const runs = perRow ? rows : 1;
  const requests: Tensor[][] = [];
  for (let run = 0; run < runs; run += 1) {
    requests.push(
      declared.map((input) => {
        const json = file.inputs[input.name];
        if (json === undefined) throw new Error(`case.json has no input "${input.name}"`);
        const whole = fromJson(input.name, json);
        const size = json.data.length / runs;
        const part = perRow ? sliceRows(whole, run, 1) : whole;
        // A fully fixed declared shape of the right size is used as declared (e.g. rows of [4] sent as [1, 1]).
        const fixed = (input.shape ?? []).every((d): d is number => typeof d === 'number' && d >= 0)
          ? (input.shape as number[])
          : undefined;
        return fixed !== undefined && elementCount(fixed) === size ? { ...part, shape: fixed } : part;
      }),
    );
  }
  const outputNames = inspection.outputs.map((o) => o.name);
  const tolerance = { decimal: file.decimal, flags: file.flags };
  const zipMap = file.flags.includes('NoProb')
    ? undefined
    : zipMapCheck(model, inspection.outputs, file, requests[0]?.[0]?.shape[0] ?? 1);
  return {
    model,
    outputNames,
    requests,
    ...withSample(requests),
    binary: false,
    bytesInBothForms: hasBytes(requests[0] ?? [], file.expected_outputs_in_model_order),
    how: perRow ? `${rows} one-row requests (batch fixed to 1)` : `1 request of ${rows} rows`,
    ...(zipMap === undefined ? {} : { zipMap }),
    check: (answers) => {
      const joined = outputNames.map((_, i) =>
        joinRows(answers.map((outputs) => outputs[i]).filter((o): o is Observed => o !== undefined)),
      );
      return sklearnProblems(file.expected_outputs_in_model_order, joined, tolerance);
    },
  };
}

/** The ZipMap check of a classifier whose probabilities output ends in a ZipMap, read from the uploaded model. */
function zipMapCheck(
  model: Uint8Array,
  outputs: readonly ValueSummary[],
  file: SklearnCaseFile,
  firstRequestRows: number,
): ZipMapCheck | undefined {
  const index = outputs.findIndex((o) => o.kind !== 'tensor');
  const output = outputs[index];
  const expected = file.expected_outputs_in_model_order[index];
  if (output === undefined || expected === undefined) return undefined;
  const node = (onnx.ModelProto.decode(model).graph?.node ?? []).find(
    (n) => n.opType === 'ZipMap' && n.output?.[0] === output.name,
  );
  if (node === undefined) return undefined;
  const decoder = new TextDecoder();
  const strings = node.attribute?.find((a) => a.name === 'classlabels_strings')?.strings ?? [];
  const ints = node.attribute?.find((a) => a.name === 'classlabels_int64s')?.ints ?? [];
  const labels =
    strings.length > 0 ? strings.map((s) => decoder.decode(s)) : ints.map((i) => int64ToSafe(i as Int64Like));
  const columns = labels.length;
  // Only where scikit-learn's answer is the dense [rows, classes] probabilities the rows can be checked against.
  if (expected.shape.length !== 2 || expected.shape[1] !== columns) return undefined;
  const expectedRows: number[][] = [];
  for (let row = 0; row < firstRequestRows; row += 1) {
    expectedRows.push(expected.data.slice(row * columns, (row + 1) * columns).map(toNumber));
  }
  return { output: output.name, labels, expectedRows, tolerance: 10 ** -file.decimal };
}

// ---------------------------------------------------------------------------------------------------------------
// ONNX backend test data: input_N.pb in, output_N.pb expected.

function numbered(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
    .sort((a, b) => Number.parseInt(a.slice(prefix.length), 10) - Number.parseInt(b.slice(prefix.length), 10))
    .map((f) => path.join(dir, f));
}

/** One `test_data_set_N` folder: its inputs (named after the graph inputs a caller feeds) and expected outputs. */
function testDataSet(
  dataDir: string,
  inspection: ReturnType<typeof inspectModel>,
): { inputs: Tensor[]; expected: Observed[] } {
  // Inputs are numbered in the order of the graph inputs a caller feeds (those without an initializer).
  const inputs = numbered(dataDir, 'input_').map((file, i) => {
    const name = inspection.inputs[i]?.name;
    if (name === undefined) throw new Error(`${path.basename(file)} has no matching graph input`);
    return decodeTensorProto(readFileSync(file), name);
  });
  const expected = numbered(dataDir, 'output_').map((file) => observe(decodeTensorProto(readFileSync(file))));
  return { inputs, expected };
}

function backendPlan(testCase: CorpusCase, model: Uint8Array): CasePlan {
  const inspection = inspectModel(model);
  const { inputs, expected } = testDataSet(path.join(testCase.dir, 'test_data_set_0'), inspection);
  return tensorOraclePlan(
    model,
    inspection.outputs.map((o) => o.name),
    [inputs],
    [expected],
    ONNX_BACKEND_TOLERANCE,
    'test_data_set_0',
  );
}

/**
 * Framework exports (tf2onnx, keras2onnx, CNTK): every `test_data_set_N` is one request, compared with the original
 * framework's predictions with the ONNX backend tests' relative tolerance (some were printed with about 8
 * significant digits, see the corpus README).
 */
function frameworksPlan(testCase: CorpusCase, model: Uint8Array): CasePlan {
  const inspection = inspectModel(model);
  const sets = readdirSync(testCase.dir)
    .filter((f) => /^test_data_set_\d+$/.test(f))
    .sort((a, b) => Number(a.slice('test_data_set_'.length)) - Number(b.slice('test_data_set_'.length)));
  if (sets.length === 0) throw new Error('the case has no test_data_set_N folder');
  const data = sets.map((set) => testDataSet(path.join(testCase.dir, set), inspection));
  const how = sets.length === 1 ? (sets[0] ?? '') : `${sets.length} test data sets`;
  return tensorOraclePlan(
    model,
    inspection.outputs.map((o) => o.name),
    data.map((d) => d.inputs),
    data.map((d) => d.expected),
    ONNX_BACKEND_TOLERANCE,
    how,
  );
}

/** A plan whose oracle is a list of expected tensors per request (in `outputNames` order). */
function tensorOraclePlan(
  model: Uint8Array,
  outputNames: readonly string[],
  requests: readonly (readonly Tensor[])[],
  expected: readonly (readonly Observed[])[],
  tolerance: AllCloseTolerance,
  how: string,
): CasePlan {
  const binary =
    totalElements(requests[0] ?? []) > BINARY_ABOVE_ELEMENTS ||
    expected.some((set) => set.some((e) => e.values.length > BINARY_ABOVE_ELEMENTS));
  return {
    model,
    outputNames,
    requests,
    ...withSample(requests),
    binary,
    bytesInBothForms: hasBytes(requests[0] ?? [], expected[0] ?? []),
    how: `${how}${binary ? ', binary tensors' : ', JSON'}`,
    check: (answers) =>
      expected.flatMap((set, i) => {
        const problems = allCloseProblems(set, answers[i] ?? [], tolerance, outputNames);
        return expected.length === 1 ? problems : problems.map((p) => `request ${i + 1}: ${p}`);
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// onnx-light: constant weights, so any input of the declared shape gives output_0.pb.

/** A concrete shape for a declared one: a dynamic batch is 1, other dynamic dimensions 64. */
function concreteShape(shape: readonly (number | string)[] | undefined): number[] {
  return (shape ?? []).map((d, i) => (typeof d === 'number' && d >= 0 ? d : i === 0 ? 1 : 64));
}

function generatedInputs(testCase: CorpusCase, declared: readonly ValueSummary[]): Tensor[] {
  const image = declared.find((i) => (i.shape?.length ?? 0) === 4);
  const imageShape = concreteShape(image?.shape);
  return declared.map((input, index) => {
    const shape = concreteShape(input.shape);
    const datatype = input.datatype ?? 'FP32';
    // Detection exports take the resize factors and image size beside the image (PicoDet, PP-YOLOE).
    if (/scale_factor/i.test(input.name))
      return { name: input.name, datatype: 'FP32', shape, data: new Float32Array(elementCount(shape)).fill(1) };
    if (/im_shape/i.test(input.name)) {
      const data = new Float32Array(elementCount(shape));
      for (let i = 0; i < data.length; i += 2) data.set([imageShape[2] ?? 1, imageShape[3] ?? 1], i);
      return { name: input.name, datatype: 'FP32', shape, data };
    }
    return generatedInput(input.name, datatype, shape, seedOf(`${testCase.category}/${testCase.name}/${index}`));
  });
}

function lightPlan(testCase: CorpusCase, model: Uint8Array): CasePlan {
  const inspection = inspectModel(model);
  const inputs = generatedInputs(testCase, inspection.inputs);
  const expected = [observe(decodeTensorProto(readFileSync(path.join(testCase.dir, 'output_0.pb'))))];
  const shapes = inputs.map((i) => `[${i.shape.join(', ')}]`).join(', ');
  return tensorOraclePlan(
    model,
    inspection.outputs.slice(0, 1).map((o) => o.name),
    [inputs],
    [expected],
    ONNX_BACKEND_TOLERANCE,
    `generated input ${shapes}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// PaddlePaddle: onnxruntime called directly on the same input.

async function paddlePlan(testCase: CorpusCase, model: Uint8Array): Promise<CasePlan> {
  const inspection = inspectModel(model);
  const inputs = generatedInputs(testCase, inspection.inputs);
  const outputNames = inspection.outputs.map((o) => o.name);
  const direct = await runDirectly(model, inputs);
  const shapes = inputs.map((i) => `[${i.shape.join(', ')}]`).join(', ');
  if (!direct.ok) {
    return {
      model,
      outputNames,
      requests: [inputs],
      binary: true,
      bytesInBothForms: false,
      how: `generated input ${shapes}`,
      check: () => [`served, yet onnxruntime called directly fails to ${direct.stage} it: ${direct.error}`],
    };
  }
  return tensorOraclePlan(
    model,
    outputNames,
    [inputs],
    [direct.outputs.map(observe)],
    PADDLE_TOLERANCE,
    `generated input ${shapes}`,
  );
}
