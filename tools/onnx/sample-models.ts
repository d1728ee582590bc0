/**
 * Models for tests and benchmarks of every part of the project: one per datatype, one that fails at run time, a
 * scikit-learn-style classifier ending in ZipMap, and one with a chosen amount of weights.
 */
import type { Datatype } from '../../functions/core/types.js';
import {
  attr,
  encodeModel,
  mapType,
  type AttributeValue,
  ModelBuilder,
  sequenceType,
  tensorType,
} from './model-builder.js';
import { createPrng, uniformFloat32 } from './prng.js';
import { onnx, type Dim } from '../../functions/core/onnx/proto.js';

/**
 * `output = Identity(input)` for a tensor of `datatype`: the smallest model that loads and runs for each type.
 * @example buildIdentityModel('BYTES') // input BYTES ['N'] -> output BYTES ['N']
 */
export function buildIdentityModel(datatype: Datatype, dims: readonly Dim[] = ['N']): Uint8Array {
  return new ModelBuilder({ graphName: `identity_${datatype.toLowerCase()}` })
    .input('input', datatype, dims)
    .node('Identity', ['input'], ['output'])
    .output('output', datatype, dims)
    .toBytes();
}

/**
 * A model that loads but fails on every run: `y = Gather(x, [1e9])` on FP32 `x` `['N']` (onnxruntime: "indices
 * element out of data bounds"), as long as `x` has fewer than a billion elements.
 */
export function buildFailingAtRunModel(): Uint8Array {
  return new ModelBuilder({ graphName: 'fails_at_run' })
    .input('x', 'FP32', ['N'])
    .initializer('index', { datatype: 'INT64', dims: [1], data: new BigInt64Array([1_000_000_000n]) })
    .node('Gather', ['x', 'index'], ['y'], { axis: attr.int(0) })
    .output('y', 'FP32', [1])
    .toBytes();
}

/** Options of {@link buildZipMapClassifier}. */
export interface ZipMapClassifierOptions {
  /** Class labels: strings or int64s, as scikit-learn's `classes_`. */
  readonly labels: readonly string[] | readonly (number | bigint)[];
  /** Features per row. @default 4 */
  readonly features?: number;
  /**
   * Import the default domain as skl2onnx does; `false` imports `ai.onnx.ml` only, as onnxmltools 1.3 did.
   * @default true
   */
  readonly defaultDomain?: boolean;
  /** Seed of the random coefficients. @default 7 */
  readonly seed?: number;
}

/** A classifier shaped like skl2onnx's default export, and the coefficients it computes with. */
export interface ZipMapClassifier {
  readonly bytes: Uint8Array;
  /** `[classes, features]`, row-major. */
  readonly coefficients: Float32Array;
  /** `[classes]`. */
  readonly intercepts: Float32Array;
}

/**
 * A linear classifier exported the way skl2onnx does by default: FP32 `float_input` `['N', F]` -> `output_label`
 * `['N']` (BYTES or INT64) and `output_probability`: `seq(map(string|int64, float))` through a `ZipMap`; the
 * probabilities are `softmax(x · coefficientsᵀ + intercepts)`.
 */
export function buildZipMapClassifier(options: ZipMapClassifierOptions): ZipMapClassifier {
  const features = options.features ?? 4;
  const classes = options.labels.length;
  const random = createPrng(options.seed ?? 7);
  const coefficients = uniformFloat32(random, classes * features, 1);
  const intercepts = uniformFloat32(random, classes, 1);
  const stringLabels = typeof options.labels[0] === 'string';
  const labels: Record<string, AttributeValue> = stringLabels
    ? { classlabels_strings: attr.strings(options.labels as readonly string[]) }
    : { classlabels_int64s: attr.ints(options.labels as readonly (number | bigint)[]) };
  const builder = new ModelBuilder({
    producerName: 'skl2onnx',
    opsets: options.defaultDomain === false ? { 'ai.onnx.ml': 1 } : { '': 13, 'ai.onnx.ml': 1 },
    graphName: 'zipmap_classifier',
  });
  const bytes = builder
    .input('float_input', 'FP32', ['N', features])
    .node(
      'LinearClassifier',
      ['float_input'],
      ['label', 'probability_tensor'],
      {
        coefficients: attr.floats([...coefficients]),
        intercepts: attr.floats([...intercepts]),
        post_transform: attr.string('SOFTMAX'),
        // LinearClassifier names its int labels classlabels_ints; ZipMap names them classlabels_int64s.
        ...(stringLabels ? labels : { classlabels_ints: attr.ints(options.labels as readonly (number | bigint)[]) }),
      },
      { domain: 'ai.onnx.ml', name: 'LinearClassifier' },
    )
    .node('ZipMap', ['probability_tensor'], ['output_probability'], labels, { domain: 'ai.onnx.ml', name: 'ZipMap' })
    .node('Identity', ['label'], ['output_label'], {}, { name: 'label_identity' })
    .output('output_label', stringLabels ? 'BYTES' : 'INT64', ['N'])
    .output('output_probability', sequenceType(mapType(stringLabels ? 'BYTES' : 'INT64', tensorType('FP32', []))))
    .toBytes();
  return { bytes, coefficients, intercepts };
}

/**
 * A model with about `weightBytes` bytes of FP32 weights, for memory benchmarks: FP32 `x` `['N', 256]` -> MatMul
 * `[256, H]` -> Relu -> MatMul `[H, 16]` -> FP32 `y` `['N', 16]`, H chosen to reach the size. The same arguments
 * always give the same bytes.
 * @example buildLargeModel(100 * 1024 * 1024) // ~100 MB of weights
 */
export function buildLargeModel(weightBytes: number, seed = 11): Uint8Array {
  const inputs = 256;
  const outputs = 16;
  const hidden = Math.max(1, Math.round(weightBytes / 4 / (inputs + outputs)));
  const random = createPrng(seed);
  // Scaled so that outputs stay finite and of order 1 for inputs of order 1.
  const w1 = uniformFloat32(random, inputs * hidden, Math.sqrt(3 / inputs));
  const w2 = uniformFloat32(random, hidden * outputs, Math.sqrt(3 / hidden));
  return new ModelBuilder({ graphName: 'large' })
    .input('x', 'FP32', ['N', inputs])
    .initializer('w1', { datatype: 'FP32', dims: [inputs, hidden], data: w1 })
    .initializer('w2', { datatype: 'FP32', dims: [hidden, outputs], data: w2 })
    .node('MatMul', ['x', 'w1'], ['h_pre'])
    .node('Relu', ['h_pre'], ['h'])
    .node('MatMul', ['h', 'w2'], ['y'])
    .output('y', 'FP32', ['N', outputs])
    .toBytes();
}

/**
 * `y = x · [w, w, w, w] + b`: FP32 `x` `['N', 4]` to FP32 `y` `['N', 1]`. Different `w`/`b` give different files
 * (so different versions), and answers a test can compute: `y = w * sum(row) + b`.
 */
export function buildScaledLinearModel(w: number, b = 0): Uint8Array {
  return new ModelBuilder({ graphName: 'linear' })
    .input('x', 'FP32', ['N', 4])
    .initializer('weights', { datatype: 'FP32', dims: [4, 1], data: new Float32Array([w, w, w, w]) })
    .initializer('bias', { datatype: 'FP32', dims: [1], data: new Float32Array([b]) })
    .node('MatMul', ['x', 'weights'], ['xw'])
    .node('Add', ['xw', 'bias'], ['y'])
    .output('y', 'FP32', ['N', 1])
    .toBytes();
}

/**
 * {@link buildScaledLinearModel}'s `y = x · [w, w, w, w] + b` that fails on some inputs, as a bad new version does
 * on part of real traffic: it looks up `table[int(x[:, 0])]` (a `Gather` over `tableSize` ones) and multiplies the
 * answer by it, so rows whose first feature is in `[0, tableSize)` get the linear answer and a row whose first
 * feature is `tableSize` or more makes onnxruntime refuse the request ("indices element out of data bounds").
 * @example buildPartlyFailingLinearModel(1, 8) // fails on x[i][0] = 8 or 9, answers x[i][0] = 0..7
 */
export function buildPartlyFailingLinearModel(w: number, tableSize: number, b = 0): Uint8Array {
  return new ModelBuilder({ graphName: 'partly_failing_linear' })
    .input('x', 'FP32', ['N', 4])
    .initializer('weights', { datatype: 'FP32', dims: [4, 1], data: new Float32Array([w, w, w, w]) })
    .initializer('bias', { datatype: 'FP32', dims: [1], data: new Float32Array([b]) })
    .initializer('table', { datatype: 'FP32', dims: [tableSize, 1], data: new Float32Array(tableSize).fill(1) })
    .initializer('first', { datatype: 'INT64', dims: [], data: new BigInt64Array([0n]) })
    .node('MatMul', ['x', 'weights'], ['xw'])
    .node('Add', ['xw', 'bias'], ['linear'])
    .node('Gather', ['x', 'first'], ['column'], { axis: attr.int(1) })
    .node('Cast', ['column'], ['index'], { to: attr.int(onnx.TensorProto.DataType.INT64) })
    .node('Gather', ['table', 'index'], ['factor'], { axis: attr.int(0) })
    .node('Mul', ['linear', 'factor'], ['y'])
    .output('y', 'FP32', ['N', 1])
    .toBytes();
}

/**
 * `y = Loop(trips, true, x)`: a graph whose inference takes as long as `trips` says. `trips` is an INT64 scalar
 * input (the request chooses) or a fixed count; the body keeps `x` (`Identity`) or doubles it (`Add`).
 */
export function buildLoopModel(options: { trips: 'input' | bigint; body: 'Identity' | 'Add' }): Uint8Array {
  const outer = new ModelBuilder({ graphName: options.trips === 'input' ? 'spin' : 'endless' });
  if (options.trips === 'input') outer.input('trips', 'INT64', []);
  outer.input('x', 'FP32', [1]);
  if (options.trips !== 'input')
    outer.initializer('trips', { datatype: 'INT64', dims: [], data: new BigInt64Array([options.trips]) });
  const proto = outer
    .initializer('keep_going', { datatype: 'BOOL', dims: [], data: new Uint8Array([1]) })
    .node('Loop', ['trips', 'keep_going', 'x'], ['y'])
    .output('y', 'FP32', [1])
    .toProto();
  const body = new ModelBuilder({ graphName: 'body' })
    .input('i', 'INT64', [])
    .input('cond_in', 'BOOL', [])
    .input('x_in', 'FP32', [1])
    .node('Identity', ['cond_in'], ['cond_out'])
    .node(options.body, options.body === 'Add' ? ['x_in', 'x_in'] : ['x_in'], ['x_out'])
    .output('cond_out', 'BOOL', [])
    .output('x_out', 'FP32', [1])
    .toProto().graph!;
  proto.graph!.node![0]!.attribute = [{ name: 'body', type: onnx.AttributeProto.AttributeType.GRAPH, g: body }];
  return encodeModel(proto);
}

/**
 * An image model with a second input, as detectors that also take the original size or a scale factor are:
 * `y = images × gain`, FP32 `images` `[batch, 3, height, width]` (`batch` 'N' for a dynamic batch) and FP32 `gain`
 * `[1]`. The answer is the preprocessed tensor times `gain`, so a test can check both inputs arrived.
 */
export function buildImageGainModel(height: number, width: number, batch: Dim = 1): Uint8Array {
  return new ModelBuilder({ graphName: 'image_gain' })
    .input('images', 'FP32', [batch, 3, height, width])
    .input('gain', 'FP32', [1])
    .node('Mul', ['images', 'gain'], ['y'])
    .output('y', 'FP32', [batch, 3, height, width])
    .toBytes();
}

/**
 * `y = Div(a, b - 1)` in INT32 `[N]`: it registers (the smoke input computes 0 / -1), and the request
 * `a = INT32_MIN, b = 0` is the overflow that raises SIGFPE in onnxruntime unless registration guards the Div.
 */
export function buildDivisionByBMinusOneModel(): Uint8Array {
  return new ModelBuilder({ opsets: { '': 13 } })
    .input('a', 'INT32', ['N'])
    .input('b', 'INT32', ['N'])
    .node('Constant', [], ['one'], { value: attr.tensor({ datatype: 'INT32', dims: [], data: new Int32Array([1]) }) })
    .node('Sub', ['b', 'one'], ['d'])
    .node('Div', ['a', 'd'], ['y'])
    .output('y', 'INT32', ['N'])
    .toBytes();
}

/**
 * `y = Tile(x, repeats)` in FP32 `[N]` with INT64 `repeats` `[1]`: the answer's size follows `repeats` and its bytes
 * follow `x`, so a small request makes an answer of any size whose every byte can be checked (response streaming).
 */
export function buildTileModel(): Uint8Array {
  return new ModelBuilder({ graphName: 'tile' })
    .input('x', 'FP32', ['N'])
    .input('repeats', 'INT64', [1])
    .node('Tile', ['x', 'repeats'], ['y'])
    .output('y', 'FP32', ['M'])
    .toBytes();
}
