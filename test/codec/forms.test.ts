import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import {
  InvalidInferenceResponseError,
  decodeInferenceRequest,
  decodeInferenceResponse,
  encodeInferenceRequest,
  encodeInferenceResponse,
  encodeRawInferenceRequest,
  headerValue,
} from '../../functions/core/codec/index.js';
import { BadRequestError, PayloadTooLargeError } from '../../functions/core/errors.js';
import type { TensorSpec } from '../../functions/core/types.js';
import { jsonBytes, tensor, thrown } from './helpers.js';

const request = { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] };

describe('content types', () => {
  it.each([undefined, '', 'application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"'])(
    'reads Content-Type %j as V2 JSON',
    (contentType) => {
      const decoded = decodeInferenceRequest(jsonBytes(request), { contentType, limits: DEFAULT_LIMITS });
      expect(Array.from(decoded.inputs[0]?.data as Float32Array)).toEqual([1]);
    },
  );

  it.each([
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    'application/octet-stream',
  ])('reads Content-Type %j without Inference-Header-Content-Length as V2 JSON, as Triton does', (contentType) => {
    const decoded = decodeInferenceRequest(jsonBytes(request), { contentType, limits: DEFAULT_LIMITS });
    expect(Array.from(decoded.inputs[0]?.data as Float32Array)).toEqual([1]);
  });

  it('says why a body under another content type was read as JSON when it is not JSON', () => {
    const error = thrown(() =>
      decodeInferenceRequest(new TextEncoder().encode('<inputs/>'), {
        contentType: 'application/xml',
        limits: DEFAULT_LIMITS,
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toMatch(
      /^the request body \(read as V2 JSON although its Content-Type is "application\/xml": without an Inference-Header-Content-Length header every body is V2 JSON\) is not valid JSON/,
    );
  });

  it('reads the binary extension under any content type when Inference-Header-Content-Length is present', () => {
    const encoded = encodeInferenceRequest([tensor('x', 'INT32', [2], [5, 6])], { binary: true });
    const decoded = decodeInferenceRequest(encoded.body, {
      contentType: 'text/plain',
      inferenceHeaderContentLength: encoded.headers['Inference-Header-Content-Length'],
      limits: DEFAULT_LIMITS,
    });
    expect(Array.from(decoded.inputs[0]?.data as Int32Array)).toEqual([5, 6]);
  });

  it("reads SageMaker's application/vnd.sagemaker-triton.binary+json;json-header-size=N as the binary extension", () => {
    // Prepare
    const encoded = encodeInferenceRequest([tensor('x', 'FP16', [2], [0x3c00, 0xc000])], { binary: true });
    const size = encoded.headers['Inference-Header-Content-Length'];

    // Act
    const decoded = decodeInferenceRequest(encoded.body, {
      contentType: `application/vnd.sagemaker-triton.binary+json;json-header-size=${size}`,
      limits: DEFAULT_LIMITS,
    });

    // Assess
    expect(Array.from(decoded.inputs[0]?.data as Uint16Array)).toEqual([0x3c00, 0xc000]);
  });

  it('refuses the SageMaker binary type without json-header-size', () => {
    const error = thrown(() =>
      decodeInferenceRequest(jsonBytes(request), {
        contentType: 'application/vnd.sagemaker-triton.binary+json',
        limits: DEFAULT_LIMITS,
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain('needs a json-header-size parameter');
  });

  it('refuses a malformed json-header-size', () => {
    const error = thrown(() =>
      decodeInferenceRequest(jsonBytes(request), {
        contentType: 'application/vnd.sagemaker-triton.binary+json; json-header-size=-4',
        limits: DEFAULT_LIMITS,
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain('the json-header-size parameter of the Content-Type must be the byte length');
  });
});

describe('raw binary form (Inference-Header-Content-Length: 0)', () => {
  const spec = (shape: number[], datatype: TensorSpec['datatype'] = 'FP32'): TensorSpec[] => [
    { name: 'input', datatype, shape },
  ];

  function decodeRaw(body: Uint8Array, modelInputs?: readonly TensorSpec[], limits = {}) {
    return decodeInferenceRequest(body, {
      contentType: 'application/octet-stream',
      inferenceHeaderContentLength: '0',
      limits: { ...DEFAULT_LIMITS, ...limits },
      ...(modelInputs === undefined ? {} : { modelInputs }),
    });
  }

  it('takes the whole body as the single input, infers the one dynamic dimension and defaults outputs to binary', () => {
    // Prepare: 6 floats for a [-1, 3] input
    const { body, headers } = encodeRawInferenceRequest({
      datatype: 'FP32',
      data: new Float32Array([1, 2, 3, 4, 5, 6]),
    });

    // Act
    const decoded = decodeRaw(body, spec([-1, 3]));

    // Assess
    expect(headers['Inference-Header-Content-Length']).toBe('0');
    expect(decoded.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    ]);
    expect(decoded.binaryOutputByDefault).toBe(true);
    expect(decoded.outputs).toBeUndefined();
  });

  it('accepts a fully static shape whose element count matches', () => {
    const decoded = decodeRaw(new Uint8Array([1, 0, 1]), spec([1, 3], 'BOOL'));
    expect(decoded.inputs[0]?.shape).toEqual([1, 3]);
    expect(Array.from(decoded.inputs[0]?.data as Uint8Array)).toEqual([1, 0, 1]);
  });

  it('reads raw BYTES as a length-prefixed sequence', () => {
    const { body } = encodeRawInferenceRequest({ datatype: 'BYTES', data: ['a', 'bc'] });
    const decoded = decodeRaw(body, spec([-1], 'BYTES'));
    expect(decoded.inputs[0]).toEqual({ name: 'input', datatype: 'BYTES', shape: [2], data: ['a', 'bc'] });
  });

  it.each([
    [
      'without the model inputs',
      undefined,
      "needs a model with exactly one input, and the model's inputs are not known here",
    ],
    [
      'for a model with two inputs',
      [...spec([1]), { name: 'b', datatype: 'FP32', shape: [1] }] as TensorSpec[],
      'needs a model with exactly one input, and this model has 2 inputs; send a JSON inference header naming each input instead',
    ],
  ])('refuses the raw form %s', (_label, modelInputs, message) => {
    const error = thrown(() => decodeRaw(new Uint8Array(4), modelInputs));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain(message);
  });

  it.each([
    [
      'a byte count that is not whole elements',
      6,
      [-1],
      'input "input": the raw body is 6 bytes, not a whole number of FP32 elements (4 bytes each)',
    ],
    [
      'an element count the dynamic dimension cannot fill',
      16,
      [-1, 3],
      'input "input": 4 FP32 elements in the raw body do not fill shape [-1,3] (a multiple of 3 is needed); send the JSON header form (Inference-Header-Content-Length: N) with the shape instead',
    ],
    [
      'two dynamic dimensions',
      16,
      [-1, -1],
      'input "input": the model declares shape [-1,-1] with 2 dynamic dimensions, so a raw body cannot say its shape; send the JSON header form',
    ],
    [
      'a static shape of another size',
      16,
      [1, 3],
      'input "input": the model declares shape [1,3] (3 elements), but the raw body holds 4 FP32 elements',
    ],
  ])('refuses %s', (_label, bytes, shape, message) => {
    const error = thrown(() => decodeRaw(new Uint8Array(bytes), spec(shape)));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain(message);
  });

  it('refuses a raw body over maxElements with a 413', () => {
    const error = thrown(() => decodeRaw(new Uint8Array(44), spec([-1]), { maxElements: 10 }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error.message).toBe('input "input": the raw body holds 11 elements; the limit is 10 (limits.maxElements)');
  });
});

describe('encodeInferenceResponse wire format', () => {
  const probabilities = tensor('probabilities', 'FP32', [1, 2], [0.25, 0.75]);
  const label = tensor('label', 'INT64', [1], [1n]);
  const response = {
    modelName: 'iris',
    modelVersion: '3',
    id: 'abc',
    outputs: [label, probabilities],
    outputParameters: { probabilities: { classes: ['setosa', 'versicolor'] } },
  };

  it('answers plain application/json when no output is binary, with flat data and merged parameters', () => {
    // Act
    const encoded = encodeInferenceResponse(response, { binaryOutputByDefault: false });

    // Assess
    expect(encoded.headers).toEqual({ 'Content-Type': 'application/json' });
    expect(JSON.parse(new TextDecoder().decode(encoded.body))).toEqual({
      model_name: 'iris',
      model_version: '3',
      id: 'abc',
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [1], data: [1] },
        {
          name: 'probabilities',
          datatype: 'FP32',
          shape: [1, 2],
          parameters: { classes: ['setosa', 'versicolor'] },
          data: [0.25, 0.75],
        },
      ],
    });
  });

  it('puts requested binary outputs after the JSON header with binary_data_size and the two headers', () => {
    // Act
    const encoded = encodeInferenceResponse(response, {
      outputs: [
        { name: 'label', binary: false },
        { name: 'probabilities', binary: true },
      ],
      binaryOutputByDefault: false,
    });

    // Assess
    const length = Number(encoded.headers['Inference-Header-Content-Length']);
    expect(encoded.headers['Content-Type']).toBe('application/octet-stream');
    expect(JSON.parse(new TextDecoder().decode(encoded.body.subarray(0, length)))).toEqual({
      model_name: 'iris',
      model_version: '3',
      id: 'abc',
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [1], data: [1] },
        {
          name: 'probabilities',
          datatype: 'FP32',
          shape: [1, 2],
          parameters: { classes: ['setosa', 'versicolor'], binary_data_size: 8 },
        },
      ],
    });
    // Little-endian float32 0.25 and 0.75
    expect(Array.from(encoded.body.subarray(length))).toEqual([0, 0, 0x80, 0x3e, 0, 0, 0x40, 0x3f]);
  });

  it('sends unlisted outputs binary when binary_data_output is set, and listed ones as asked', () => {
    const encoded = encodeInferenceResponse(response, {
      outputs: [{ name: 'label', binary: false }],
      binaryOutputByDefault: true,
    });
    const decoded = JSON.parse(
      new TextDecoder().decode(encoded.body.subarray(0, Number(encoded.headers['Inference-Header-Content-Length']))),
    ) as { outputs: { name: string; data?: unknown; parameters?: { binary_data_size?: number } }[] };
    expect(decoded.outputs.map((o) => [o.name, o.data !== undefined, o.parameters?.binary_data_size])).toEqual([
      ['label', true, undefined],
      ['probabilities', false, 8],
    ]);
  });

  it('omits id when the response has none', () => {
    const encoded = encodeInferenceResponse(
      { modelName: 'm', modelVersion: '1', outputs: [] },
      { binaryOutputByDefault: false },
    );
    expect(new TextDecoder().decode(encoded.body)).toBe('{"model_name":"m","model_version":"1","outputs":[]}');
  });

  it('refuses to encode a tensor whose data does not match its shape (a server bug, so a plain Error)', () => {
    const broken = { name: 'y', datatype: 'FP32' as const, shape: [3], data: new Float32Array(2) };
    const error = thrown(() =>
      encodeInferenceResponse(
        { modelName: 'm', modelVersion: '1', outputs: [broken] },
        { binaryOutputByDefault: false },
      ),
    );
    expect(error).not.toBeInstanceOf(BadRequestError);
    expect(error.message).toBe('tensor "y": shape [3] needs 3 elements, its data has 2');
  });
});

describe('decodeInferenceResponse', () => {
  it('matches Inference-Header-Content-Length case-insensitively and returns outputParameters', () => {
    // Prepare
    const encoded = encodeInferenceResponse(
      {
        modelName: 'm',
        modelVersion: '1',
        outputs: [tensor('y', 'UINT8', [2], [1, 2])],
        outputParameters: { y: { note: 'n' } },
      },
      { binaryOutputByDefault: true },
    );
    const lowerCased = { 'inference-header-content-length': encoded.headers['Inference-Header-Content-Length'] };

    // Act
    const decoded = decodeInferenceResponse(encoded.body, lowerCased);

    // Assess
    expect(headerValue(lowerCased, 'Inference-Header-Content-Length')).toBe(
      encoded.headers['Inference-Header-Content-Length'],
    );
    expect(decoded.outputParameters).toEqual({ y: { note: 'n' } });
    expect(Array.from(decoded.outputs[0]?.data as Uint8Array)).toEqual([1, 2]);
  });

  it('surfaces an {"error"} body\'s message as InvalidInferenceResponseError', () => {
    const error = thrown(() => decodeInferenceResponse(jsonBytes({ error: 'model "x" not found' }), {}));
    expect(error).toBeInstanceOf(InvalidInferenceResponseError);
    expect(error.message).toBe('the server answered with an error: model "x" not found');
  });

  it('wraps malformed responses in InvalidInferenceResponseError', () => {
    const error = thrown(() =>
      decodeInferenceResponse(jsonBytes({ model_name: 'm', model_version: '1', outputs: [{ name: 'y' }] }), {}),
    );
    expect(error).toBeInstanceOf(InvalidInferenceResponseError);
    expect(error.message).toBe(
      'invalid inference response: output "y": unknown datatype missing; use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES',
    );
  });
});

describe('decodeInferenceResponse against hostile servers', () => {
  it('refuses an output shape larger than the body could hold before allocating it', () => {
    const body = jsonBytes({
      model_name: 'm',
      model_version: '1',
      outputs: [{ name: 'y', datatype: 'FP64', shape: [2 ** 40], data: [1] }],
    });
    const error = thrown(() => decodeInferenceResponse(body, {}));
    expect(error).toBeInstanceOf(InvalidInferenceResponseError);
    expect(error.message).toBe(
      'invalid inference response: output "y": shape needs 1099511627776 elements, more than the JSON body could hold',
    );
  });
});
