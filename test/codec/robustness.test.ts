/**
 * Whatever arrives, decoding answers with a request or with a client error (400, 413, 415): never another
 * exception, never a hang. fast-check generates the junk; failures shrink to a minimal body.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import type { Limits } from '../../functions/core/catalog.js';
import { decodeInferenceRequest, elementCount } from '../../functions/core/codec/index.js';
import type { DecodeOptions } from '../../functions/core/codec/index.js';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../functions/core/errors.js';
import type { TensorSpec } from '../../functions/core/types.js';
import { DATATYPES, jsonBytes } from './helpers.js';

// Small limits keep every run cheap and make the limit checks reachable.
const LIMITS: Limits = {
  ...DEFAULT_LIMITS,
  maxBodyBytes: 4096,
  maxElements: 256,
  maxJsonDepth: 8,
  maxBytesElementSize: 16,
  maxInputs: 4,
  maxOutputs: 4,
  maxIdLength: 16,
};

/** Decodes and checks the outcome: a consistent request, or one of the three client errors. */
function decodeSafely(
  body: Uint8Array,
  options: Omit<DecodeOptions, 'limits'>,
  limits: Limits = LIMITS,
): 'ok' | number {
  try {
    const request = decodeInferenceRequest(body, { ...options, limits });
    for (const input of request.inputs) expect(input.data.length).toBe(elementCount(input.shape));
    return 'ok';
  } catch (error) {
    const clientError =
      error instanceof BadRequestError ||
      error instanceof PayloadTooLargeError ||
      error instanceof UnsupportedMediaTypeError;
    if (!clientError) throw error;
    expect(error.message).not.toMatch(/\n\s+at /);
    return error.statusCode;
  }
}

const contentTypes = fc.option(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/octet-stream',
      'text/plain',
      'multipart/form-data; boundary=zz',
      'application/vnd.sagemaker-triton.binary+json',
    ),
    fc.nat({ max: 300 }).map((n) => `application/vnd.sagemaker-triton.binary+json;json-header-size=${n}`),
    fc.string({ maxLength: 30 }),
  ),
  { nil: undefined },
);

const headerLengths = fc.option(
  fc.oneof(
    fc.nat({ max: 300 }).map(String),
    fc.constantFrom('0', '-1', '1.5', ' 12 ', 'abc', '', '1e3', '99999999999999999999'),
    fc.string({ maxLength: 6 }),
  ),
  { nil: undefined },
);

const specs: fc.Arbitrary<TensorSpec[] | undefined> = fc.option(
  fc.array(
    fc.record({
      name: fc.constantFrom('a', 'b'),
      datatype: fc.constantFrom(...DATATYPES),
      shape: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }),
    }),
    { maxLength: 2 },
  ),
  { nil: undefined },
);

/** Request-shaped JSON whose every field may be right, nearly right, or junk. */
const requestLike = fc.record(
  {
    id: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })),
    parameters: fc.oneof(
      fc.record({ binary_data_output: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })) }),
      fc.jsonValue({ maxDepth: 12 }),
    ),
    inputs: fc.array(
      fc.record(
        {
          name: fc.oneof(fc.constantFrom('x', 'y', ''), fc.jsonValue({ maxDepth: 1 })),
          datatype: fc.oneof(fc.constantFrom(...DATATYPES), fc.jsonValue({ maxDepth: 1 })),
          shape: fc.oneof(
            fc.array(fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constantFrom(2 ** 40, 1.5, 2 ** 53)), {
              maxLength: 4,
            }),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          data: fc.oneof(
            fc.array(
              fc.oneof(
                fc.integer(),
                fc.double(),
                fc.boolean(),
                fc.string({ maxLength: 20 }),
                fc.constantFrom('NaN', '-Infinity', '9007199254740993'),
              ),
              { maxLength: 30 },
            ),
            fc.jsonValue({ maxDepth: 12 }),
          ),
          parameters: fc.oneof(
            fc.record({ binary_data_size: fc.oneof(fc.nat({ max: 64 }), fc.jsonValue({ maxDepth: 1 })) }),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 5 },
    ),
    outputs: fc.oneof(
      fc.array(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('o', 'p'), fc.jsonValue({ maxDepth: 1 })),
            parameters: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 5 },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  },
  { requiredKeys: [] },
);

describe('decodeInferenceRequest on junk', () => {
  it('answers random bytes under random headers with a request or a 400/413/415', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        contentTypes,
        headerLengths,
        specs,
        (body, contentType, length, modelInputs) => {
          decodeSafely(body, {
            ...(contentType === undefined ? {} : { contentType }),
            ...(length === undefined ? {} : { inferenceHeaderContentLength: length }),
            ...(modelInputs === undefined ? {} : { modelInputs }),
          });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('answers request-shaped JSON junk with a request or a 400/413', () => {
    const outcomes = new Set<string | number>();
    fc.assert(
      fc.property(requestLike, (document) => {
        outcomes.add(decodeSafely(jsonBytes(document), { contentType: 'application/json' }));
      }),
      { numRuns: 2000 },
    );
    // The generator must reach both valid requests and refusals, or this test proves little.
    expect(outcomes).toContain('ok');
    expect(outcomes).toContain(400);
  });

  it('answers a request-shaped JSON header followed by random binary bytes with a request or a 400/413', () => {
    fc.assert(
      fc.property(
        requestLike,
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: -3, max: 3 }),
        (document, tail, skew) => {
          const header = jsonBytes(document);
          const body = new Uint8Array(header.byteLength + tail.byteLength);
          body.set(header);
          body.set(tail, header.byteLength);
          decodeSafely(body, { inferenceHeaderContentLength: String(Math.max(0, header.byteLength + skew)) });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('answers raw bodies for random model inputs with a request or a 400/413', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), specs, (body, modelInputs) => {
        decodeSafely(body, {
          inferenceHeaderContentLength: '0',
          ...(modelInputs === undefined ? {} : { modelInputs }),
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('answers deep nesting anywhere in the document with a 400', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 9, max: 20_000 }),
        fc.constantFrom('parameters', 'data', 'outputs', 'shape', 'id'),
        (depth, where) => {
          const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
          const input = `{"name":"x","datatype":"FP32","shape":${where === 'shape' ? deep : '[1]'},"data":${where === 'data' ? deep : '[1]'}}`;
          const body = `{"id":${where === 'id' ? deep : '"a"'},"parameters":${where === 'parameters' ? `{"p":${deep}}` : '{}'},"inputs":[${input}],"outputs":${where === 'outputs' ? deep : '[]'}}`;
          const status = decodeSafely(
            new TextEncoder().encode(body),
            { contentType: 'application/json' },
            { ...LIMITS, maxBodyBytes: 1_000_000 },
          );
          expect(status).toBe(400);
        },
      ),
      { numRuns: 50 },
    );
  });
});
