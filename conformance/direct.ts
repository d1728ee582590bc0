/**
 * onnxruntime-node called directly, without any part of the product: the oracle for PaddlePaddle models, and the
 * check that a model refused at registration is one that onnxruntime itself cannot run.
 */
import * as ort from 'onnxruntime-node';
// Only the tensor conversions: the session here is created and run directly, with onnxruntime's defaults.
import { fromOrtTensor, toOrtTensor } from '../functions/adapters/onnxruntime-session.js';
import { onnx } from '../functions/core/onnx/proto.js';
import type { Tensor } from '../functions/core/types.js';

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
      feeds[input.name] = toOrtTensor(input);
    }
    const results = await session.run(feeds);
    const outputs = session.outputNames.map((name): Tensor => {
      const value = results[name];
      if (value === undefined) throw new Error(`onnxruntime returned no output "${name}"`);
      return fromOrtTensor(name, value);
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
  graph.node = (graph.node ?? []).filter(
    (n) =>
      !(
        n.opType === 'ZipMap' &&
        zipMaps.has(n.output?.[0] ?? '') &&
        !graph.output?.some((o) => o.name === n.output?.[0])
      ),
  );
  return onnx.ModelProto.encode(proto).finish();
}
