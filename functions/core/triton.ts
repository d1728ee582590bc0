/**
 * Triton's extensions that describe and post-process a model: the model configuration (`GET .../config`), derived
 * from the version's metadata, and classification (an output's `classification` parameter, the Python client's
 * `class_count`). Both follow the same batching rule, {@link batchesFirstDimension}, so a client reading the
 * configuration predicts the classification's shape.
 */
import { float16BitsToFloat32 } from './codec/datatypes.js';
import type { Limits } from './catalog.js';
import { BadRequestError } from './errors.js';
import type { Datatype, ModelMetadata, Tensor, TensorSpec } from './types.js';

/** Triton's `data_type` names of the model configuration (BYTES is `TYPE_STRING` there). */
export const TRITON_DATA_TYPES = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BYTES: 'TYPE_STRING',
} as const satisfies Record<Datatype, string>;

/**
 * True when every input and output has a dynamic first dimension: then, as Triton's onnxruntime backend does when
 * it completes a configuration, that dimension is the batch (`max_batch_size` > 0 and `dims` without it).
 */
export function batchesFirstDimension(metadata: Pick<ModelMetadata, 'inputs' | 'outputs'>): boolean {
  const tensors = [...metadata.inputs, ...metadata.outputs];
  return tensors.length > 0 && tensors.every((t) => t.shape.length > 0 && (t.shape[0] as number) < 0);
}

/** Largest value of Triton's `max_batch_size` (an int32 in its configuration). */
const MAX_BATCH_SIZE = 2 ** 31 - 1;

function configTensor(spec: TensorSpec, batched: boolean) {
  const dims = batched ? spec.shape.slice(1) : [...spec.shape];
  const tensor = { name: spec.name, data_type: TRITON_DATA_TYPES[spec.datatype], dims };
  // Triton's configuration cannot say "batch only" with empty dims: it writes dims [1] reshaped to [].
  return batched && dims.length === 0 ? { ...tensor, dims: [1], reshape: { shape: [] } } : tensor;
}

/**
 * The model configuration in the JSON shape Triton returns for `GET /v2/models/<m>[/versions/<v>]/config`.
 * `max_batch_size` is the most rows one request may carry under `limits.maxElements` (the server batches nothing
 * itself; a dynamic dimension after the first counts as 1), or 0 when the first dimension is not a batch.
 */
export function modelConfig(metadata: ModelMetadata, limits: Pick<Limits, 'maxElements'>) {
  const batched = batchesFirstDimension(metadata);
  let maxBatchSize = 0;
  if (batched) {
    const perRow = metadata.inputs.reduce(
      (sum, spec) => sum + spec.shape.slice(1).reduce((product, dim) => product * Math.max(dim, 1), 1),
      0,
    );
    maxBatchSize = Math.max(1, Math.min(MAX_BATCH_SIZE, Math.floor(limits.maxElements / Math.max(perRow, 1))));
  }
  return {
    name: metadata.name,
    platform: metadata.platform,
    backend: 'onnxruntime',
    version_policy: { all: {} },
    max_batch_size: maxBatchSize,
    input: metadata.inputs.map((spec) => configTensor(spec, batched)),
    output: metadata.outputs.map((spec) => configTensor(spec, batched)),
    default_model_filename: 'model.onnx',
    parameters: {},
  };
}

/**
 * `value` as C's `printf("%f")` prints it (what Triton's `std::to_string` gives): six decimals, ties to even on the
 * exact binary value, `inf`/`nan` for non-finite values.
 */
export function formatFixed6(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (Object.is(value, -0)) return '-0.000000';
  // value * 1e6 is exactly halfway between two integers only when value is an odd multiple of 2^-7; then C
  // rounds to even where toFixed rounds away from zero.
  const sevenths = value * 128;
  if (Number.isInteger(sevenths) && sevenths % 2 !== 0 && Math.abs(sevenths) < 2 ** 40) {
    let micros = (sevenths * 15625 - 1) / 2;
    if (micros % 2 !== 0) micros += 1;
    const digits = Math.abs(micros).toString().padStart(7, '0');
    return `${value < 0 ? '-' : ''}${digits.slice(0, -6)}.${digits.slice(-6)}`;
  }
  if (Math.abs(value) >= 1e21) return `${BigInt(value)}.000000`;
  return value.toFixed(6);
}

/** Element `i` of a numeric tensor as a number (FP16 decoded), with the text Triton prints for it. */
function scoreText(tensor: Tensor, i: number): { readonly value: number; readonly text: string } {
  const element = tensor.data[i] as number | bigint;
  if (typeof element === 'bigint') return { value: Number(element), text: element.toString() };
  if (tensor.datatype === 'FP16') {
    const value = float16BitsToFloat32(element);
    return { value, text: formatFixed6(value) };
  }
  if (tensor.datatype === 'FP32' || tensor.datatype === 'FP64') return { value: element, text: formatFixed6(element) };
  return { value: element, text: String(element) };
}

/**
 * Triton's classification of one output: per row (when the model batches its first dimension) or over the whole
 * tensor, the `classCount` largest elements (fewer if there are fewer), largest first (ties: lower index first), as
 * BYTES `"score:index"`, or `"score:index:label"` when the model has class labels for that output.
 * @throws BadRequestError for a BYTES or BOOL output, which has no scores.
 */
export function classify(
  tensor: Tensor,
  classCount: number,
  batched: boolean,
  labels?: readonly (string | number)[],
): Tensor {
  if (tensor.datatype === 'BYTES' || tensor.datatype === 'BOOL') {
    throw new BadRequestError(
      `output "${tensor.name}" is ${tensor.datatype}, which has no scores to classify; ask for "classification" ` +
        'only on numeric outputs',
    );
  }
  const total = tensor.data.length;
  const rows = batched && tensor.shape.length > 0 ? (tensor.shape[0] as number) : 1;
  const perRow = rows === 0 ? 0 : total / rows;
  const k = Math.min(classCount, perRow);
  const classes: string[] = [];
  for (let row = 0; row < rows; row++) {
    const start = row * perRow;
    const scores = Array.from({ length: perRow }, (_, j) => ({ index: j, ...scoreText(tensor, start + j) }));
    // Array.prototype.sort is stable: equal scores keep the lower index first.
    scores.sort((a, b) => (b.value > a.value ? 1 : b.value < a.value ? -1 : 0));
    for (const { index, text } of scores.slice(0, k)) {
      const label = labels?.[index];
      classes.push(label === undefined ? `${text}:${index}` : `${text}:${index}:${label}`);
    }
  }
  return {
    name: tensor.name,
    datatype: 'BYTES',
    shape: batched && tensor.shape.length > 0 ? [rows, k] : [k],
    data: classes,
  };
}
