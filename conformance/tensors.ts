/**
 * Tensors as the conformance runner handles them: from the corpus's JSON form, cut into per-row requests, joined
 * back, turned into plain values for comparison, and generated deterministically for cases without inputs.
 */
import {
  createTensorData,
  elementCount,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from '../functions/core/codec/index.js';
import { createPrng } from '../tools/onnx/prng.js';
import type { Datatype, Tensor, TensorData } from '../functions/core/types.js';

/** A tensor in the corpus's JSON form (`case.json`): KServe V2 JSON with flat, row-major data. */
export interface JsonTensor {
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: readonly (number | string | boolean)[];
}

/** A comparable element: numbers (64-bit integers too, which the corpus keeps small), or strings. */
export type Value = number | string;

/** `"NaN"`, `"Infinity"`, `"-Infinity"` and numbers, as numbers. */
export function toNumber(value: number | string | boolean): number {
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return Number(value);
}

/** A corpus JSON tensor as a core tensor of the given name, data and shape. */
export function fromJson(name: string, json: JsonTensor, shape: readonly number[] = json.shape): Tensor {
  const data = createTensorData(json.datatype, json.data.length);
  json.data.forEach((value, i) => {
    if (Array.isArray(data)) data[i] = String(value);
    else if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(value);
    else (data as Float64Array)[i] = typeof value === 'boolean' ? Number(value) : toNumber(value);
  });
  return { name, datatype: json.datatype, shape: [...shape], data };
}

/** Rows `[start, start + count)` along the first dimension, as a new tensor with shape `[count, ...rest]`. */
export function sliceRows(tensor: Tensor, start: number, count: number, shape?: readonly number[]): Tensor {
  const rowSize = elementCount(tensor.shape.slice(1));
  const data = tensor.data.slice(start * rowSize, (start + count) * rowSize) as TensorData;
  return { ...tensor, shape: shape ?? [count, ...tensor.shape.slice(1)], data };
}

/** A tensor reduced to what comparisons need: its datatype, shape and plain element values. */
export interface Observed {
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly values: readonly Value[];
}

/** A tensor's elements as plain values: FP16 bits decoded, 64-bit integers as numbers, BOOL as 0 and 1. */
export function observe(tensor: Tensor): Observed {
  const { data } = tensor;
  let values: Value[];
  if (Array.isArray(data)) values = [...data];
  else if (tensor.datatype === 'FP16') values = Array.from(data as Uint16Array, float16BitsToFloat32);
  else values = Array.from(data as ArrayLike<number | bigint>, Number);
  return { datatype: tensor.datatype, shape: tensor.shape, values };
}

/** Per-request answers joined along the first dimension, as the corpus README says for one-row requests. */
export function joinRows(parts: readonly Observed[]): Observed {
  const [first] = parts;
  if (first === undefined) throw new Error('nothing to join');
  if (parts.length === 1) return first;
  const rows = parts.reduce((sum, p) => sum + (p.shape[0] ?? 1), 0);
  return { datatype: first.datatype, shape: [rows, ...first.shape.slice(1)], values: parts.flatMap((p) => p.values) };
}

/** What a generated input holds: image-like inputs get values in [0, 1), others small integers. */
export function generatedInput(name: string, datatype: Datatype, shape: readonly number[], seed: number): Tensor {
  const count = elementCount(shape);
  const random = createPrng(seed);
  const data = createTensorData(datatype, count);
  for (let i = 0; i < count; i += 1) {
    if (Array.isArray(data)) data[i] = `s${Math.floor(random() * 1000)}`;
    else if (data instanceof BigInt64Array || data instanceof BigUint64Array)
      data[i] = BigInt(Math.floor(random() * 4));
    else if (datatype === 'BOOL') (data as Uint8Array)[i] = random() < 0.5 ? 0 : 1;
    else if (datatype === 'FP32' || datatype === 'FP64') (data as Float64Array)[i] = random();
    else if (datatype === 'FP16') (data as Uint16Array)[i] = float32ToFloat16Bits(random());
    else (data as Uint8Array)[i] = Math.floor(random() * 4);
  }
  return { name, datatype, shape: [...shape], data };
}
