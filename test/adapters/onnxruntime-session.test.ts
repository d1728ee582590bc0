import { describe, expect, it } from 'vitest';
import { messageOf, onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { ModelBuilder } from '../../tools/onnx/index.js';

describe('onnxruntime error messages', () => {
  it.each([
    [
      'Exception during initialization: /onnxruntime_src/onnxruntime/core/providers/cpu/text/string_normalizer.cc:235 onnxruntime::StringNormalizer::Locale::Locale(const std::string&)::<lambda()> Failed to construct locale',
      'Exception during initialization: Failed to construct locale',
    ],
    [
      'Load model failed:/onnxruntime_src/onnxruntime/core/graph/model_load_utils.h:46 void onnxruntime::model_load_utils::ValidateOpsetForDomain(const std::unordered_map<std::basic_string<char>, int>&, bool, int) ONNX Runtime only supports opset 7',
      'Load model failed: ONNX Runtime only supports opset 7',
    ],
    [
      'Could not find an implementation for AveragePool(1) node',
      'Could not find an implementation for AveragePool(1) node',
    ],
  ])('drops native source locations: %s', (raw, expected) => {
    expect(messageOf(new Error(raw))).toBe(expected);
  });

  it("refuses an unloadable model with onnxruntime's reason and no server path", async () => {
    const model = new ModelBuilder({ opsets: { '': 99 } })
      .input('x', 'FP32', [1])
      .output('y', 'FP32', [1])
      .node('Relu', ['x'], ['y'])
      .toBytes();

    const creation = onnxruntimeSessionFactory.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });

    await expect(creation).rejects.toThrow(ModelRejectedError);
    await expect(creation).rejects.toThrow(/^onnxruntime cannot load the model: [^/]*$/);
  });
});
