/**
 * A small typed builder of ONNX models: graph inputs and outputs, initializers from typed arrays, nodes with
 * attributes, opset imports. It makes the example models of `models/` and the models tests need (bad ones included:
 * {@link ModelBuilder.toProto} hands out the message to break before encoding).
 */
import type { Datatype, TensorDataByType } from '../../functions/core/types.js';
import { ONNX_ELEMENT_TYPE, onnx, type Dim, type OnnxTypes } from '../../functions/core/onnx/proto.js';

/** A tensor value: datatype, dims and row-major data in the project's in-memory form. */
export interface TensorValue<D extends Datatype = Datatype> {
  readonly datatype: D;
  readonly dims: readonly number[];
  readonly data: TensorDataByType[D];
}

/** A node attribute, built with {@link attr}. */
export type AttributeValue =
  | { readonly type: 'int'; readonly value: number | bigint }
  | { readonly type: 'ints'; readonly value: readonly (number | bigint)[] }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'tensor'; readonly value: TensorValue };

/**
 * Attribute constructors. ONNX tells ints from floats, which JavaScript numbers do not, hence one per type.
 * @example builder.node('Softmax', ['logits'], ['p'], { axis: attr.int(1) })
 */
export const attr = {
  /** An int64; pass a `bigint` beyond 2^53. */
  int: (value: number | bigint): AttributeValue => ({ type: 'int', value }),
  ints: (value: readonly (number | bigint)[]): AttributeValue => ({ type: 'ints', value }),
  float: (value: number): AttributeValue => ({ type: 'float', value }),
  floats: (value: readonly number[]): AttributeValue => ({ type: 'floats', value }),
  string: (value: string): AttributeValue => ({ type: 'string', value }),
  strings: (value: readonly string[]): AttributeValue => ({ type: 'strings', value }),
  tensor: <D extends Datatype>(value: TensorValue<D>): AttributeValue => ({ type: 'tensor', value }),
} as const;

/**
 * A tensor type. Dims: a size (`>= 0`), a symbolic name (`'N'`), or `-1` for a dynamic dimension without a name.
 */
export function tensorType(datatype: Datatype, dims: readonly Dim[]): OnnxTypes.ITypeProto {
  return {
    tensorType: {
      elemType: ONNX_ELEMENT_TYPE[datatype],
      shape: {
        dim: dims.map((d) => {
          if (typeof d === 'string') return { dimParam: d };
          if (d === -1) return {};
          if (!Number.isInteger(d) || d < 0)
            throw new RangeError(`invalid dimension ${d}: use a size >= 0, -1 or a name`);
          return { dimValue: d };
        }),
      },
    },
  };
}

/** A sequence type, e.g. `sequenceType(tensorType('FP32', [-1]))`. */
export function sequenceType(elemType: OnnxTypes.ITypeProto): OnnxTypes.ITypeProto {
  return { sequenceType: { elemType } };
}

/** A map type, e.g. the `map(string, float)` elements of a ZipMap's output. */
export function mapType(keyType: 'BYTES' | 'INT64', valueType: OnnxTypes.ITypeProto): OnnxTypes.ITypeProto {
  return { mapType: { keyType: ONNX_ELEMENT_TYPE[keyType], valueType } };
}

const TEXT = new TextEncoder();

/** A `TensorProto`: numbers as little-endian `raw_data` (as exporters write them), strings as `string_data`. */
export function tensorProto(name: string, value: TensorValue): OnnxTypes.ITensorProto {
  const elements = value.dims.reduce((product, d) => product * d, 1);
  if (value.data.length !== elements) {
    throw new RangeError(
      `tensor "${name}": dims [${value.dims.join(', ')}] hold ${elements} elements, data has ${value.data.length}`,
    );
  }
  const proto: OnnxTypes.ITensorProto = { name, dims: [...value.dims], dataType: ONNX_ELEMENT_TYPE[value.datatype] };
  if (Array.isArray(value.data)) {
    proto.stringData = value.data.map((s) => TEXT.encode(s));
  } else {
    // Typed arrays are in the platform's byte order; every platform Node and Lambda run on is little-endian.
    const data = value.data as Exclude<typeof value.data, string[]>;
    proto.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return proto;
}

function attributeProto(name: string, value: AttributeValue): OnnxTypes.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (value.type) {
    case 'int':
      return { name, type: AttributeType.INT, i: checkedInt(name, value.value) };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: value.value.map((v) => checkedInt(name, v)) };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: value.value };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: [...value.value] };
    case 'string':
      return { name, type: AttributeType.STRING, s: TEXT.encode(value.value) };
    case 'strings':
      return { name, type: AttributeType.STRINGS, strings: value.value.map((s) => TEXT.encode(s)) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: tensorProto('', value.value) };
  }
}

function checkedInt(name: string, value: number | bigint): number {
  // protobufjs writes int64 fields from numbers or decimal strings; strings carry bigints without rounding.
  if (typeof value === 'bigint') return value.toString() as unknown as number;
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(
      `attribute "${name}": ${value} is not a safe integer (pass a bigint for int64 values beyond 2^53)`,
    );
  }
  return value;
}

/** Options of a {@link ModelBuilder}. */
export interface ModelBuilderOptions {
  /** @default 8 (onnx 1.10 to 1.13; what onnx-proto's schema describes) */
  readonly irVersion?: number;
  /** Operator set per domain (`''` is the default domain). @default { '': 17 } */
  readonly opsets?: Readonly<Record<string, number>>;
  /** @default 'onnx-serverless' */
  readonly producerName?: string;
  /** @default '' */
  readonly producerVersion?: string;
  /** @default 'main' */
  readonly graphName?: string;
  readonly docString?: string;
}

/** Options of one node. */
export interface NodeOptions {
  /** Operator domain, e.g. `'ai.onnx.ml'`. @default '' (the default domain) */
  readonly domain?: string;
  /** @default the op type and a counter, e.g. `MatMul_0` */
  readonly name?: string;
}

/**
 * Builds an ONNX `ModelProto`, one graph, in the order the calls are made (nodes must be added in topological order).
 * @example
 * const bytes = new ModelBuilder()
 *   .input('x', 'FP32', ['N', 4])
 *   .initializer('w', { datatype: 'FP32', dims: [4, 1], data: new Float32Array([1, 2, 3, 4]) })
 *   .node('MatMul', ['x', 'w'], ['y'])
 *   .output('y', 'FP32', ['N', 1])
 *   .toBytes();
 */
export class ModelBuilder {
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly opsets: Map<string, number>;

  public constructor(private readonly options: ModelBuilderOptions = {}) {
    this.opsets = new Map(Object.entries(options.opsets ?? { '': 17 }));
  }

  /** Imports (or changes the version of) an operator set. */
  public opset(domain: string, version: number): this {
    this.opsets.set(domain, version);
    return this;
  }

  /** A graph input: a tensor of `datatype` and `dims`, or any ONNX type (`sequenceType(...)`, ...). */
  public input(name: string, datatype: Datatype, dims: readonly Dim[]): this;
  public input(name: string, type: OnnxTypes.ITypeProto): this;
  public input(name: string, typeOrDatatype: Datatype | OnnxTypes.ITypeProto, dims: readonly Dim[] = []): this {
    this.inputs.push({
      name,
      type: typeof typeOrDatatype === 'string' ? tensorType(typeOrDatatype, dims) : typeOrDatatype,
    });
    return this;
  }

  /** A graph output: a tensor of `datatype` and `dims`, or any ONNX type. */
  public output(name: string, datatype: Datatype, dims: readonly Dim[]): this;
  public output(name: string, type: OnnxTypes.ITypeProto): this;
  public output(name: string, typeOrDatatype: Datatype | OnnxTypes.ITypeProto, dims: readonly Dim[] = []): this {
    this.outputs.push({
      name,
      type: typeof typeOrDatatype === 'string' ? tensorType(typeOrDatatype, dims) : typeOrDatatype,
    });
    return this;
  }

  /** A constant tensor of the graph (weights). */
  public initializer<D extends Datatype>(name: string, value: TensorValue<D>): this {
    this.initializers.push(tensorProto(name, value));
    return this;
  }

  /** A node; `''` in `inputs` skips an optional input. */
  public node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: NodeOptions = {},
  ): this {
    this.nodes.push({
      opType,
      domain: options.domain ?? '',
      name: options.name ?? `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([name, value]) => attributeProto(name, value)),
    });
    return this;
  }

  /** The model as a protobufjs message object, to inspect or to break on purpose before encoding. */
  public toProto(): OnnxTypes.IModelProto {
    return {
      irVersion: this.options.irVersion ?? 8,
      producerName: this.options.producerName ?? 'onnx-serverless',
      producerVersion: this.options.producerVersion ?? '',
      docString: this.options.docString ?? '',
      opsetImport: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      graph: {
        name: this.options.graphName ?? 'main',
        input: [...this.inputs],
        output: [...this.outputs],
        initializer: [...this.initializers],
        node: [...this.nodes],
      },
    };
  }

  /** The serialized `ModelProto`: what `onnxruntime.InferenceSession.create` takes. */
  public toBytes(): Uint8Array {
    return encodeModel(this.toProto());
  }
}

/** Serializes a `ModelProto` message object. */
export function encodeModel(model: OnnxTypes.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
