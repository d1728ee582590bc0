/**
 * The example models of `models/`: small, generated from code (no Python), deterministic. `scripts/build-examples.ts`
 * writes them; tests rebuild them to check the committed files and recompute their outputs from the parameters
 * returned here.
 */
import { attr, ModelBuilder } from './model-builder.js';
import { createPrng, uniformFloat32 } from './prng.js';

/** One example model: its bytes, its catalog entry and the parameters it was built from. */
export interface ExampleModel<P = unknown> {
  /** Model name: `models/<name>.onnx` and `models/<name>.json`. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The `models/<name>.json` catalog entry (see `functions/core/catalog.ts`). */
  readonly catalog: {
    readonly description: string;
    readonly seed: string;
    readonly memoryMb: number;
    /** Declared image preprocessing (see `functions/core/image/spec.ts`). */
    readonly preprocess?: Readonly<Record<string, unknown>>;
  };
  readonly parameters: P;
  /** The seed's sidecar `models/<name>.onnx.json` (a sample request, declared preprocessing), when it has one. */
  readonly sidecar?: Readonly<Record<string, unknown>>;
}

const PRODUCER = { producerName: 'onnx-serverless build-examples', producerVersion: '1' } as const;
/** Opset 17 pairs with IR 8 (onnx 1.12), which every onnxruntime since 1.12 loads. */
const OPSETS = { '': 17 } as const;

function catalog(name: string, description: string, memoryMb: number): ExampleModel['catalog'] {
  return { description, seed: `${name}.onnx`, memoryMb };
}

/** Parameters of `linear`: `y = x · weights + bias`. */
export interface LinearParameters {
  /** `[4, 1]`, row-major. */
  readonly weights: Float32Array;
  /** `[1]`. */
  readonly bias: Float32Array;
}

/** `linear`: a linear regressor, FP32 `x` `[-1, 4]` to FP32 `y` `[-1, 1]` (MatMul, Add). */
export function buildLinearExample(): ExampleModel<LinearParameters> {
  const random = createPrng(1);
  const weights = uniformFloat32(random, 4, 1);
  const bias = uniformFloat32(random, 1, 1);
  const bytes = new ModelBuilder({ ...PRODUCER, opsets: OPSETS, graphName: 'linear' })
    .input('x', 'FP32', ['batch', 4])
    .initializer('weights', { datatype: 'FP32', dims: [4, 1], data: weights })
    .initializer('bias', { datatype: 'FP32', dims: [1], data: bias })
    .node('MatMul', ['x', 'weights'], ['xw'])
    .node('Add', ['xw', 'bias'], ['y'])
    .output('y', 'FP32', ['batch', 1])
    .toBytes();
  return {
    name: 'linear',
    bytes,
    catalog: catalog(
      'linear',
      'Linear regression: y = x . w + b, with x of 4 features per row (FP32 [-1, 4] -> FP32 [-1, 1]).',
      512,
    ),
    parameters: { weights, bias },
  };
}

/** Parameters of `iris`: a 4-3-3 MLP, `softmax(relu(x · w1 + b1) · w2 + b2)`. */
export interface IrisParameters {
  /** `[4, 3]`. */
  readonly w1: Float32Array;
  /** `[3]`. */
  readonly b1: Float32Array;
  /** `[3, 3]`. */
  readonly w2: Float32Array;
  /** `[3]`. */
  readonly b2: Float32Array;
  /** Class names of labels 0, 1, 2. */
  readonly classes: readonly string[];
}

/**
 * `iris`: an MLP classifier of iris flowers, FP32 `x` `[-1, 4]` (sepal length, sepal width, petal length, petal
 * width, in cm) to INT64 `label` `[-1]` and FP32 `probabilities` `[-1, 3]`. The weights are set by hand to the
 * textbook rule (setosa: petal length < 2.5; virginica: petal width > 1.65; else versicolor), so that the example
 * answers sensibly without a training step.
 */
export function buildIrisExample(): ExampleModel<IrisParameters> {
  // Hidden units: h0 = relu(2.5 - petal length), h1 = relu(petal length - 2.5), h2 = relu(petal width - 1.65).
  const w1 = new Float32Array([0, 0, 0, 0, 0, 0, -1, 1, 0, 0, 0, 1]);
  const b1 = new Float32Array([2.5, -2.5, -1.65]);
  // Logits: setosa = 6 h0; versicolor = 2 h1 - 8 h2; virginica = 2 h1 + 8 h2 - 0.8.
  const w2 = new Float32Array([6, 0, 0, 0, 2, 2, 0, -8, 8]);
  const b2 = new Float32Array([0, 0, -0.8]);
  const bytes = new ModelBuilder({ ...PRODUCER, opsets: OPSETS, graphName: 'iris' })
    .input('x', 'FP32', ['batch', 4])
    .initializer('w1', { datatype: 'FP32', dims: [4, 3], data: w1 })
    .initializer('b1', { datatype: 'FP32', dims: [3], data: b1 })
    .initializer('w2', { datatype: 'FP32', dims: [3, 3], data: w2 })
    .initializer('b2', { datatype: 'FP32', dims: [3], data: b2 })
    .node('MatMul', ['x', 'w1'], ['h_mm'])
    .node('Add', ['h_mm', 'b1'], ['h_pre'])
    .node('Relu', ['h_pre'], ['h'])
    .node('MatMul', ['h', 'w2'], ['logits_mm'])
    .node('Add', ['logits_mm', 'b2'], ['logits'])
    .node('Softmax', ['logits'], ['probabilities'], { axis: attr.int(1) })
    .node('ArgMax', ['logits'], ['label'], { axis: attr.int(1), keepdims: attr.int(0) })
    .output('label', 'INT64', ['batch'])
    .output('probabilities', 'FP32', ['batch', 3])
    .toBytes();
  return {
    name: 'iris',
    bytes,
    catalog: catalog(
      'iris',
      'Iris flower classifier (MLP): x = [sepal length, sepal width, petal length, petal width] in cm (FP32 [-1, 4]) -> ' +
        'label (INT64 [-1]: 0 setosa, 1 versicolor, 2 virginica) and probabilities (FP32 [-1, 3]).',
      512,
    ),
    parameters: { w1, b1, w2, b2, classes: ['setosa', 'versicolor', 'virginica'] },
  };
}

/** Parameters of `cnn` (weights in ONNX layouts: conv `[out, in, kh, kw]`, dense `[out, in]`). */
export interface CnnParameters {
  /** `[8, 3, 3, 3]`. */
  readonly conv1: Float32Array;
  /** `[8]`. */
  readonly conv1Bias: Float32Array;
  /** `[16, 8, 3, 3]`. */
  readonly conv2: Float32Array;
  /** `[16]`. */
  readonly conv2Bias: Float32Array;
  /** `[10, 16]`. */
  readonly dense: Float32Array;
  /** `[10]`. */
  readonly denseBias: Float32Array;
}

/**
 * `cnn`: a small image classifier with random weights, FP32 `image` `[1, 3, 32, 32]` to FP32 `logits` `[1, 10]`:
 * Conv 3x3 (8) + Relu + MaxPool 2, Conv 3x3 (16) + Relu + MaxPool 2, GlobalAveragePool, Flatten, Gemm.
 */
export function buildCnnExample(): ExampleModel<CnnParameters> {
  const random = createPrng(3);
  // He-uniform scales keep activations of order 1 through the layers.
  const conv1 = uniformFloat32(random, 8 * 3 * 3 * 3, Math.sqrt(6 / 27));
  const conv1Bias = uniformFloat32(random, 8, 0.1);
  const conv2 = uniformFloat32(random, 16 * 8 * 3 * 3, Math.sqrt(6 / 72));
  const conv2Bias = uniformFloat32(random, 16, 0.1);
  const dense = uniformFloat32(random, 10 * 16, Math.sqrt(6 / 16));
  const denseBias = uniformFloat32(random, 10, 0.1);
  const conv = { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([1, 1]) };
  const pool = { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) };
  const bytes = new ModelBuilder({ ...PRODUCER, opsets: OPSETS, graphName: 'cnn' })
    .input('image', 'FP32', [1, 3, 32, 32])
    .initializer('conv1.weight', { datatype: 'FP32', dims: [8, 3, 3, 3], data: conv1 })
    .initializer('conv1.bias', { datatype: 'FP32', dims: [8], data: conv1Bias })
    .initializer('conv2.weight', { datatype: 'FP32', dims: [16, 8, 3, 3], data: conv2 })
    .initializer('conv2.bias', { datatype: 'FP32', dims: [16], data: conv2Bias })
    .initializer('dense.weight', { datatype: 'FP32', dims: [10, 16], data: dense })
    .initializer('dense.bias', { datatype: 'FP32', dims: [10], data: denseBias })
    .node('Conv', ['image', 'conv1.weight', 'conv1.bias'], ['c1'], conv)
    .node('Relu', ['c1'], ['r1'])
    .node('MaxPool', ['r1'], ['p1'], pool)
    .node('Conv', ['p1', 'conv2.weight', 'conv2.bias'], ['c2'], conv)
    .node('Relu', ['c2'], ['r2'])
    .node('MaxPool', ['r2'], ['p2'], pool)
    .node('GlobalAveragePool', ['p2'], ['gap'])
    .node('Flatten', ['gap'], ['features'], { axis: attr.int(1) })
    .node('Gemm', ['features', 'dense.weight', 'dense.bias'], ['logits'], { transB: attr.int(1) })
    .output('logits', 'FP32', [1, 10])
    .toBytes();
  return {
    name: 'cnn',
    bytes,
    catalog: catalog(
      'cnn',
      'Small convolutional network with random weights: image (FP32 [1, 3, 32, 32], NCHW) -> logits (FP32 [1, 10]).',
      1024,
    ),
    parameters: { conv1, conv1Bias, conv2, conv2Bias, dense, denseBias },
  };
}

/** Parameters of `text-labels`: word to class id, and class id to English name. */
export interface TextLabelsParameters {
  readonly ids: Readonly<Record<string, number>>;
  readonly names: readonly string[];
  /** `id` of words not in `ids`. */
  readonly unknownId: number;
  /** `label` of ids without a name. */
  readonly unknownLabel: string;
}

/**
 * `text-labels`: BYTES in, INT64 and BYTES out. Animal words in four languages (BYTES `text` `[-1]`) to a class id
 * (INT64 `id` `[-1]`, -1 when unknown) and its English name (BYTES `label` `[-1]`), with two ai.onnx.ml LabelEncoders.
 */
export function buildTextLabelsExample(): ExampleModel<TextLabelsParameters> {
  const names = ['cat', 'dog', 'bird'];
  const words: Record<string, number> = {
    cat: 0,
    dog: 1,
    bird: 2,
    chat: 0,
    chien: 1,
    oiseau: 2,
    Katze: 0,
    Hund: 1,
    Vogel: 2,
    gato: 0,
    perro: 1,
    pájaro: 2,
  };
  const parameters: TextLabelsParameters = { ids: words, names, unknownId: -1, unknownLabel: 'unknown' };
  const bytes = new ModelBuilder({ ...PRODUCER, opsets: { ...OPSETS, 'ai.onnx.ml': 3 }, graphName: 'text_labels' })
    .input('text', 'BYTES', ['batch'])
    .node(
      'LabelEncoder',
      ['text'],
      ['id'],
      {
        keys_strings: attr.strings(Object.keys(words)),
        values_int64s: attr.ints(Object.values(words)),
        default_int64: attr.int(parameters.unknownId),
      },
      { domain: 'ai.onnx.ml' },
    )
    .node(
      'LabelEncoder',
      ['id'],
      ['label'],
      {
        keys_int64s: attr.ints(names.map((_, i) => i)),
        values_strings: attr.strings(names),
        default_string: attr.string(parameters.unknownLabel),
      },
      { domain: 'ai.onnx.ml' },
    )
    .output('id', 'INT64', ['batch'])
    .output('label', 'BYTES', ['batch'])
    .toBytes();
  return {
    name: 'text-labels',
    bytes,
    catalog: catalog(
      'text-labels',
      'String in, strings and ints out: animal words in English, French, German or Spanish (BYTES [-1]) -> ' +
        'class id (INT64 [-1]: 0 cat, 1 dog, 2 bird, -1 unknown) and English label (BYTES [-1]).',
      512,
    ),
    parameters,
  };
}

/** Parameters of `detector`: a 1x1 convolution over 32 x 32 cell averages. */
export interface DetectorParameters {
  /** `[6, 3, 1, 1]`. */
  readonly head: Float32Array;
  /** `[6]`. */
  readonly headBias: Float32Array;
}

/**
 * `detector`: shaped like a YOLOv8 export, FP32 `images` `[1, 3, 640, 640]` to FP32 `output0` `[1, 6, 400]`: one
 * candidate per 32 x 32 cell (400 cells), 4 box values and 2 class scores each, from AveragePool 32/32, a 1x1 Conv
 * and a Sigmoid (random weights: it is the input and output shape that the example shows). Its catalog entry
 * declares YOLO's letterbox preprocessing, so it takes a JPEG body.
 */
export function buildDetectorExample(): ExampleModel<DetectorParameters> {
  const random = createPrng(16);
  const head = uniformFloat32(random, 6 * 3, 2);
  const headBias = uniformFloat32(random, 6, 0.5);
  const bytes = new ModelBuilder({ ...PRODUCER, opsets: OPSETS, graphName: 'detector' })
    .input('images', 'FP32', [1, 3, 640, 640])
    .initializer('head.weight', { datatype: 'FP32', dims: [6, 3, 1, 1], data: head })
    .initializer('head.bias', { datatype: 'FP32', dims: [6], data: headBias })
    .initializer('cells', { datatype: 'INT64', dims: [3], data: new BigInt64Array([1n, 6n, 400n]) })
    .node('AveragePool', ['images'], ['pooled'], { kernel_shape: attr.ints([32, 32]), strides: attr.ints([32, 32]) })
    .node('Conv', ['pooled', 'head.weight', 'head.bias'], ['logits'])
    .node('Sigmoid', ['logits'], ['scores'])
    .node('Reshape', ['scores', 'cells'], ['output0'])
    .output('output0', 'FP32', [1, 6, 400])
    .toBytes();
  return {
    name: 'detector',
    bytes,
    catalog: {
      ...catalog(
        'detector',
        'Detection-shaped example with random weights, YOLO-style: images (FP32 [1, 3, 640, 640]) -> output0 ' +
          '(FP32 [1, 6, 400]); "preprocess" declares letterbox preprocessing, so it takes a JPEG, PNG or WebP ' +
          'body, or the image file in a BYTES element.',
        1024,
      ),
      preprocess: {
        images: {
          images: {
            layout: 'NCHW',
            size: [640, 640],
            resize: 'letterbox',
            pad: 114,
            channel_order: 'RGB',
            scale: 1 / 255,
            mean: [0, 0, 0],
            std: [1, 1, 1],
          },
        },
      },
    },
    parameters: { head, headBias },
  };
}

/** Every example model, in a stable order. */
export function buildExamples(): ExampleModel[] {
  return [
    buildLinearExample(),
    buildIrisExample(),
    buildCnnExample(),
    buildTextLabelsExample(),
    buildDetectorExample(),
  ];
}

/** The text of `models/<name>.onnx.json` for an example with a sidecar. */
export function sidecarJson(example: ExampleModel): string | undefined {
  return example.sidecar === undefined ? undefined : `${JSON.stringify(example.sidecar, null, 2)}\n`;
}

/**
 * The example photo of the README's curl (`models/photo.jpg`): 1280 x 720, drawn here (sky, ground, a sun and two
 * boxes), as 8-bit RGB pixels for any encoder.
 */
export function examplePhotoPixels(): { width: number; height: number; data: Uint8Array } {
  const width = 1280;
  const height = 720;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let rgb: [number, number, number] =
        y < 460 ? [120 + (y >> 3), 170 + (y >> 4), 235] : [70, 140 - ((y - 460) >> 3), 60];
      if ((x - 1050) ** 2 + (y - 140) ** 2 < 70 ** 2) rgb = [250, 220, 80];
      if (x > 200 && x < 420 && y > 300 && y < 520) rgb = [180, 40, 40];
      if (x > 600 && x < 700 && y > 380 && y < 560) rgb = [40, 60, 170];
      data.set(rgb, i);
    }
  }
  return { width, height, data };
}

/** The text of `models/<name>.json` for an example: its catalog entry, two-space indented, newline-terminated. */
export function catalogJson(example: ExampleModel): string {
  return `${JSON.stringify(example.catalog, null, 2)}\n`;
}
