/**
 * What registration may want to know about an upload before it spends an onnxruntime session on it.
 */
import type { Datatype } from '../types.js';
import { readModelFile } from './model-file.js';
import {
  datatypeOfElementType,
  describeType,
  int64ToNumber,
  tensorDims,
  typeKind,
  type Dim,
  type Int64Like,
  type OnnxTypes,
  type TypeKind,
} from './proto.js';

/** A graph input or output as declared in the file. */
export interface ValueSummary {
  readonly name: string;
  readonly kind: TypeKind;
  /** ONNX's notation, e.g. `tensor(float)` or `seq(map(string,tensor(float)))`. */
  readonly type: string;
  /** The V2 datatype, for tensors whose element type V2 can carry. */
  readonly datatype?: Datatype;
  /** Tensor dims (a size, a symbolic name, or -1); absent when the rank is unknown. */
  readonly shape?: readonly Dim[];
}

/** The header and the interface of an ONNX model. */
export interface ModelInspection {
  readonly irVersion: number;
  readonly opsetImports: readonly { readonly domain: string; readonly version: number }[];
  readonly producerName: string;
  readonly producerVersion: string;
  /** Inputs a request must feed (those without an initializer), as onnxruntime lists them. */
  readonly inputs: readonly ValueSummary[];
  readonly outputs: readonly ValueSummary[];
  /**
   * Inputs that also have an initializer (IR < 4 exporters list every weight as an input): optional overrides that
   * onnxruntime does not list among the session's inputs.
   */
  readonly initializerInputs: readonly string[];
}

/**
 * Reads the header and graph interface of an ONNX file without onnxruntime and without decoding weights.
 * Throws `ModelRejectedError` when the bytes are not an ONNX model.
 */
export function inspectModel(bytes: Uint8Array): ModelInspection {
  const file = readModelFile(bytes);
  const { header } = file;
  const inputs = file.inputs.map((i) => i.message);
  return {
    irVersion: int64ToNumber(header.irVersion as Int64Like),
    opsetImports: header.opsetImport.map((o) => ({
      domain: o.domain ?? '',
      version: int64ToNumber(o.version as Int64Like),
    })),
    producerName: header.producerName,
    producerVersion: header.producerVersion,
    inputs: inputs.filter((i) => !file.initializerNames.has(i.name)).map(summarize),
    outputs: file.outputs.map((o) => summarize(o.message)),
    initializerInputs: inputs.filter((i) => file.initializerNames.has(i.name)).map((i) => i.name),
  };
}

/** The summary of one declared value. */
export function summarize(value: OnnxTypes.IValueInfoProto): ValueSummary {
  const kind = typeKind(value.type);
  const datatype = kind === 'tensor' ? datatypeOfElementType(value.type?.tensorType?.elemType ?? 0) : undefined;
  const shape = kind === 'tensor' ? tensorDims(value.type) : undefined;
  return {
    name: value.name ?? '',
    kind,
    type: describeType(value.type),
    ...(datatype ? { datatype } : {}),
    ...(shape ? { shape } : {}),
  };
}
