import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import {
  buildCnnExample,
  buildExamples,
  buildIrisExample,
  buildLinearExample,
  buildTextLabelsExample,
  buildDetectorExample,
  catalogJson,
  sidecarJson,
  type CnnParameters,
} from '../../tools/onnx/examples.js';
import { createPrng, uniformFloat32 } from '../../tools/onnx/prng.js';
import { inspectModel, rewriteForServing } from '../../functions/core/onnx/rewrites.js';

const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');

function numbers(data: unknown): number[] {
  return Array.from(data as ArrayLike<number | bigint>, Number);
}

function softmax(values: readonly number[]): number[] {
  const max = Math.max(...values);
  const exp = values.map((v) => Math.exp(v - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((e) => e / total);
}

/** y[o] = bias[o] + Σ_i x[i] · w[i, o] for a row-major `[in, out]` matrix. */
function dense(x: readonly number[], w: Float32Array, bias: Float32Array): number[] {
  return Array.from(bias, (b, o) => x.reduce((sum, xi, i) => sum + xi * w[i * bias.length + o]!, b));
}

/** The CNN's forward pass written out in plain loops, independent of onnxruntime. */
function cnnForward(image: Float32Array, p: CnnParameters): number[] {
  const conv = (input: Float64Array, inC: number, size: number, w: Float32Array, b: Float32Array): Float64Array => {
    const outC = b.length;
    const out = new Float64Array(outC * size * size);
    for (let o = 0; o < outC; o++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          let sum = b[o]!;
          for (let c = 0; c < inC; c++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const iy = y + ky - 1;
                const ix = x + kx - 1;
                if (iy < 0 || iy >= size || ix < 0 || ix >= size) continue; // zero padding
                sum += input[(c * size + iy) * size + ix]! * w[((o * inC + c) * 3 + ky) * 3 + kx]!;
              }
          out[(o * size + y) * size + x] = Math.max(0, sum); // ReLU
        }
    return out;
  };
  const maxPool = (input: Float64Array, channels: number, size: number): Float64Array => {
    const half = size / 2;
    const out = new Float64Array(channels * half * half);
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < half; y++)
        for (let x = 0; x < half; x++) {
          const at = (dy: number, dx: number): number => input[(c * size + 2 * y + dy) * size + 2 * x + dx]!;
          out[(c * half + y) * half + x] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
        }
    return out;
  };
  const p1 = maxPool(conv(Float64Array.from(image), 3, 32, p.conv1, p.conv1Bias), 8, 32);
  const p2 = maxPool(conv(p1, 8, 16, p.conv2, p.conv2Bias), 16, 16);
  const features = Array.from({ length: 16 }, (_, c) => p2.slice(c * 64, (c + 1) * 64).reduce((a, b) => a + b, 0) / 64);
  // Gemm with transB: logits[o] = Σ_c features[c] · dense[o, c] + bias[o]
  return Array.from(p.denseBias, (b, o) => features.reduce((sum, f, c) => sum + f * p.dense[o * 16 + c]!, b));
}

describe('example models', () => {
  it('linear: y = x · w + b', async () => {
    // Prepare
    const { bytes, parameters } = buildLinearExample();
    const x = [1, 2, 3, 4, -0.5, 0, 0.25, 8];
    const session = await ort.InferenceSession.create(bytes);

    // Act
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [2, 4]) });

    // Assess
    expect(y!.dims).toEqual([2, 1]);
    const expected = [0, 1].map((row) => dense(x.slice(row * 4, row * 4 + 4), parameters.weights, parameters.bias)[0]!);
    for (const [i, v] of numbers(y!.data).entries()) expect(v).toBeCloseTo(expected[i]!, 5);
    expect(parameters.weights.some((w) => w !== 0)).toBe(true);
  });

  it('iris: classifies textbook flowers of each species, with softmax probabilities', async () => {
    // Prepare: a setosa, a versicolor and a virginica from Fisher's data set
    const { bytes, parameters } = buildIrisExample();
    const x = [5.1, 3.5, 1.4, 0.2, 7.0, 3.2, 4.7, 1.4, 6.3, 3.3, 6.0, 2.5];
    const session = await ort.InferenceSession.create(bytes);

    // Act
    const { label, probabilities } = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [3, 4]) });

    // Assess
    expect(label!.type).toBe('int64');
    expect(numbers(label!.data)).toEqual([0, 1, 2]);
    expect(probabilities!.dims).toEqual([3, 3]);
    const expected = [0, 1, 2].flatMap((row) => {
      const hidden = dense(x.slice(row * 4, row * 4 + 4), parameters.w1, parameters.b1).map((h) => Math.max(0, h));
      return softmax(dense(hidden, parameters.w2, parameters.b2));
    });
    for (const [i, p] of numbers(probabilities!.data).entries()) expect(p).toBeCloseTo(expected[i]!, 5);
  });

  it('cnn: logits equal a plain-loop convolution of the same weights', async () => {
    // Prepare
    const { bytes, parameters } = buildCnnExample();
    const image = uniformFloat32(createPrng(99), 3 * 32 * 32, 1);
    const session = await ort.InferenceSession.create(bytes);

    // Act
    const { logits } = await session.run({ image: new ort.Tensor('float32', image, [1, 3, 32, 32]) });

    // Assess
    expect(logits!.dims).toEqual([1, 10]);
    const expected = cnnForward(image, parameters);
    for (const [i, v] of numbers(logits!.data).entries()) expect(v).toBeCloseTo(expected[i]!, 4);
    expect(new Set(expected.map((v) => v.toFixed(3))).size).toBe(10); // the weights do discriminate
  });

  it('text-labels: strings in, ids and strings out', async () => {
    // Prepare
    const { bytes, parameters } = buildTextLabelsExample();
    const text = ['Hund', 'pájaro', 'cat', 'unicorn', 'chat', ''];
    const session = await ort.InferenceSession.create(bytes);

    // Act
    const { id, label } = await session.run({ text: new ort.Tensor('string', text, [text.length]) });

    // Assess
    expect(numbers(id!.data)).toEqual([1, 2, 0, -1, 0, -1]);
    expect(label!.type).toBe('string');
    expect(Array.from(label!.data as string[])).toEqual(['dog', 'bird', 'cat', 'unknown', 'cat', 'unknown']);
    expect(text.map((t) => parameters.ids[t] ?? parameters.unknownId)).toEqual([1, 2, 0, -1, 0, -1]);
  });

  it('detector: each of the 400 cells is the sigmoid of a 1x1 convolution of its 32 x 32 average', async () => {
    const { bytes, parameters } = buildDetectorExample();
    const random = createPrng(5);
    const image = uniformFloat32(random, 3 * 640 * 640, 1);
    const session = await ort.InferenceSession.create(bytes);
    const result = await session.run({ images: new ort.Tensor('float32', image, [1, 3, 640, 640]) });
    await session.release();
    const out = result['output0']!;
    expect(out.dims).toEqual([1, 6, 400]);
    const got = out.data as Float32Array;
    for (const cell of [0, 17, 399]) {
      const [cy, cx] = [Math.floor(cell / 20), cell % 20];
      const mean = [0, 1, 2].map((c) => {
        let sum = 0;
        for (let y = 0; y < 32; y++)
          for (let x = 0; x < 32; x++) sum += image[c * 409600 + (cy * 32 + y) * 640 + cx * 32 + x]!;
        return sum / 1024;
      });
      for (let k = 0; k < 6; k++) {
        const logit = parameters.headBias[k]! + mean.reduce((s, m, c) => s + m * parameters.head[k * 3 + c]!, 0);
        expect(got[k * 400 + cell]).toBeCloseTo(1 / (1 + Math.exp(-logit)), 5);
      }
    }
  });

  it('declare the interfaces the catalog descriptions promise, and need no rewrite', () => {
    const interfaces = Object.fromEntries(
      buildExamples().map((e) => {
        const inspection = inspectModel(e.bytes);
        expect(rewriteForServing(e.bytes).model).toBe(e.bytes);
        const describe = (v: (typeof inspection.inputs)[number]): string =>
          `${v.name}:${v.datatype}[${v.shape?.join(',')}]`;
        return [e.name, [...inspection.inputs.map(describe), '->', ...inspection.outputs.map(describe)].join(' ')];
      }),
    );
    expect(interfaces).toEqual({
      linear: 'x:FP32[batch,4] -> y:FP32[batch,1]',
      iris: 'x:FP32[batch,4] -> label:INT64[batch] probabilities:FP32[batch,3]',
      cnn: 'image:FP32[1,3,32,32] -> logits:FP32[1,10]',
      'text-labels': 'text:BYTES[batch] -> id:INT64[batch] label:BYTES[batch]',
      detector: 'images:FP32[1,3,640,640] -> output0:FP32[1,6,400]',
    });
  });
});

describe('models/ (generated by npm run build:examples)', () => {
  it.each(buildExamples().map((e) => [e.name, e] as const))(
    '%s: committed files equal a fresh build',
    (name, example) => {
      // Prepare
      const committedModel = readFileSync(path.join(modelsDir, `${name}.onnx`));
      const committedCatalog = readFileSync(path.join(modelsDir, `${name}.json`), 'utf8');

      // Act
      const entry = parseCatalogEntry(name, JSON.parse(committedCatalog));

      // Assess
      expect(committedModel.equals(Buffer.from(example.bytes))).toBe(true);
      expect(committedCatalog).toBe(catalogJson(example));
      const sidecar = sidecarJson(example);
      if (sidecar !== undefined) expect(readFileSync(path.join(modelsDir, `${name}.onnx.json`), 'utf8')).toBe(sidecar);
      expect(entry.seed).toBe(`${name}.onnx`);
      expect(entry.description?.length).toBeGreaterThan(20);
      expect(committedModel.length).toBeLessThan(16 * 1024);
    },
  );

  it('builds the same bytes twice', () => {
    const [first, second] = [buildExamples(), buildExamples()];
    for (const [i, e] of first.entries()) expect(Buffer.from(e.bytes).equals(Buffer.from(second[i]!.bytes))).toBe(true);
  });
});
