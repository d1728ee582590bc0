/**
 * Reads an ONNX file into what registration needs (header, graph inputs and outputs, nodes) without decoding the
 * weights: initializers are only scanned for their names, so a 1 GB model costs a pass over its bytes, not a copy.
 */
import { ModelRejectedError } from '../errors.js';
import { onnx, type OnnxTypes } from './proto.js';
import { concatBytes } from '../codec/message.js';
import {
  LENGTH_DELIMITED,
  lengthDelimitedField,
  readFields,
  rebuildMessage,
  scanFields,
  type WireField,
} from './wire.js';

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

/**
 * Attributes whose payload is larger than this are decoded without their values (`ints`, `floats`, `strings`, the
 * data of `t`): protobufjs makes one JavaScript object per int64 (a `Long`), so a 3 MB `shape` of 3M ints would
 * cost about 100 times its bytes. Their bytes stay available through {@link largeAttributePayload}.
 */
export const LARGE_ATTRIBUTE_BYTES = 4096;

/** AttributeProto fields that hold values: floats (7), ints (8), strings (9), tensors (10), sparse_tensors (23). */
const ATTRIBUTE_VALUE_FIELDS: ReadonlySet<number> = new Set([7, 8, 9, 10, 23]);
/** AttributeProto.t (5) and .sparse_tensor (22): a tensor whose values are dropped as the skeleton drops them. */
const ATTRIBUTE_TENSOR_FIELD = 5;
/** TensorProto fields that hold values (as in `skeleton.ts`). */
const TENSOR_VALUE_FIELDS: ReadonlySet<number> = new Set([4, 5, 6, 7, 9, 10, 11]);
const NODE_ATTRIBUTE = 5;

const largePayloads = new WeakMap<OnnxTypes.IAttributeProto, Uint8Array>();

/**
 * The serialized `AttributeProto` of an attribute that {@link readNodes} decoded without its values (over
 * {@link LARGE_ATTRIBUTE_BYTES}), or `undefined` for an attribute decoded whole.
 */
export function largeAttributePayload(attribute: OnnxTypes.IAttributeProto): Uint8Array | undefined {
  return largePayloads.get(attribute);
}

/**
 * The varint bytes of a repeated varint field (`AttributeProto.ints`), packed or not, as one packed payload: the
 * encoding `TensorProto.int64_data` has, so the values move between the two without becoming numbers; and how
 * many values they are.
 */
export function varintsOf(payload: Uint8Array, fieldNumber: number): { bytes: Uint8Array; count: number } {
  const out = new Uint8Array(payload.length);
  let length = 0;
  scanFields(payload, (number, wireType, _start, valueStart, end) => {
    if (number !== fieldNumber || (wireType !== 0 && wireType !== LENGTH_DELIMITED)) return;
    out.set(payload.subarray(valueStart, end), length);
    length += end - valueStart;
  });
  const bytes = out.subarray(0, length);
  let count = 0;
  for (const byte of bytes) if (byte < 0x80) count += 1;
  return { bytes, count };
}

/** A node's payload with its large attributes reduced to their header, and those attributes' full payloads. */
function lightNode(payload: Uint8Array): { light: Uint8Array; large: Map<string, Uint8Array> } {
  const large = new Map<string, Uint8Array>();
  const fields = readFields(payload);
  const replace = new Map<WireField, Uint8Array>();
  for (const field of fields) {
    if (field.number !== NODE_ATTRIBUTE || field.value.length <= LARGE_ATTRIBUTE_BYTES) continue;
    const kept: Uint8Array[] = [];
    scanFields(field.value, (number, wireType, start, valueStart, end) => {
      if (ATTRIBUTE_VALUE_FIELDS.has(number)) return;
      if (number === ATTRIBUTE_TENSOR_FIELD && wireType === LENGTH_DELIMITED) {
        const tensor = field.value.subarray(valueStart, end);
        const tensorFields = readFields(tensor);
        const values = tensorFields.filter((t) => TENSOR_VALUE_FIELDS.has(t.number)).map((t) => [t, null] as const);
        kept.push(lengthDelimitedField(number, rebuildMessage(tensor, tensorFields, new Map(values))));
      } else kept.push(field.value.subarray(start, end));
    });
    const header = concatBytes(kept);
    large.set(onnx.AttributeProto.decode(header).name ?? '', field.value);
    replace.set(field, header);
  }
  return { light: replace.size === 0 ? payload : rebuildMessage(payload, fields, replace), large };
}

/**
 * The graph's nodes, decoded. Attributes are small next to the initializers, except the odd legacy one (a
 * `Reshape` shape of millions of ints): those over {@link LARGE_ATTRIBUTE_BYTES} come without their values, which
 * {@link largeAttributePayload} gives as bytes.
 */
export function readNodes(file: ModelFile): Located<OnnxTypes.NodeProto>[] {
  try {
    return file.graphFields
      .filter((f) => f.number === FIELD.graph.node)
      .map((field) => {
        const { light, large } = lightNode(lengthDelimited(field));
        const message = onnx.NodeProto.decode(light);
        for (const attribute of message.attribute) {
          const payload = large.get(attribute.name ?? '');
          if (payload !== undefined) largePayloads.set(attribute, payload);
        }
        return { field, message };
      });
  } catch (error) {
    throw new ModelRejectedError(
      `The model's graph has a malformed node (${describeParseError(error)}). ${UPLOAD_HINT}`,
      {
        cause: error,
      },
    );
  }
}

/** A source of value names unused in the graph: `fresh('y_one')` is `y_one`, or `y_one_2`, ... when taken. */
export function freshNames(file: ModelFile, nodes: readonly Located<OnnxTypes.NodeProto>[]): (base: string) => string {
  const used = new Set<string>([...file.inputs, ...file.outputs, ...file.valueInfo].map((v) => v.message.name));
  for (const name of file.initializerNames) used.add(name);
  for (const { message } of nodes) for (const name of [...message.input, ...message.output]) used.add(name);
  return (base) => {
    let name = base;
    for (let n = 2; used.has(name); n += 1) name = `${base}_${n}`;
    used.add(name);
    return name;
  };
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
