/**
 * Upgrades models written for default-domain opsets that onnxruntime no longer implements (below 7: the PyTorch
 * 0.2-0.4, Caffe2 and early CNTK exports of 2017-2018) to opset 7, the oldest onnxruntime runs.
 *
 * Raising a model's opset import changes which version of each operator its nodes mean: a node resolves to the
 * newest version of its operator not above the opset. Most operators kept their meaning from opset 1 to 7; for the
 * others one small adapter per version step rewrites the node so that it computes the same thing under the new
 * version, as the ONNX version converter (onnx/version_converter, adapters/*.h) does: legacy `broadcast`/`axis`
 * attributes become numpy-style broadcasting (an `Unsqueeze` where the old axis aligned the operand elsewhere),
 * attributes that were removed (`consumed_inputs`, `is_test`, `output_sequence`) are dropped where their value
 * meant inference, and changed forms (`Reshape`'s shape attribute, `Cast`'s type name, `Upsample`'s scales) are
 * spelled the new way. A step without an adapter, or a node an adapter cannot prove equivalent, refuses the model
 * with the operator and version: nothing is guessed.
 */
import { concatBytes } from '../codec/message.js';
import { ModelRejectedError } from '../errors.js';
import type { AppliedRewrite } from '../types.js';
import { FIELD, freshNames, largeAttributePayload, varintsOf, type Located, type ModelFile } from './model-file.js';
import { DEFAULT_DOMAINS, int64ToNumber, onnx, tensorDims, type Int64Like, type OnnxTypes } from './proto.js';
import { lengthDelimitedField, readFields, rebuildMessage, scanFields, type WireField } from './wire.js';

/** The oldest default-domain opset onnxruntime implements ("upgrade your model to opset 7 or higher"). */
export const ONNXRUNTIME_MIN_OPSET = 7;

/**
 * The versions (since-version) of every default-domain operator up to opset 7, from ONNX's docs/Changelog.md, and
 * the experimental operators of those years (onnx 1.0-1.2 `defs/experiments`, version 1, unchanged before they were
 * made standard or removed after opset 7; onnxruntime implements several, e.g. ImageScaler, Crop, ScaledTanh).
 * An operator absent from this table did not exist in opsets 1-7, so a model below opset 7 that uses it is refused.
 */
const SCHEMA_VERSIONS: ReadonlyMap<string, readonly number[]> = new Map(
  `Abs 1 6|Acos 7|Add 1 6 7|And 1 7|ArgMax 1|ArgMin 1|Asin 7|Atan 7|AveragePool 1 7|BatchNormalization 1 6 7|
  Cast 1 6|Ceil 1 6|Clip 1 6|Concat 1 4|Constant 1|Conv 1|ConvTranspose 1|Cos 7|DepthToSpace 1|Div 1 6 7|
  Dropout 1 6 7|Elu 1 6|Equal 1 7|Exp 1 6|Flatten 1|Floor 1 6|GRU 1 3 7|Gather 1|Gemm 1 6 7|GlobalAveragePool 1|
  GlobalLpPool 1 2|GlobalMaxPool 1|Greater 1 7|HardSigmoid 1 6|Hardmax 1|Identity 1|If 1|InstanceNormalization 1 6|
  LRN 1|LSTM 1 7|LeakyRelu 1 6|Less 1 7|Log 1 6|LogSoftmax 1|Loop 1|LpNormalization 1|LpPool 1 2|MatMul 1|
  Max 1 6|MaxPool 1|MaxRoiPool 1|Mean 1 6|Min 1 6|Mul 1 6 7|Multinomial 7|Neg 1 6|Not 1|Or 1 7|PRelu 1 6 7|Pad 1 2|
  Pow 1 7|RNN 1 7|RandomNormal 1|RandomNormalLike 1|RandomUniform 1|RandomUniformLike 1|Reciprocal 1 6|
  ReduceLogSum 1|ReduceLogSumExp 1|ReduceMax 1|ReduceMean 1|ReduceMin 1|ReduceProd 1|ReduceSum 1|ReduceSumSquare 1|
  Relu 1 6|Reshape 1 5|Selu 1 6|Shape 1|Sigmoid 1 6|Sin 7|Size 1|Slice 1|Softmax 1|Softplus 1|Softsign 1|
  SpaceToDepth 1|Split 1 2|Sqrt 1 6|Squeeze 1|Sub 1 6 7|Sum 1 6|Tan 7|Tanh 1 6|Tile 1 6|TopK 1|Transpose 1|
  Unsqueeze 1|Upsample 1 7|Xor 1 7|ATen 1|Affine 1|ConstantFill 1|Crop 1|GRUUnit 1|GivenTensorFill 1|ImageScaler 1|
  MeanVarianceNormalization 1|ParametricSoftplus 1|Scale 1|ScaledTanh 1|ThresholdedRelu 1`
    .split('|')
    .map((entry) => {
      const [op = '', ...versions] = entry.trim().split(/\s+/);
      return [op, versions.map(Number)] as const;
    }),
);

/** What an adapter sees of one node and the graph around it. */
interface AdapterContext {
  readonly node: OnnxTypes.NodeProto;
  /** The rank of a value when the file declares or implies it, else `undefined`. */
  rank(name: string): number | undefined;
  /** The element count of a value whose shape the file declares in full (initializers, typed inputs), else `undefined`. */
  elements(name: string): number | undefined;
  /** A value name unused in the graph, derived from `base`. */
  freshName(base: string): string;
  /** The node's label in messages: its operator, version step and name or first output. */
  readonly label: string;
  /** The model's default-domain opset. */
  readonly from: number;
}

/**
 * What an adapter does to its node (`undefined`: nothing, the new version means the same for it); an adapter that
 * cannot adapt the node throws {@link ModelRejectedError}.
 */
interface NodeEdit {
  /** Attributes dropped (by name). */
  readonly remove?: readonly string[];
  /** Attributes added (replacing any of the same name). */
  readonly set?: readonly OnnxTypes.IAttributeProto[];
  /** Node inputs renamed, by position; a position at the end adds an input. */
  readonly inputs?: ReadonlyMap<number, string>;
  /** Nodes placed just before this one (they feed its new inputs); serialized when built from raw bytes. */
  readonly before?: readonly (OnnxTypes.INodeProto | Uint8Array)[];
  /** What changed, in words, for the version's `rewrites` (grouped per operator and step). */
  readonly note: string;
}

type Adapter = (context: AdapterContext) => NodeEdit | undefined;

const AttributeType = onnx.AttributeProto.AttributeType;

function attribute(node: OnnxTypes.NodeProto, name: string): OnnxTypes.IAttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/**
 * The values of an attribute an adapter rewrites: refused when the attribute was read without its values (over
 * `LARGE_ATTRIBUTE_BYTES`), which only `Reshape`'s shape, handled as bytes, may be in practice.
 */
function smallAttribute(context: AdapterContext, name: string): OnnxTypes.IAttributeProto | undefined {
  const found = attribute(context.node, name);
  if (found !== undefined && largeAttributePayload(found) !== undefined)
    refuse(context, `its "${name}" attribute holds more values than an adapter converts one by one`);
  return found;
}

/** AttributeProto.ints. */
const ATTRIBUTE_INTS_FIELD = 8;

/** The serialized form of an attribute: its original bytes when it was read without its values. */
function attributeBytes(found: OnnxTypes.IAttributeProto): Uint8Array {
  return largeAttributePayload(found) ?? onnx.AttributeProto.encode(found).finish();
}

function intAttribute(node: OnnxTypes.NodeProto, name: string): number | undefined {
  const found = attribute(node, name);
  return found === undefined ? undefined : int64ToNumber(found.i as Int64Like);
}

function intsAttribute(name: string, values: readonly number[]): OnnxTypes.IAttributeProto {
  return { name, type: AttributeType.INTS, ints: [...values] };
}

/** The refusal of a model below opset 7: `what` says which node cannot be upgraded and why. */
function cannotUpgrade(from: number | string, what: string): ModelRejectedError {
  const to = ONNXRUNTIME_MIN_OPSET;
  return new ModelRejectedError(
    `The model's default-domain opset ${from} is below ${to}, the oldest onnxruntime implements, and ${what}. ` +
      `Re-export the model with a current converter (opset ${to} or later), or convert it with ` +
      `onnx.version_converter.convert_version(model, ${to}).`,
  );
}

function refuse(context: AdapterContext, why: string): never {
  throw cannotUpgrade(context.from, `its ${context.label} cannot be upgraded: ${why}`);
}

/** Every operator dropped `consumed_inputs` (a legacy in-place hint with no effect on values) in opset 6. */
const removeConsumedInputs: Adapter = ({ node }) =>
  attribute(node, 'consumed_inputs') === undefined
    ? undefined
    : { remove: ['consumed_inputs'], note: 'legacy consumed_inputs attribute dropped (no effect on values)' };

/** An operator whose new version computes the same for every node of the old one (only types or docs changed). */
const compatible: Adapter = () => undefined;

/**
 * Legacy broadcasting (Add, Sub, Mul, Div, Pow, And, Or, Xor, Equal, Greater, Less before opset 7): with
 * `broadcast=1`, B is broadcast to A's shape, aligned at A's dimension `axis`, or at A's trailing dimensions without
 * `axis`. Numpy-style broadcasting aligns trailing dimensions, so B keeps its meaning when it already ends where A
 * ends; otherwise B gets trailing dimensions of 1 (an `Unsqueeze`). Without `broadcast`, the shapes were equal.
 */
const broadcastToNumpy: Adapter = (context) => {
  const { node } = context;
  const broadcast = intAttribute(node, 'broadcast') ?? 0;
  const axis = intAttribute(node, 'axis');
  const remove = ['broadcast', 'axis'].filter((name) => attribute(node, name) !== undefined);
  if (broadcast === 0 || axis === undefined) {
    return remove.length === 0
      ? undefined
      : { remove, note: 'legacy broadcast/axis attributes replaced by numpy-style broadcasting (same alignment)' };
  }
  const [a = '', b = ''] = node.input;
  const rankA = context.rank(a);
  const rankB = context.rank(b);
  if (rankA === undefined || rankB === undefined) {
    refuse(
      context,
      `it broadcasts "${b}" from axis ${axis}, and the rank of ${rankA === undefined ? `"${a}"` : `"${b}"`} is not declared in the file`,
    );
  }
  const start = axis < 0 ? axis + rankA : axis;
  const trailing = rankA - start - rankB;
  if (start < 0 || trailing < 0)
    refuse(context, `axis ${axis} does not fit a rank-${rankB} "${b}" into a rank-${rankA} "${a}"`);
  if (trailing === 0)
    return { remove, note: 'legacy broadcast/axis attributes replaced by numpy-style broadcasting (same alignment)' };
  const unsqueezed = context.freshName(`${b}_unsqueezed`);
  return {
    remove,
    inputs: new Map([[1, unsqueezed]]),
    before: [unsqueeze(b, unsqueezed, rankB, trailing)],
    note: `legacy broadcast from axis replaced by numpy-style broadcasting; B gets trailing dimensions of 1 (Unsqueeze inserted)`,
  };
};

function unsqueeze(input: string, output: string, from: number, count: number): OnnxTypes.INodeProto {
  return {
    input: [input],
    output: [output],
    name: output,
    opType: 'Unsqueeze',
    domain: '',
    attribute: [
      intsAttribute(
        'axes',
        Array.from({ length: count }, (_, i) => from + i),
      ),
    ],
  };
}

/** Gemm 7 broadcasts C unidirectionally to (M, N) always; the legacy `broadcast` flag is gone. */
const gemmDropBroadcast: Adapter = ({ node }) =>
  attribute(node, 'broadcast') === undefined
    ? undefined
    : { remove: ['broadcast'], note: 'legacy broadcast attribute dropped (C is broadcast to (M, N) by numpy rules)' };

/**
 * PRelu before 7 applied a slope of size 1 everywhere and a 1-D slope per channel (dimension 1, the Caffe2 and
 * PyTorch convention); PRelu 7 broadcasts the slope numpy-style, which aligns a 1-D slope with the last dimension.
 * A 1-D slope of X with rank 3 or more therefore gets trailing dimensions of 1.
 */
const preluSlopePerChannel: Adapter = (context) => {
  const [x = '', slope = ''] = context.node.input;
  const rankX = context.rank(x);
  const rankSlope = context.rank(slope);
  if (rankX === undefined || rankSlope === undefined) {
    refuse(
      context,
      `the rank of ${rankX === undefined ? `"${x}"` : `slope "${slope}"`} is not declared in the file, so its channel alignment cannot be kept`,
    );
  }
  if (rankSlope === 0 || context.elements(slope) === 1 || rankX <= 2 || rankSlope === rankX) return undefined;
  if (rankSlope !== 1)
    refuse(context, `its rank-${rankSlope} slope has no unambiguous alignment with a rank-${rankX} input`);
  const unsqueezed = context.freshName(`${slope}_per_channel`);
  return {
    inputs: new Map([[1, unsqueezed]]),
    before: [unsqueeze(slope, unsqueezed, 1, rankX - 2)],
    note: 'per-channel slope kept on dimension 1 under numpy-style broadcasting (Unsqueeze inserted)',
  };
};

/**
 * `is_test` is gone in opset 7, where BatchNormalization and Dropout compute inference. A node that asked for
 * training explicitly (`is_test=0`) would compute something else, so it is refused, as ONNX's converter does.
 */
const dropIsTest: Adapter = (context) => {
  const isTest = intAttribute(context.node, 'is_test');
  if (isTest === undefined) return undefined;
  if (isTest === 0) refuse(context, 'is_test=0 asks for training mode, which opset 7 cannot express for inference');
  return { remove: ['is_test'], note: 'is_test=1 dropped (opset 7 computes inference)' };
};

/** RNN, GRU and LSTM dropped `output_sequence`: Y is produced whenever the node names it. */
const dropOutputSequence: Adapter = ({ node }) =>
  attribute(node, 'output_sequence') === undefined
    ? undefined
    : { remove: ['output_sequence'], note: 'legacy output_sequence attribute dropped (Y is produced when named)' };

/** Concat 1 defaulted `axis` to 1; Concat 4 requires it. */
const concatAxis: Adapter = ({ node }) =>
  attribute(node, 'axis') === undefined
    ? { set: [{ name: 'axis', type: AttributeType.INT, i: 1 }], note: 'axis=1 made explicit (the opset-1 default)' }
    : undefined;

/** Pad 2 renamed `paddings` to `pads` (same layout: all begins, then all ends). */
const padRename: Adapter = (context) => {
  const paddings = smallAttribute(context, 'paddings');
  if (paddings === undefined) return undefined;
  return {
    remove: ['paddings'],
    set: [
      intsAttribute(
        'pads',
        (paddings.ints ?? []).map((v) => int64ToNumber(v as Int64Like)),
      ),
    ],
    note: 'paddings attribute renamed pads',
  };
};

/** Split 1 could take the split sizes as a second input; Split 2 takes them as an attribute only. */
const splitSizesAttribute: Adapter = (context) => {
  if ((context.node.input[1] ?? '') !== '')
    refuse(context, 'it reads its split sizes from a second input, which Split 2 does not have');
  return removeConsumedInputs(context);
};

/** LpPool and GlobalLpPool 2 take `p` as an int instead of a float. */
const lpPoolIntegerP: Adapter = (context) => {
  const p = attribute(context.node, 'p');
  if (p === undefined) return undefined;
  const value = p.f ?? 2;
  if (!Number.isInteger(value)) refuse(context, `p=${value} is not an integer, which LpPool 2 requires`);
  return { remove: ['p'], set: [{ name: 'p', type: AttributeType.INT, i: value }], note: 'p given as an int' };
};

/**
 * The type names Cast 1 took (its `to` was a string), each the name of an ONNX `TensorProto.DataType`; Cast 6 takes
 * that enum's number.
 */
const CAST_1_TYPE_NAMES: ReadonlySet<string> = new Set([
  'FLOAT',
  'UINT8',
  'INT8',
  'UINT16',
  'INT16',
  'INT32',
  'INT64',
  'STRING',
  'BOOL',
  'FLOAT16',
  'DOUBLE',
  'UINT32',
  'UINT64',
]);

/** Cast 6 names its target type by enum instead of by string. */
const castTypeEnum: Adapter = (context) => {
  const to = attribute(context.node, 'to');
  if (to === undefined || to.type === AttributeType.INT) return removeConsumedInputs(context);
  const name = new TextDecoder().decode(to.s).toUpperCase();
  const type = CAST_1_TYPE_NAMES.has(name)
    ? onnx.TensorProto.DataType[name as keyof typeof onnx.TensorProto.DataType]
    : undefined;
  if (type === undefined) refuse(context, `its target type "${name}" is not one Cast 6 knows`);
  return {
    remove: ['to', 'consumed_inputs'],
    set: [{ name: 'to', type: AttributeType.INT, i: type }],
    note: 'target type given as an enum instead of a name',
  };
};

/**
 * Reshape 5 reads the new shape from a second input instead of the `shape` attribute: a Constant feeds it. The
 * attribute's varints become the Constant's packed `int64_data` as they are (the same encoding), so a shape of
 * millions of values never becomes millions of numbers.
 */
const reshapeShapeInput: Adapter = (context) => {
  const { node } = context;
  const shape = attribute(node, 'shape');
  if ((node.input[1] ?? '') !== '') return removeConsumedInputs(context);
  if (shape === undefined) refuse(context, 'it has neither a shape attribute nor a shape input');
  const values = varintsOf(attributeBytes(shape), ATTRIBUTE_INTS_FIELD);
  const name = context.freshName(`${node.input[0] ?? 'reshape'}_shape`);
  const tensor = concatBytes([
    onnx.TensorProto.encode({ name, dims: [values.count], dataType: onnx.TensorProto.DataType.INT64 }).finish(),
    lengthDelimitedField(TENSOR_INT64_DATA_FIELD, values.bytes),
  ]);
  const value = concatBytes([
    onnx.AttributeProto.encode({ name: 'value', type: AttributeType.TENSOR }).finish(),
    lengthDelimitedField(ATTRIBUTE_TENSOR_FIELD, tensor),
  ]);
  const constant = concatBytes([
    onnx.NodeProto.encode({ input: [], output: [name], name, opType: 'Constant', domain: '' }).finish(),
    lengthDelimitedField(NODE_FIELD.attribute, value),
  ]);
  return {
    remove: ['shape', 'consumed_inputs'],
    inputs: new Map([[1, name]]),
    before: [constant],
    note: 'shape attribute given as a Constant input',
  };
};

/** TensorProto.int64_data (packed) and AttributeProto.t. */
const TENSOR_INT64_DATA_FIELD = 7;
const ATTRIBUTE_TENSOR_FIELD = 5;

/**
 * Upsample 7 takes one scale per dimension (`scales`) where Upsample 1 took `height_scale` and `width_scale` of NCHW
 * (nearest mode only).
 */
const upsampleScales: Adapter = (context) => {
  const { node } = context;
  const height = attribute(node, 'height_scale')?.f;
  const width = attribute(node, 'width_scale')?.f;
  if (height === undefined || height === null || width === undefined || width === null)
    refuse(context, 'it lacks height_scale or width_scale');
  const modeBytes = attribute(node, 'mode')?.s;
  const mode = modeBytes ? new TextDecoder().decode(modeBytes) : 'nearest';
  // Upsample 1's "bilinear" has no documented pixel alignment, and Upsample 7 spells its own mode "linear".
  if (mode !== 'nearest')
    refuse(context, `mode "${mode}" has no exact counterpart in Upsample 7 (only "nearest" is converted)`);
  const rank = context.rank(node.input[0] ?? '');
  if (rank !== undefined && rank !== 4)
    refuse(context, `its input has rank ${rank}, while Upsample 1 scaled NCHW (rank 4) only`);
  return {
    remove: ['height_scale', 'width_scale'],
    set: [{ name: 'scales', type: AttributeType.FLOATS, floats: [1, 1, height, width] }],
    note: 'height_scale/width_scale given as scales [1, 1, height, width]',
  };
};

const CONSUMED_INPUTS_OPS =
  'Abs Add BatchNormalization Ceil Clip Div Dropout Elu Exp Floor HardSigmoid InstanceNormalization LeakyRelu Log Max Mean Min Mul Neg PRelu Reciprocal Relu Selu Sigmoid Sqrt Sub Sum Tanh';
const LEGACY_BROADCAST_OPS = 'Add Sub Mul Div Pow And Or Xor Equal Greater Less';

/** One adapter per operator and version step (`"Op from->to"`); a step without one refuses the model. */
const ADAPTERS: ReadonlyMap<string, Adapter> = new Map([
  ...CONSUMED_INPUTS_OPS.split(' ').map((op) => [`${op} 1->6`, removeConsumedInputs] as const),
  ...LEGACY_BROADCAST_OPS.split(' ').map(
    (op) => [`${op} ${['Add', 'Sub', 'Mul', 'Div'].includes(op) ? 6 : 1}->7`, broadcastToNumpy] as const,
  ),
  ['AveragePool 1->7', compatible],
  ['BatchNormalization 6->7', dropIsTest],
  ['Dropout 6->7', dropIsTest],
  ['Gemm 1->6', compatible],
  ['Gemm 6->7', gemmDropBroadcast],
  ['PRelu 6->7', preluSlopePerChannel],
  ['GRU 1->3', compatible],
  ['GRU 3->7', dropOutputSequence],
  ['LSTM 1->7', dropOutputSequence],
  ['RNN 1->7', dropOutputSequence],
  ['Concat 1->4', concatAxis],
  ['Pad 1->2', padRename],
  ['Split 1->2', splitSizesAttribute],
  ['LpPool 1->2', lpPoolIntegerP],
  ['GlobalLpPool 1->2', lpPoolIntegerP],
  ['Cast 1->6', castTypeEnum],
  ['Reshape 1->5', reshapeShapeInput],
  ['Upsample 1->7', upsampleScales],
]);

/** The operators and version steps {@link upgradeOpset} adapts, for documentation and tests. */
export const ADAPTED_STEPS: readonly string[] = [...ADAPTERS.keys()];

/** The default-domain opset the model imports, or `undefined` when it imports none. */
export function defaultOpsetOf(file: ModelFile): number | undefined {
  const entry = file.header.opsetImport.find((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
  return entry === undefined ? undefined : int64ToNumber(entry.version as Int64Like);
}

/** The field edits of {@link upgradeOpset}. */
export interface OpsetUpgrade {
  /** Graph fields (nodes) to replace: by one node, or by several nodes in order. */
  readonly graphReplace: ReadonlyMap<WireField, Uint8Array | readonly Uint8Array[]>;
  /** The model's default-domain `opset_import` field and its new payload. */
  readonly opsetField: WireField;
  readonly opsetImport: Uint8Array;
  readonly rewrites: readonly AppliedRewrite[];
}

/**
 * The edits that raise a model's default-domain opset to {@link ONNXRUNTIME_MIN_OPSET}, or `undefined` when it
 * already is at least that. Throws `ModelRejectedError` naming the operator and version when a node cannot be
 * upgraded.
 */
export function upgradeOpset(
  file: ModelFile,
  nodes: readonly Located<OnnxTypes.NodeProto>[],
): OpsetUpgrade | undefined {
  const from = defaultOpsetOf(file);
  if (from === undefined || from >= ONNXRUNTIME_MIN_OPSET) return undefined;
  const opsetField = file.fields.find(
    (f) =>
      f.number === FIELD.model.opsetImport && DEFAULT_DOMAINS.has(onnx.OperatorSetIdProto.decode(f.value).domain ?? ''),
  );
  if (opsetField === undefined) return undefined;
  const to = ONNXRUNTIME_MIN_OPSET;

  const freshName = freshNames(file, nodes);
  const { ranks, elements } = declaredShapes(file, nodes);

  const graphReplace = new Map<WireField, Uint8Array | readonly Uint8Array[]>();
  const notes = new Map<string, number>();
  for (const located of nodes) {
    const node = located.message;
    if (!DEFAULT_DOMAINS.has(node.domain ?? '')) continue;
    const versions = SCHEMA_VERSIONS.get(node.opType);
    const where = node.name ? `"${node.name}"` : `producing "${node.output[0] ?? ''}"`;
    const current = versions?.filter((v) => v <= from).at(-1);
    if (versions === undefined || current === undefined) {
      throw cannotUpgrade(
        from,
        `its node ${where} uses ${node.opType}, which opset ${from} of the ONNX standard does not define ` +
          '(nor its experimental operators), so it cannot be upgraded',
      );
    }
    if (node.attribute.some((a) => a.g || (a.graphs ?? []).length > 0)) {
      throw cannotUpgrade(
        from,
        `its node ${where} (${node.opType}) carries subgraphs, which the upgrade does not convert`,
      );
    }
    const steps = versions.filter((v) => v >= current && v <= to);
    let edited = node;
    const before: (OnnxTypes.INodeProto | Uint8Array)[] = [];
    // Attribute edits over all steps: names whose original field goes, and the attributes added in their place.
    const dropped = new Set<string>();
    const added = new Map<string, OnnxTypes.IAttributeProto>();
    for (let i = 1; i < steps.length; i += 1) {
      const step = `${node.opType} ${steps[i - 1]}->${steps[i]}`;
      const context: AdapterContext = {
        node: edited,
        rank: (name) => ranks.get(name),
        elements: (name) => elements.get(name),
        freshName,
        from,
        label: `node ${where} (${node.opType}, version ${steps[i - 1]} to ${steps[i]})`,
      };
      const adapter = ADAPTERS.get(step);
      if (adapter === undefined) {
        throw cannotUpgrade(
          from,
          `its node ${where} uses ${node.opType}(${steps[i - 1]}), whose meaning changed in opset ${steps[i]} in a ` +
            'way this server does not convert',
        );
      }
      const edit = adapter(context);
      if (edit === undefined) continue;
      edited = applyEdit(edited, edit);
      before.push(...(edit.before ?? []));
      for (const name of edit.remove ?? []) {
        dropped.add(name);
        added.delete(name);
      }
      for (const set of edit.set ?? []) {
        dropped.add(set.name ?? '');
        added.set(set.name ?? '', set);
      }
      const key = `${node.opType}(${steps[i - 1]}→${steps[i]}): ${edit.note}`;
      notes.set(key, (notes.get(key) ?? 0) + 1);
    }
    if (edited === node) continue;
    const bytes = encodeEdited(located, edited.input, dropped, [...added.values()]);
    const encoded = before.map((n) => (n instanceof Uint8Array ? n : onnx.NodeProto.encode(n).finish()));
    graphReplace.set(located.field, before.length === 0 ? bytes : [...encoded, bytes]);
  }

  const rewrites: AppliedRewrite[] = [
    {
      kind: 'upgrade-opset',
      output: '',
      detail:
        `Default-domain opset ${from} raised to ${to}, the oldest onnxruntime implements; ` +
        (notes.size === 0
          ? 'no operator of the graph changed meaning.'
          : `${notes.size} kind(s) of node adapted as below.`),
    },
    ...[...notes].map(([note, count]) => ({
      kind: 'upgrade-opset',
      output: '',
      detail: `${note} (${count} node${count === 1 ? '' : 's'})`,
    })),
  ];
  return {
    graphReplace,
    opsetField,
    opsetImport: withVersion(opsetField.value, to),
    rewrites,
  };
}

/** OperatorSetIdProto.version. */
const OPSET_VERSION_FIELD = 2;

/** An `OperatorSetIdProto` payload with its version replaced, every other byte kept. */
function withVersion(payload: Uint8Array, version: number): Uint8Array {
  const fields = readFields(payload);
  const others = rebuildMessage(
    payload,
    fields,
    new Map(fields.filter((f) => f.number === OPSET_VERSION_FIELD).map((f) => [f, null])),
  );
  return concatBytes([others, onnx.OperatorSetIdProto.encode({ version }).finish()]);
}

/**
 * The node after an edit, as later adapters see it (a shallow copy: the decoded original is left as it was, and
 * attributes read without their values stay the same objects, so their bytes can still be found).
 */
function applyEdit(node: OnnxTypes.NodeProto, edit: NodeEdit): OnnxTypes.NodeProto {
  const dropped = new Set([...(edit.remove ?? []), ...(edit.set ?? []).map((a) => a.name ?? '')]);
  const copy = onnx.NodeProto.create({
    ...node,
    input: [...node.input],
    attribute: [
      ...node.attribute.filter((a) => !dropped.has(a.name ?? '')),
      ...(edit.set ?? []).map((a) => onnx.AttributeProto.fromObject(a)),
    ],
  });
  for (const [index, name] of edit.inputs ?? []) {
    while (copy.input.length < index) copy.input.push('');
    copy.input[index] = name;
  }
  return copy;
}

/** AttributeProto.name. */
const ATTRIBUTE_NAME_FIELD = 1;

/** The name of a serialized attribute, read without decoding its values. */
function attributeNameOf(payload: Uint8Array): string {
  let name = '';
  scanFields(payload, (number, wireType, _start, valueStart, end) => {
    if (number === ATTRIBUTE_NAME_FIELD && wireType === 2)
      name = new TextDecoder().decode(payload.subarray(valueStart, end));
  });
  return name;
}

/**
 * The edited node at the wire level: its inputs replaced, the attributes named in `dropped` removed and `added`
 * appended; every other field (name, doc string, other attributes, fields onnx-proto does not know) kept byte for
 * byte.
 */
function encodeEdited(
  located: Located<OnnxTypes.NodeProto>,
  inputs: readonly string[],
  dropped: ReadonlySet<string>,
  added: readonly OnnxTypes.IAttributeProto[],
): Uint8Array {
  const fields = readFields(located.field.value);
  const replaced = new Map<WireField, null>();
  for (const field of fields) {
    if (field.number === NODE_FIELD.input) replaced.set(field, null);
    else if (field.number === NODE_FIELD.attribute && dropped.has(attributeNameOf(field.value)))
      replaced.set(field, null);
  }
  // Appended after the kept fields: protobuf readers accept fields in any order, and repeated ones in theirs.
  const inputFields = inputs.map((name) => ({ number: NODE_FIELD.input, value: new TextEncoder().encode(name) }));
  const attributes = added.map((a) => ({
    number: NODE_FIELD.attribute,
    value: onnx.AttributeProto.encode(a).finish(),
  }));
  return rebuildMessage(located.field.value, fields, replaced, [...inputFields, ...attributes]);
}

/** NodeProto field numbers. */
const NODE_FIELD = { input: 1, attribute: 5 } as const;

/** Operators whose first output has the rank of their first input. */
const SAME_RANK = new Set(
  `Abs Ceil Clip Elu Exp Floor HardSigmoid InstanceNormalization LeakyRelu Log Neg Reciprocal Relu Selu Sigmoid Sqrt
  Tanh Softmax LogSoftmax Hardmax Softplus Softsign Dropout BatchNormalization LRN Conv ConvTranspose MaxPool
  AveragePool GlobalAveragePool GlobalMaxPool GlobalLpPool LpPool PRelu Identity Cast Transpose Pad Upsample
  DepthToSpace SpaceToDepth Not LpNormalization Slice Tile Concat Split Add Sub Mul Div Pow And Or Xor Equal Greater
  Less`.split(/\s+/),
);

/**
 * Ranks of the graph's values: declared (inputs, outputs, value_info), of initializers and Constant nodes, and
 * carried through the nodes whose output rank follows from their inputs' (legacy binary operators give A's shape);
 * element counts where the file gives every dimension.
 */
function declaredShapes(
  file: ModelFile,
  nodes: readonly Located<OnnxTypes.NodeProto>[],
): { ranks: Map<string, number>; elements: Map<string, number> } {
  const ranks = new Map<string, number>();
  const elements = new Map<string, number>();
  const record = (name: string, dims: readonly (number | string)[]) => {
    ranks.set(name, dims.length);
    if (dims.every((d) => typeof d === 'number' && d >= 0))
      elements.set(
        name,
        (dims as number[]).reduce((a, b) => a * b, 1),
      );
  };
  for (const { message } of [...file.inputs, ...file.valueInfo, ...file.outputs]) {
    const dims = tensorDims(message.type);
    if (dims !== undefined) record(message.name, dims);
  }
  for (const field of file.graphFields) {
    if (field.number !== FIELD.graph.initializer) continue;
    const tensorFields = readFields(field.value);
    const name = new TextDecoder().decode(
      tensorFields.findLast((f) => f.number === FIELD.tensor.name)?.value ?? new Uint8Array(),
    );
    record(name, tensorDimsOf(field.value, tensorFields));
  }
  for (const { message: node } of nodes) {
    const rank = outputRank(node, (name) => ranks.get(name));
    if (rank === undefined) continue;
    for (const [i, output] of node.output.entries())
      if ((i === 0 || node.opType === 'Split') && !ranks.has(output)) ranks.set(output, rank);
    const constant = node.opType === 'Constant' ? attribute(node, 'value')?.t?.dims : undefined;
    if (constant && node.output[0] !== undefined)
      record(
        node.output[0],
        constant.map((d) => int64ToNumber(d as Int64Like)),
      );
  }
  return { ranks, elements };
}

/** TensorProto.dims. */
const TENSOR_DIMS_FIELD = 1;

/** The dims of a serialized TensorProto, decoded from its dims fields alone (its data is not copied). */
function tensorDimsOf(payload: Uint8Array, tensorFields: readonly WireField[]): number[] {
  const others = new Map(tensorFields.filter((f) => f.number !== TENSOR_DIMS_FIELD).map((f) => [f, null] as const));
  return onnx.TensorProto.decode(rebuildMessage(payload, tensorFields, others)).dims.map((d) =>
    int64ToNumber(d as Int64Like),
  );
}

function outputRank(node: OnnxTypes.NodeProto, rank: (name: string) => number | undefined): number | undefined {
  if (!DEFAULT_DOMAINS.has(node.domain ?? '')) return undefined;
  const first = rank(node.input[0] ?? '');
  const ints = (name: string) => {
    const found = attribute(node, name);
    if (found === undefined) return undefined;
    const payload = largeAttributePayload(found);
    return payload === undefined ? found.ints?.length : varintsOf(payload, ATTRIBUTE_INTS_FIELD).count;
  };
  const keepdims = intAttribute(node, 'keepdims') ?? 1;
  switch (node.opType) {
    case 'Constant':
      return attribute(node, 'value')?.t?.dims?.length;
    case 'Gemm':
    case 'Flatten':
      return 2;
    case 'Shape':
      return 1;
    case 'Size':
      return 0;
    case 'MatMul': {
      const second = rank(node.input[1] ?? '');
      return first !== undefined && second !== undefined && first >= 2 && second >= 2
        ? Math.max(first, second)
        : undefined;
    }
    case 'Max':
    case 'Min':
    case 'Mean':
    case 'Sum': {
      const all = node.input.map(rank);
      return all.every((r): r is number => r !== undefined) ? Math.max(...all) : undefined;
    }
    case 'Reshape':
      return ints('shape');
    case 'Unsqueeze':
      return first === undefined ? undefined : first + (ints('axes') ?? 0);
    case 'Squeeze':
      return first === undefined || ints('axes') === undefined ? undefined : first - (ints('axes') ?? 0);
    case 'Gather': {
      const indices = rank(node.input[1] ?? '');
      return first === undefined || indices === undefined ? undefined : first + indices - 1;
    }
    case 'ArgMax':
    case 'ArgMin':
      return first === undefined ? undefined : keepdims ? first : first - 1;
    default:
      if (node.opType.startsWith('Reduce')) {
        if (first === undefined) return undefined;
        if (keepdims) return first;
        const axes = ints('axes');
        return axes === undefined || axes === 0 ? 0 : first - axes;
      }
      return SAME_RANK.has(node.opType) ? first : undefined;
  }
}
