/**
 * Moves a model's initializers to external data, as `onnx.save_model(..., save_as_external_data=True)` and
 * torch.onnx.export do for large models: each tensor's bytes go to a data file, and the tensor keeps only its
 * `location`, `offset` and `length`. For tests and examples of `.zip` uploads; never shipped.
 */
import type { OnnxTypes } from '../../functions/core/onnx/proto.js';
import { concatBytes } from '../../functions/core/codec/message.js';
import { encodeModel } from './model-builder.js';

/** A model whose weights live in external files. */
export interface ExternalDataModel {
  /** The `.onnx` file (no weights inside). */
  readonly model: Uint8Array;
  /** Data files by `location`. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/**
 * Moves every initializer with `raw_data` of `proto` into the data file `location` (one file, 64-byte aligned like
 * onnx's writer). `entries` overrides the external-data entries written (to break references on purpose).
 */
export function withExternalData(
  proto: OnnxTypes.IModelProto,
  location = 'model.onnx.data',
  entries: (tensor: string, offset: number, length: number) => Record<string, string> = (_t, offset, length) => ({
    location,
    offset: String(offset),
    length: String(length),
  }),
): ExternalDataModel {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const initializer = (proto.graph?.initializer ?? []).map((tensor): OnnxTypes.ITensorProto => {
    const raw = tensor.rawData;
    if (raw === undefined || raw === null || raw.length === 0) return tensor;
    const padding = (64 - (offset % 64)) % 64;
    parts.push(new Uint8Array(padding), raw);
    offset += padding;
    const written = entries(tensor.name ?? '', offset, raw.length);
    offset += raw.length;
    return {
      ...tensor,
      rawData: undefined,
      dataLocation: 1,
      externalData: Object.entries(written).map(([key, value]) => ({ key, value })),
    };
  });
  const model = encodeModel({ ...proto, graph: { ...proto.graph, initializer } });
  return { model, files: new Map([[location, concatBytes(parts)]]) };
}
