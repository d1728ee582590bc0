/**
 * Reads an ONNX file into what registration needs (header, graph inputs and outputs, nodes) without decoding the
 * weights: initializers are only scanned for their names, so a 1 GB model costs a pass over its bytes, not a copy.
 */
import { ModelRejectedError } from '../errors.js';
import { onnx, type OnnxTypes } from './proto.js';
import { LENGTH_DELIMITED, readFields, rebuildMessage, type WireField } from './wire.js';

/** Field numbers of `onnx.proto` used at the wire level. */
export const FIELD = {
  model: { graph: 7, opsetImport: 8 },
  graph: { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 },
  tensor: { name: 8, externalData: 13 },
} as const;

/** A decoded sub-message and the wire field it came from (so that an edit can replace exactly that field). */
export interface Located<T> {
  readonly field: WireField;
  readonly message: T;
}

/** An ONNX file, split into the parts the core reads and edits. */
export interface ModelFile {
  readonly bytes: Uint8Array;
  /** Top-level fields of the `ModelProto`. */
  readonly fields: readonly WireField[];
  /** The `ModelProto` without its graph: IR version, opset imports, producer. */
  readonly header: OnnxTypes.ModelProto;
  readonly graphField: WireField;
  /** Top-level fields of the `GraphProto`. */
  readonly graphFields: readonly WireField[];
  readonly inputs: readonly Located<OnnxTypes.ValueInfoProto>[];
  readonly outputs: readonly Located<OnnxTypes.ValueInfoProto>[];
  readonly valueInfo: readonly Located<OnnxTypes.ValueInfoProto>[];
  /** Names of the graph's constants: inputs with these names have a default value and need not be fed. */
  readonly initializerNames: ReadonlySet<string>;
  /** Initializers whose data lives in a separate file (`external_data`), which an upload of one file lacks. */
  readonly externalInitializers: readonly string[];
}

const UPLOAD_HINT =
  'Upload the binary .onnx file your exporter wrote (torch.onnx.export, skl2onnx, tf2onnx, paddle2onnx, ...).';

/** Splits an ONNX file; throws {@link ModelRejectedError} when it is not one. */
export function readModelFile(bytes: Uint8Array): ModelFile {
  if (bytes.length === 0) throw new ModelRejectedError(`The model file is empty (0 bytes). ${UPLOAD_HINT}`);
  try {
    const fields = readFields(bytes);
    const graphs = fields.filter((f) => f.number === FIELD.model.graph);
    const graphField = graphs[0];
    if (graphField === undefined || graphField.wireType !== LENGTH_DELIMITED || graphs.length > 1) {
      throw new ModelRejectedError(
        `The file is not an ONNX model: it holds ${graphs.length === 0 ? 'no' : 'no well-formed'} graph ` +
          `(ModelProto.graph). ${UPLOAD_HINT}`,
      );
    }
    const header = onnx.ModelProto.decode(rebuildMessage(bytes, fields, new Map([[graphField, null]])));
    const graphFields = readFields(graphField.value);
    const decodeValueInfos = (number: number): Located<OnnxTypes.ValueInfoProto>[] =>
      graphFields
        .filter((f) => f.number === number)
        .map((field) => ({ field, message: onnx.ValueInfoProto.decode(lengthDelimited(field)) }));
    const initializerNames = new Set<string>();
    const externalInitializers: string[] = [];
    for (const field of graphFields) {
      if (field.number === FIELD.graph.initializer) {
        const tensorFields = readFields(lengthDelimited(field));
        const nameField = tensorFields.findLast((f) => f.number === FIELD.tensor.name);
        const name = nameField ? new TextDecoder().decode(nameField.value) : '';
        initializerNames.add(name);
        if (tensorFields.some((f) => f.number === FIELD.tensor.externalData)) externalInitializers.push(name);
      } else if (field.number === FIELD.graph.sparseInitializer) {
        const name = onnx.SparseTensorProto.decode(lengthDelimited(field)).values?.name;
        if (name) initializerNames.add(name);
      }
    }
    return {
      bytes,
      fields,
      header,
      graphField,
      graphFields,
      inputs: decodeValueInfos(FIELD.graph.input),
      outputs: decodeValueInfos(FIELD.graph.output),
      valueInfo: decodeValueInfos(FIELD.graph.valueInfo),
      initializerNames,
      externalInitializers,
    };
  } catch (error) {
    if (error instanceof ModelRejectedError) throw error;
    throw new ModelRejectedError(
      `The file is not an ONNX model: it does not parse as an ONNX ModelProto (${describeParseError(error)}). ` +
        UPLOAD_HINT,
      { cause: error },
    );
  }
}

/** The graph's nodes, decoded (attributes included; they are small next to the initializers). */
export function readNodes(file: ModelFile): Located<OnnxTypes.NodeProto>[] {
  try {
    return file.graphFields
      .filter((f) => f.number === FIELD.graph.node)
      .map((field) => ({ field, message: onnx.NodeProto.decode(lengthDelimited(field)) }));
  } catch (error) {
    throw new ModelRejectedError(
      `The model's graph has a malformed node (${describeParseError(error)}). ${UPLOAD_HINT}`,
      {
        cause: error,
      },
    );
  }
}

function lengthDelimited(field: WireField): Uint8Array {
  if (field.wireType !== LENGTH_DELIMITED) throw new Error(`field ${field.number} is not a message`);
  return field.value;
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // protobufjs says e.g. "index out of range: 9 + 10 > 12"; say it in words a user can map to a truncated file.
  return /index out of range/.test(message) ? 'truncated or corrupt protobuf data' : message;
}
