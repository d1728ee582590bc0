import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import {
  decodeInferenceRequest,
  decodeInferenceResponse,
  encodeInferenceRequest,
  encodeInferenceResponse,
  TYPED_ARRAY_BY_DATATYPE,
} from '../../functions/core/codec/index.js';
import type { EncodedRequest } from '../../functions/core/codec/index.js';
import type { Datatype, InferenceRequest, Tensor } from '../../functions/core/types.js';
import { DATATYPES, EDGE_VALUES, comparable, tensor, tensorsArbitrary } from './helpers.js';

function decodeEncoded(encoded: EncodedRequest): InferenceRequest {
  return decodeInferenceRequest(encoded.body, {
    contentType: encoded.headers['Content-Type'],
    inferenceHeaderContentLength: encoded.headers['Inference-Header-Content-Length'],
    limits: DEFAULT_LIMITS,
  });
}

function expectSameTensors(actual: readonly Tensor[], expected: readonly Tensor[], json: boolean): void {
  expect(actual.map((t) => [t.name, t.datatype, t.shape])).toEqual(expected.map((t) => [t.name, t.datatype, t.shape]));
  actual.forEach((t, i) => {
    const want = expected[i] as Tensor;
    expect(t.data.constructor).toBe(want.data.constructor);
    expect(comparable(t.datatype, t.data, json)).toEqual(comparable(want.datatype, want.data, json));
  });
}

const FORMS = [
  { label: 'flat JSON', options: {}, json: true },
  { label: 'nested JSON', options: { nested: true }, json: true },
  { label: 'binary extension', options: { binary: true }, json: false },
] as const;

describe('request round trips (encodeInferenceRequest -> decodeInferenceRequest)', () => {
  for (const datatype of DATATYPES) {
    for (const form of FORMS) {
      it(`carries ${datatype} edge values through the ${form.label} form`, () => {
        // Prepare: shape [1, 3] so nested data really nests
        const input = tensor('x', datatype, [1, 3], EDGE_VALUES[datatype]);

        // Act
        const decoded = decodeEncoded(encodeInferenceRequest([input], form.options));

        // Assess
        expectSameTensors(decoded.inputs, [input], form.json);
      });
    }
  }

  it('round-trips random tensors of every datatype and shape in every form (property)', () => {
    fc.assert(
      fc.property(tensorsArbitrary, fc.constantFrom(...FORMS), (tensors, form) => {
        const decoded = decodeEncoded(encodeInferenceRequest(tensors, form.options));
        expectSameTensors(decoded.inputs, tensors, form.json);
      }),
      { numRuns: 300 },
    );
  });

  it('carries id, requested outputs and binary_data_output', () => {
    // Prepare
    const input = tensor('x', 'FP32', [1], [1]);

    // Act
    const decoded = decodeEncoded(
      encodeInferenceRequest([input], {
        binary: true,
        id: 'req-7',
        outputs: ['a', { name: 'b', binary: false }, { name: 'c', binary: true }],
        binaryOutput: true,
      }),
    );

    // Assess
    expect(decoded.id).toBe('req-7');
    expect(decoded.binaryOutputByDefault).toBe(true);
    expect(decoded.outputs).toEqual([
      { name: 'a', binary: true },
      { name: 'b', binary: false },
      { name: 'c', binary: true },
    ]);
    expect(decoded.parameters).toEqual({ binary_data_output: true });
  });

  it('reads binary tensors from a body that starts at an odd offset of a larger buffer', () => {
    // Prepare: Buffer slices of a request are often unaligned for 8-byte elements
    const input = tensor('x', 'FP64', [2], [Math.PI, -Math.E]);
    const encoded = encodeInferenceRequest([input], { binary: true });
    const backing = new Uint8Array(encoded.body.byteLength + 3);
    backing.set(encoded.body, 1);
    const unaligned = backing.subarray(1, 1 + encoded.body.byteLength);

    // Act
    const decoded = decodeInferenceRequest(unaligned, {
      inferenceHeaderContentLength: encoded.headers['Inference-Header-Content-Length'],
      limits: DEFAULT_LIMITS,
    });

    // Assess
    expect(Array.from(decoded.inputs[0]?.data as Float64Array)).toEqual([Math.PI, -Math.E]);
  });
});

describe('response round trips (encodeInferenceResponse -> decodeInferenceResponse)', () => {
  for (const datatype of DATATYPES) {
    for (const binary of [false, true]) {
      it(`carries ${datatype} edge values as ${binary ? 'binary' : 'JSON'} output`, () => {
        // Prepare
        const output = tensor('y', datatype, [3], EDGE_VALUES[datatype]);

        // Act
        const encoded = encodeInferenceResponse(
          { modelName: 'm', modelVersion: '2', id: 'r1', outputs: [output] },
          { binaryOutputByDefault: binary },
        );
        const decoded = decodeInferenceResponse(encoded.body, encoded.headers);

        // Assess
        expect(decoded.modelName).toBe('m');
        expect(decoded.modelVersion).toBe('2');
        expect(decoded.id).toBe('r1');
        expectSameTensors(decoded.outputs, [output], !binary);
      });
    }
  }

  it('round-trips random outputs with a random binary/JSON choice per output (property)', () => {
    fc.assert(
      fc.property(
        tensorsArbitrary,
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.boolean(),
        (tensors, choice, byDefault) => {
          // Every other output is listed with an explicit choice; the rest follow the default.
          const outputs = tensors.flatMap((t, i) =>
            i % 2 === 0 ? [{ name: t.name, binary: choice[i] as boolean }] : [],
          );
          const encoded = encodeInferenceResponse(
            { modelName: 'm', modelVersion: '1', outputs: tensors },
            { outputs, binaryOutputByDefault: byDefault },
          );
          const decoded = decodeInferenceResponse(encoded.body, encoded.headers);
          const decodedAsJson = tensors.map((_t, i) => !(i % 2 === 0 ? choice[i] : byDefault));
          decoded.outputs.forEach((t, i) => {
            expectSameTensors([t], [tensors[i] as Tensor], decodedAsJson[i] as boolean);
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('datatype fidelity', () => {
  it('round-trips INT64 2^53+1 sent as a decimal string exactly', () => {
    // Prepare
    const body = JSON.stringify({
      inputs: [{ name: 'x', shape: [2], datatype: 'INT64', data: ['9007199254740993', -5] }],
    });

    // Act
    const decoded = decodeInferenceRequest(new TextEncoder().encode(body), { limits: DEFAULT_LIMITS });
    const encoded = encodeInferenceResponse(
      { modelName: 'm', modelVersion: '1', outputs: decoded.inputs },
      { binaryOutputByDefault: false },
    );
    const text = new TextDecoder().decode(encoded.body);

    // Assess: the unsafe value stays a string, the safe one becomes a number
    expect(Array.from(decoded.inputs[0]?.data as BigInt64Array)).toEqual([9007199254740993n, -5n]);
    expect(text).toContain('"data":["9007199254740993",-5]');
  });

  it('accepts and emits "NaN", "Infinity" and "-Infinity" for every float datatype', () => {
    for (const datatype of ['FP16', 'FP32', 'FP64'] as const) {
      // Prepare
      const body = { inputs: [{ name: 'x', shape: [4], datatype, data: ['NaN', 'Infinity', '-Infinity', 0.5] }] };

      // Act
      const decoded = decodeInferenceRequest(new TextEncoder().encode(JSON.stringify(body)), {
        limits: DEFAULT_LIMITS,
      });
      const encoded = encodeInferenceResponse(
        { modelName: 'm', modelVersion: '1', outputs: decoded.inputs },
        { binaryOutputByDefault: false },
      );
      const json = JSON.parse(new TextDecoder().decode(encoded.body)) as { outputs: { data: unknown[] }[] };

      // Assess
      expect(json.outputs[0]?.data, datatype).toEqual(['NaN', 'Infinity', '-Infinity', 0.5]);
    }
  });

  it('stores every datatype in the storage types.ts prescribes', () => {
    const expected: Record<Datatype, unknown> = { ...TYPED_ARRAY_BY_DATATYPE, BYTES: Array };
    for (const datatype of DATATYPES) {
      const decoded = decodeEncoded(encodeInferenceRequest([tensor('x', datatype, [3], EDGE_VALUES[datatype])]));
      expect(decoded.inputs[0]?.data.constructor, datatype).toBe(expected[datatype]);
    }
  });

  it('decodes JSON BOOL true/false to bytes 1/0 and FP16 numbers to rounded half bits', () => {
    const decoded = decodeInferenceRequest(
      new TextEncoder().encode(
        JSON.stringify({
          inputs: [
            { name: 'b', shape: [2], datatype: 'BOOL', data: [true, false] },
            { name: 'h', shape: [3], datatype: 'FP16', data: [1, 65504, 0.1] },
          ],
        }),
      ),
      { limits: DEFAULT_LIMITS },
    );
    expect(Array.from(decoded.inputs[0]?.data as Uint8Array)).toEqual([1, 0]);
    expect(Array.from(decoded.inputs[1]?.data as Uint16Array)).toEqual([0x3c00, 0x7bff, 0x2e66]);
  });
});
