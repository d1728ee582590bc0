/**
 * onnxruntime-node called directly, without any part of the product: the oracle for PaddlePaddle models, and the
 * check that a model refused at registration is one that onnxruntime itself cannot run.
 */
import * as ort from 'onnxruntime-node';
import { onnx } from '../functions/core/onnx/proto.js';
import type { Datatype, Tensor, TensorData } from '../functions/core/types.js';

const ORT_TYPES = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<Datatype, ort.Tensor.Type>;

const DATATYPES = new Map<string, Datatype>(Object.entries(ORT_TYPES).map(([d, t]) => [t, d as Datatype]));

/** What onnxruntime did with the model and the inputs. */
export type DirectRun =
  | { readonly ok: true; readonly outputs: Tensor[] }
  | { readonly ok: false; readonly stage: 'load' | 'run'; readonly error: string };

/** Loads the model as uploaded and runs it once on `inputs`, every output requested, in the graph's order. */
export async function runDirectly(model: Uint8Array, inputs: readonly Tensor[]): Promise<DirectRun> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model);
  } catch (error) {
    return { ok: false, stage: 'load', error: messageOf(error) };
  }
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of inputs) {
      feeds[input.name] = new ort.Tensor(ORT_TYPES[input.datatype], input.data as ort.Tensor.DataType, [...input.shape]);
    }
    const results = await session.run(feeds);
    const outputs = session.outputNames.map((name): Tensor => {
      const value = results[name];
      const datatype = value === undefined ? undefined : DATATYPES.get(value.type);
      if (value === undefined || datatype === undefined) throw new Error(`output "${name}" is not a tensor V2 can carry`);
      return { name, datatype, shape: value.dims.map(Number), data: value.data as TensorData };
    });
    return { ok: true, outputs };
  } catch (error) {
    return { ok: false, stage: 'run', error: messageOf(error) };
  } finally {
    await session.release();
  }
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
}

/**
 * The uploaded model with every `ZipMap` graph output replaced by the ZipMap's input tensor, so that onnxruntime-node
 * can return it: the runner's own minimal rewrite (not the product's), used to ask onnxruntime what it computes for
 * a model whose served answers disagree with the oracle.
 */
export function withZipMapInputsAsOutputs(model: Uint8Array): Uint8Array {
  const proto = onnx.ModelProto.decode(model);
  const graph = proto.graph;
  if (graph === null || graph === undefined) return model;
  const zipMaps = new Map((graph.node ?? []).filter((n) => n.opType === 'ZipMap').map((n) => [n.output?.[0] ?? '', n]));
  let changed = false;
  graph.output = (graph.output ?? []).map((output) => {
    const zipMap = zipMaps.get(output.name ?? '');
    if (zipMap === undefined || output.type?.tensorType) return output;
    changed = true;
    return onnx.ValueInfoProto.create({ name: zipMap.input?.[0] ?? '' });
  });
  if (!changed) return model;
  graph.node = (graph.node ?? []).filter((n) => !(n.opType === 'ZipMap' && zipMaps.has(n.output?.[0] ?? '') && !graph.output?.some((o) => o.name === n.output?.[0])));
  return onnx.ModelProto.encode(proto).finish();
}
