/**
 * Integer `Div` and `Mod` guarded against `MIN / -1`. onnxruntime's CPU kernels check integer divisors for zero, not
 * for the one quotient that overflows: `INT32_MIN / -1` (and `INT64_MIN / -1`, and `Mod` of those) executes the
 * processor's division instruction, which raises SIGFPE and kills the process, whatever request or upload fed it.
 * int8 and int16 do not trap (C++ promotes them to int before dividing), so only int32 and int64 are guarded.
 *
 * The guard keeps every other answer exactly: with `s = 1 - 2 * (d == -1)` (1, or -1 where the divisor is -1),
 * `Div(a, d)` becomes `Div(a, d * s) * s` and `Mod(a, d)` becomes `Mod(a, d * s)`. Where `d` is -1 the division is
 * by 1 and the quotient negated: `-MIN` wraps to `MIN` in two's complement, as C, Java, Rust's wrapping ops and
 * numpy define it, and `a mod 1 = a mod -1 = 0`. Elsewhere `s` is 1 and both products are the original values. Only
 * `Equal`, `Cast`, `Add`, `Sub` and `Mul` are used (all in opset 7, the oldest registration serves), no `Where`,
 * which onnxruntime lacks for some integer types.
 */
import type { AppliedRewrite } from '../types.js';
import { FIELD, freshNames, readNodes, type Located, type ModelFile } from './model-file.js';
import { DEFAULT_DOMAINS, int64ToNumber, onnx, type Int64Like, type OnnxTypes } from './proto.js';
import { readFields, rebuildMessage, type WireField } from './wire.js';

const { DataType } = onnx.TensorProto;

/** Element types whose `MIN / -1` traps in onnxruntime's CPU kernels. */
const TRAPPING_TYPES: ReadonlyMap<number, { name: string; bytes: number }> = new Map([
  [DataType.INT32, { name: 'int32', bytes: 4 }],
  [DataType.INT64, { name: 'int64', bytes: 8 }],
]);

/** Operators whose outputs are all bool, or int64, whatever their inputs. */
const BOOL_OUTPUT = new Set('Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Xor IsNaN IsInf'.split(' '));
const INT64_OUTPUT = new Set('Shape Size NonZero ArgMax ArgMin NonMaxSuppression'.split(' '));
/** Operators whose first output has the type of the input at this position (others: of input 0). */
const TYPE_FROM_INPUT: ReadonlyMap<string, number> = new Map([
  ['Where', 1],
  ['OneHot', 2],
  ['CastLike', 1],
  ['QuantizeLinear', 2],
]);
/** Operators whose type the rule "like input 0" would get wrong, and which no rule here covers: left unknown. */
const UNKNOWN_OUTPUT = new Set(
  `If Loop Scan SequenceAt SequenceConstruct SequenceEmpty SequenceInsert SequenceErase SplitToSequence
  ConcatFromSequence Optional OptionalGetElement OptionalHasElement DequantizeLinear DynamicQuantizeLinear
  MatMulInteger ConvInteger QLinearConv QLinearMatMul RandomNormal RandomUniform RandomNormalLike RandomUniformLike
  Multinomial EyeLike ConstantOfShape StringNormalizer TfIdfVectorizer Unique TopK MaxPool Dropout`.split(/\s+/),
);

/** TensorProto.dims (1), data_type (2), name (8): what typing reads of an initializer (never its values). */
const TENSOR_HEADER_FIELDS: ReadonlySet<number> = new Set([1, 2, 8]);

/**
 * The element type of every value the file tells or implies: declared (inputs, outputs, value_info), of
 * initializers, and carried through the nodes in order (Constant, Cast, comparisons, and the many operators whose
 * output has the type of an input).
 */
function elementTypes(file: ModelFile, nodes: readonly Located<OnnxTypes.NodeProto>[]): Map<string, number> {
  const types = new Map<string, number>();
  for (const { message } of [...file.inputs, ...file.valueInfo, ...file.outputs]) {
    const elemType = message.type?.tensorType?.elemType;
    if (elemType) types.set(message.name, elemType);
  }
  for (const field of file.graphFields) {
    if (field.number !== FIELD.graph.initializer) continue;
    const fields = readFields(field.value);
    const drop = new Map(fields.filter((f) => !TENSOR_HEADER_FIELDS.has(f.number)).map((f) => [f, null] as const));
    const tensor = onnx.TensorProto.decode(rebuildMessage(field.value, fields, drop));
    if (tensor.dataType) types.set(tensor.name, tensor.dataType);
  }
  for (const { message: node } of nodes) {
    const type = outputType(node, (name) => types.get(name));
    if (type === undefined) continue;
    for (const output of node.output) if (output !== '' && !types.has(output)) types.set(output, type);
  }
  return types;
}

function outputType(node: OnnxTypes.NodeProto, typeOf: (name: string) => number | undefined): number | undefined {
  if (!DEFAULT_DOMAINS.has(node.domain ?? '')) return undefined;
  const attribute = (name: string) => node.attribute.find((a) => a.name === name);
  const op = node.opType;
  if (op === 'Constant') {
    const value = node.attribute[0];
    if (value?.t) return value.t.dataType ?? undefined;
    if (value?.name === 'value_int' || value?.name === 'value_ints') return DataType.INT64;
    if (value?.name === 'value_float' || value?.name === 'value_floats') return DataType.FLOAT;
    return undefined;
  }
  if (op === 'Cast') {
    const to = attribute('to');
    return to?.i === undefined || to.i === null ? undefined : int64ToNumber(to.i as Int64Like);
  }
  if (BOOL_OUTPUT.has(op)) return DataType.BOOL;
  if (INT64_OUTPUT.has(op)) return DataType.INT64;
  if (UNKNOWN_OUTPUT.has(op)) return undefined;
  return typeOf(node.input[TYPE_FROM_INPUT.get(op) ?? 0] ?? '');
}

/** A `Constant` node holding the scalar `value` of an integer element type. */
function scalarConstant(output: string, elemType: number, bytes: number, value: number): Uint8Array {
  const rawData = new Uint8Array(bytes);
  const view = new DataView(rawData.buffer);
  if (bytes === 8) view.setBigInt64(0, BigInt(value), true);
  else view.setInt32(0, value, true);
  return onnx.NodeProto.encode({
    output: [output],
    name: output,
    opType: 'Constant',
    domain: '',
    attribute: [
      { name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [], dataType: elemType, rawData } },
    ],
  }).finish();
}

function node(opType: string, input: string[], output: string, attribute: OnnxTypes.IAttributeProto[] = []) {
  return onnx.NodeProto.encode({ input, output: [output], name: output, opType, domain: '', attribute }).finish();
}

/** NodeProto.input (1) and .output (2). */
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;

/** The node with new inputs and outputs; every other field (attributes, name, unknown fields) kept byte for byte. */
function withNames(located: Located<OnnxTypes.NodeProto>, inputs: string[], outputs: string[]): Uint8Array {
  const fields = readFields(located.field.value);
  const names = new Map(
    fields.filter((f) => f.number === NODE_INPUT || f.number === NODE_OUTPUT).map((f) => [f, null] as const),
  );
  const text = new TextEncoder();
  return rebuildMessage(located.field.value, fields, names, [
    ...inputs.map((name) => ({ number: NODE_INPUT, value: text.encode(name) })),
    ...outputs.map((name) => ({ number: NODE_OUTPUT, value: text.encode(name) })),
  ]);
}

/** The graph-field edits of {@link guardIntegerDivision}. */
export interface DivisionGuard {
  /** Graph fields (nodes) replaced by several nodes in order. */
  readonly graphReplace: ReadonlyMap<WireField, readonly Uint8Array[]>;
  readonly applied: AppliedRewrite;
}

/**
 * The edits that guard every default-domain int32/int64 `Div` and `Mod` of the graph against `MIN / -1` (see the
 * module comment), or `undefined` when the graph has none. Nodes inside subgraphs (`If`, `Loop`, `Scan` bodies) are
 * not reached, nor a `Div`/`Mod` whose element type the file does not tell (an input produced by an operator of
 * another domain, with no `value_info`); the rewrite's detail counts those.
 */
export function guardIntegerDivision(file: ModelFile): DivisionGuard | undefined {
  const nodes = readNodes(file);
  const divisions = nodes.filter(
    ({ message: n }) => (n.opType === 'Div' || n.opType === 'Mod') && DEFAULT_DOMAINS.has(n.domain ?? ''),
  );
  if (divisions.length === 0) return undefined;
  const types = elementTypes(file, nodes);
  const fresh = freshNames(file, nodes);
  const graphReplace = new Map<WireField, readonly Uint8Array[]>();
  const counts = new Map<string, number>();
  let untyped = 0;
  for (const located of divisions) {
    const division = located.message;
    const [a = '', d = ''] = division.input;
    const [y = ''] = division.output;
    const elemType = types.get(a) ?? types.get(d) ?? types.get(y);
    if (elemType === undefined) untyped += 1;
    const trapping = elemType === undefined ? undefined : TRAPPING_TYPES.get(elemType);
    if (trapping === undefined || elemType === undefined || d === '' || y === '') continue;
    const base = `${y}_guard`;
    const minusOne = fresh(`${base}_minus_one`);
    const one = fresh(`${base}_one`);
    const isMinusOne = fresh(`${base}_is_minus_one`);
    const flag = fresh(`${base}_flag`);
    const twice = fresh(`${base}_twice`);
    const sign = fresh(`${base}_sign`);
    const divisor = fresh(`${base}_divisor`);
    const toType = { name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: elemType };
    const guard = [
      scalarConstant(minusOne, elemType, trapping.bytes, -1),
      scalarConstant(one, elemType, trapping.bytes, 1),
      node('Equal', [d, minusOne], isMinusOne),
      node('Cast', [isMinusOne], flag, [toType]),
      node('Add', [flag, flag], twice),
      node('Sub', [one, twice], sign),
      node('Mul', [d, sign], divisor),
    ];
    if (division.opType === 'Div') {
      const quotient = fresh(`${base}_quotient`);
      guard.push(withNames(located, [a, divisor], [quotient]), node('Mul', [quotient, sign], y));
    } else {
      guard.push(withNames(located, [a, divisor], [y]));
    }
    graphReplace.set(located.field, guard);
    const key = `${division.opType}(${trapping.name})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (graphReplace.size === 0) return undefined;
  const guarded = [...counts].map(([key, count]) => `${count} ${key}`).join(', ');
  return {
    graphReplace,
    applied: {
      kind: 'guard-integer-division',
      output: '',
      detail:
        `${guarded} guarded against MIN / -1, which stops onnxruntime's process (SIGFPE): a divisor of -1 divides ` +
        "by 1 and negates, so MIN / -1 gives MIN (two's complement wrap) and MIN mod -1 gives 0; every other " +
        `input gives what it gave.${untyped > 0 ? ` ${untyped} Div/Mod node(s) whose element type the file does not tell were left as they are.` : ''}`,
    },
  };
}
