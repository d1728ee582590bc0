/** Triton's model configuration and classification, derived from metadata and outputs (core, no I/O). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { BadRequestError } from '../../functions/core/errors.js';
import { batchesFirstDimension, classify, formatFixed6, modelConfig } from '../../functions/core/triton.js';
import type { ModelMetadata, Tensor } from '../../functions/core/types.js';

const metadata = (inputs: ModelMetadata['inputs'], outputs: ModelMetadata['outputs']): ModelMetadata => ({
  name: 'm',
  version: '1',
  platform: 'onnxruntime_onnx',
  inputs,
  outputs,
  sha256: '0'.repeat(64),
  size: 1,
  sourceKey: 'uploads/m/m.onnx',
  createdAt: '2026-01-01T00:00:00.000Z',
  rewrites: [],
});

describe('formatFixed6: C printf("%f"), as Triton prints scores', () => {
  it.each([
    [0.5, '0.500000'],
    [0.97, '0.970000'],
    [1 / 3, '0.333333'],
    [-2.5, '-2.500000'],
    [-0, '-0.000000'],
    [1e21, '1000000000000000000000.000000'],
    [NaN, 'nan'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
    // Exact ties (odd multiples of 2^-7) round to even, where toFixed rounds away from zero.
    [0.0078125, '0.007812'],
    [0.0234375, '0.023438'],
    [-0.0078125, '-0.007812'],
    [1.0078125, '1.007812'],
  ])('prints %d as %s', (value, text) => {
    expect(formatFixed6(value)).toBe(text);
  });
});

describe('classify', () => {
  const scores: Tensor = {
    name: 'p',
    datatype: 'FP32',
    shape: [2, 3],
    data: new Float32Array([0.1, 0.7, 0.2, 0.4, 0.4, 0.2]),
  };

  it('ranks each row when the model batches, labels when known, ties by lower index', () => {
    expect(classify(scores, 2, true, ['a', 'b', 'c'])).toEqual({
      name: 'p',
      datatype: 'BYTES',
      shape: [2, 2],
      data: ['0.700000:1:b', '0.200000:2:c', '0.400000:0:a', '0.400000:1:b'],
    });
  });

  it('ranks the whole tensor when the model does not batch, and caps k at the class count', () => {
    const result = classify(scores, 10, false);
    expect(result.shape).toEqual([6]);
    expect((result.data as string[])[0]).toBe('0.700000:1');
    expect((result.data as string[]).at(-1)).toBe('0.100000:0');
  });

  it('prints integer scores as integers, INT64 included', () => {
    const ints: Tensor = {
      name: 'i',
      datatype: 'INT64',
      shape: [3],
      data: new BigInt64Array([5n, 9007199254740993n, -1n]),
    };
    expect(classify(ints, 2, false).data).toEqual(['9007199254740993:1', '5:0']);
  });

  it('refuses outputs without scores', () => {
    const text: Tensor = { name: 't', datatype: 'BYTES', shape: [1], data: ['x'] };
    expect(() => classify(text, 1, false)).toThrow(BadRequestError);
  });
});

describe('modelConfig', () => {
  it('keeps full shapes and max_batch_size 0 when the first dimension is not a batch', () => {
    const config = modelConfig(
      metadata(
        [{ name: 'image', datatype: 'FP32', shape: [1, 3, 32, 32] }],
        [{ name: 'logits', datatype: 'FP32', shape: [1, 10] }],
      ),
      DEFAULT_LIMITS,
    );
    expect(config).toMatchObject({
      max_batch_size: 0,
      input: [{ name: 'image', data_type: 'TYPE_FP32', dims: [1, 3, 32, 32] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [1, 10] }],
    });
  });

  it('takes a dynamic first dimension everywhere as the batch, sized by limits.maxElements', () => {
    const model = metadata(
      [{ name: 'x', datatype: 'INT64', shape: [-1, -1, 8] }],
      [{ name: 'y', datatype: 'BYTES', shape: [-1] }],
    );
    expect(batchesFirstDimension(model)).toBe(true);
    expect(modelConfig(model, { maxElements: 1000 })).toMatchObject({
      max_batch_size: 125,
      input: [{ name: 'x', data_type: 'TYPE_INT64', dims: [-1, 8] }],
      output: [{ name: 'y', data_type: 'TYPE_STRING', dims: [1], reshape: { shape: [] } }],
    });
  });
});
