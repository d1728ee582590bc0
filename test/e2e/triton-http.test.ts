/**
 * What Triton's HTTP clients do, over real HTTP to the gateway and the real handlers and onnxruntime: any
 * Content-Type on JSON, compression both ways (and its limits), the model configuration, classification, the
 * extensions advertised, sequence parameters served as Triton serves them on a stateless model, and refusals where
 * Triton would act differently (NUL in BYTES, load/unload).
 */
import { gunzipSync, gzipSync, inflateSync, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { buildZipMapClassifier } from '../../tools/onnx/index.js';
import { identityModel, startHardened, type Answer, type HardenedStack } from '../hardening/fixture.js';

let stack: HardenedStack;
const LABELS = ['setosa', 'versicolor', 'virginica'];

beforeAll(async () => {
  stack = await startHardened();
  const models: [string, Uint8Array][] = [
    ['floats', identityModel('FP32', ['N', 4])],
    ['int64', identityModel('INT64')],
    ['uint64', identityModel('UINT64')],
    ['bytes', identityModel('BYTES')],
    ['flowers', buildZipMapClassifier({ labels: LABELS }).bytes],
  ];
  for (const [name, bytes] of models) {
    const outcome = await stack.register(name, `${name}.onnx`, bytes);
    expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
  }
});
afterAll(async () => {
  await stack?.close();
});

const infer = (model: string, body: Uint8Array | string, headers: Record<string, string> = {}) =>
  stack.send({ method: 'POST', path: `/v2/models/${model}/infer`, headers, body });

const json = (answer: Answer) => JSON.parse(answer.text) as Record<string, unknown>;

function floatsBody(rows: number): string {
  const data = Array.from({ length: rows * 4 }, (_, i) => (i % 7) / 4 - 0.5);
  return JSON.stringify({ id: 'r', inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], data }] });
}

describe('request forms: Content-Type is never consulted (tritonclient.http.aio sends octet-stream JSON)', () => {
  it.each(['application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded'])(
    'reads JSON sent as %s',
    async (type) => {
      const answer = await infer('floats', floatsBody(1), { 'content-type': type });
      expect(answer.status, answer.text).toBe(200);
      expect(json(answer)).toMatchObject({
        model_name: 'floats',
        outputs: [{ name: 'output', data: [-0.5, -0.25, 0, 0.25] }],
      });
    },
  );
});

describe('request compression (Content-Encoding)', () => {
  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
  ] as const)('decodes %s JSON and binary bodies, with the same answer as uncompressed', async (coding, compress) => {
    const plain = await infer('floats', floatsBody(3));
    const compressed = await infer('floats', compress(floatsBody(3)), { 'content-encoding': coding });
    expect(compressed.status, compressed.text).toBe(200);
    expect(compressed.text).toBe(plain.text);

    const binary = encodeInferenceRequest(
      [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, -0, 3, 4]) }],
      { binary: true, binaryOutput: true },
    );
    const answer = await infer('floats', compress(binary.body), { ...binary.headers, 'content-encoding': coding });
    expect(answer.status, answer.text).toBe(200);
    const decoded = decodeInferenceResponse(answer.bytes, answer.headers as Record<string, string>);
    expect(Array.from(decoded.outputs[0]?.data as Float32Array)).toEqual([1, -0, 3, 4]);
  });

  it('answers a gzip bomb with a 413 naming the limit, never decoding past it, and serves the next request', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.byteLength).toBeLessThan(256 * 1024);
    const answer = await infer('floats', bomb, { 'content-encoding': 'gzip' });
    expect(answer.status).toBe(413);
    expect(json(answer).error).toBe(
      'the request body decompresses (Content-Encoding: gzip) to more than 10485760 bytes, the limit (limits.maxBodyBytes): send fewer rows per request',
    );
    expect((await infer('floats', floatsBody(1))).status).toBe(200);
  });

  it('answers an unsupported coding with 415 and Accept-Encoding, and corrupt data with 400', async () => {
    const brotli = await infer('floats', floatsBody(1), { 'content-encoding': 'br' });
    expect(brotli.status).toBe(415);
    expect(brotli.headers['accept-encoding']).toBe('gzip, deflate');
    expect(json(brotli).error).toBe(
      'unsupported Content-Encoding "br": send the body as is, or compressed with gzip or deflate',
    );

    const corrupt = Buffer.concat([gzipSync(floatsBody(1)).subarray(0, 20), Buffer.from('not gzip at all')]);
    const answer = await infer('floats', corrupt, { 'content-encoding': 'gzip' });
    expect(answer.status).toBe(400);
    expect(json(answer).error).toMatch(/^the request body is not valid gzip data \(Content-Encoding: gzip\): /);
  });

  it('takes a body without its coding signature as already decoded (as API Gateway may hand it over)', async () => {
    const answer = await infer('floats', floatsBody(1), { 'content-encoding': 'gzip' });
    expect(answer.status, answer.text).toBe(200);
  });
});

describe('response compression (Accept-Encoding)', () => {
  it.each([
    ['gzip', 'gzip', gunzipSync],
    ['deflate', 'deflate', inflateSync],
    ['deflate;q=0.5, gzip;q=0.9', 'gzip', gunzipSync],
    ['*', 'gzip', gunzipSync],
  ] as const)('answers Accept-Encoding %j with %s above 1 KiB', async (accept, coding, decompress) => {
    const plain = await infer('floats', floatsBody(64));
    const answer = await infer('floats', floatsBody(64), { 'accept-encoding': accept });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBe(coding);
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(decompress(answer.bytes).toString('utf8')).toBe(plain.text);
    expect(answer.bytes.byteLength).toBeLessThan(plain.bytes.byteLength);
  });

  it('keeps Inference-Header-Content-Length the uncompressed header length, as Triton does', async () => {
    const request = encodeInferenceRequest(
      [{ name: 'input', datatype: 'FP32', shape: [128, 4], data: new Float32Array(512).fill(0.5) }],
      { binary: true, binaryOutput: true },
    );
    const answer = await infer('floats', request.body, { ...request.headers, 'accept-encoding': 'gzip' });
    expect(answer.headers['content-encoding']).toBe('gzip');
    const body = gunzipSync(answer.bytes);
    const decoded = decodeInferenceResponse(body, {
      'inference-header-content-length': answer.headers['inference-header-content-length'] as string,
    });
    expect(Array.from(decoded.outputs[0]?.data as Float32Array)).toEqual(new Array(512).fill(0.5));
  });

  it('compresses nothing but inference answers, as Triton: metadata, index, config and errors stay plain', async () => {
    // aiohttp (tritonclient.http.aio) sends Accept-Encoding: gzip on every request and decodes only infer answers.
    const headers = { 'accept-encoding': 'gzip, deflate' };
    const padding = 'x'.repeat(2048); // long enough to be compressed, were it an inference answer
    for (let index = 0; index < 8; index++) {
      const outcome = await stack.register('junk', `refused-${index}-${padding.slice(0, 60)}.onnx`, Buffer.from('no'));
      expect(outcome.kind).toBe('rejected');
    }
    const answers = [
      await stack.send({ method: 'POST', path: '/v2/repository/index', headers, body: '{}' }),
      await infer(
        'floats',
        JSON.stringify({ inputs: [{ name: padding, datatype: 'FP32', shape: [1], data: [1] }] }),
        headers,
      ),
    ];
    const small = [
      await stack.send({ method: 'GET', path: '/v2', headers }),
      await stack.send({ method: 'GET', path: '/v2/models/flowers', headers }),
      await stack.send({ method: 'GET', path: '/v2/models/flowers/config', headers }),
      await stack.send({ method: 'GET', path: '/v2/models/nothing-here', headers }),
    ];
    expect([...answers, ...small].map((answer) => answer.status)).toEqual([200, 400, 200, 200, 200, 404]);
    for (const answer of small) {
      expect(answer.headers['content-encoding'], answer.text.slice(0, 80)).toBeUndefined();
      expect(() => JSON.parse(answer.text)).not.toThrow();
    }
    // Each above the 1 KiB from which inference answers are compressed (the index through its refused uploads).
    expect(answers.filter((answer) => answer.bytes.byteLength < 1024).map((answer) => answer.text)).toEqual([]);
    for (const answer of answers) {
      expect(answer.headers['content-encoding'], answer.text.slice(0, 80)).toBeUndefined();
      expect(() => JSON.parse(answer.text)).not.toThrow();
    }
    expect((await infer('floats', floatsBody(64), headers)).headers['content-encoding']).toBe('gzip');
  });

  it('leaves small responses, unknown codings and q=0 uncompressed', async () => {
    for (const [accept, rows] of [
      ['gzip', 1],
      ['br', 64],
      ['gzip;q=0', 64],
      ['identity', 64],
    ] as const) {
      const answer = await infer('floats', floatsBody(rows), { 'accept-encoding': accept });
      expect(answer.status).toBe(200);
      expect(answer.headers['content-encoding'], accept).toBeUndefined();
      expect(json(answer).model_name).toBe('floats');
    }
  });
});

describe('sequence parameters on a stateless model, as Triton serves them', () => {
  it('answers a request with sequence_id, sequence_start and sequence_end exactly as one without', async () => {
    const plain = await infer('floats', floatsBody(2));
    const sequences = [
      { sequence_id: 7, sequence_start: true, sequence_end: false },
      { sequence_id: 'correlation-a', sequence_end: true },
      { sequence_id: 2 ** 63 },
    ];
    for (const parameters of sequences) {
      const answer = await infer('floats', JSON.stringify({ ...JSON.parse(floatsBody(2)), parameters }));
      expect(answer.status, answer.text).toBe(200);
      expect(json(answer)).toEqual(json(plain));
    }
  });

  it('refuses sequence parameters of the wrong type with 400, as Triton does', async () => {
    for (const [parameters, message] of [
      [{ sequence_id: -1 }, 'parameter "sequence_id" must be a non-negative integer or a string'],
      [{ sequence_id: 1.5 }, 'parameter "sequence_id" must be a non-negative integer or a string'],
      [{ sequence_id: 1, sequence_start: 1 }, 'parameter "sequence_start" must be true or false'],
      [{ sequence_end: 'yes' }, 'parameter "sequence_end" must be true or false'],
    ] as const) {
      const answer = await infer('floats', JSON.stringify({ ...JSON.parse(floatsBody(1)), parameters }));
      expect(answer.status).toBe(400);
      expect(json(answer).error).toBe(message);
    }
  });
});

describe('JSON as Triton reads and writes it, over HTTP', () => {
  it('reads bare NaN/Infinity tokens, and prints -0 as -0.0', async () => {
    const body = '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[NaN,Infinity,-Infinity,-0.0]}]}';
    const answer = await infer('floats', body);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.text).toContain('"data":["NaN","Infinity","-Infinity",-0.0]');
  });

  it('reads 64-bit JSON integers exactly and refuses out-of-range ones as sent', async () => {
    const int64 = await infer(
      'int64',
      '{"inputs":[{"name":"input","datatype":"INT64","shape":[2],"data":[9007199254740993,-9223372036854775808]}]}',
    );
    expect(json(int64).outputs).toEqual([
      { name: 'output', datatype: 'INT64', shape: [2], data: ['9007199254740993', '-9223372036854775808'] },
    ]);
    const uint64 = await infer(
      'uint64',
      '{"inputs":[{"name":"input","datatype":"UINT64","shape":[1],"data":[18446744073709551616]}]}',
    );
    expect(uint64.status).toBe(400);
    expect(json(uint64).error).toBe(
      'input "input": data[0] is 18446744073709551616, outside the UINT64 range [0, 18446744073709551615]',
    );
  });

  it('refuses BYTES with NUL in JSON and binary, then serves the next request', async () => {
    const jsonNul = await infer(
      'bytes',
      '{"inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":["ab\\u0000cd"]}]}',
    );
    expect(jsonNul.status).toBe(400);
    expect(json(jsonNul).error).toMatch(/^input "input": data\[0\] contains a NUL character/);
    const binary = encodeInferenceRequest([{ name: 'input', datatype: 'BYTES', shape: [1], data: ['ab\0cd'] }], {
      binary: true,
    });
    const binaryNul = await infer('bytes', binary.body, binary.headers);
    expect(binaryNul.status).toBe(400);
    expect(json(binaryNul).error).toMatch(/^input "input": BYTES element 0 contains a NUL character/);
    const good = await infer('bytes', '{"inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":["abcd"]}]}');
    expect(json(good).outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [1], data: ['abcd'] }]);
  });
});

describe('Triton extensions', () => {
  it('advertises only what is served', async () => {
    const server = json(await stack.send({ method: 'GET', path: '/v2' }));
    expect(server.extensions).toEqual([
      'binary_tensor_data',
      'classification',
      'model_configuration',
      'classification_zipmap',
    ]);
  });

  it("serves the model configuration in Triton's shape, with and without a version", async () => {
    const latest = await stack.send({ method: 'GET', path: '/v2/models/flowers/config' });
    const pinned = await stack.send({ method: 'GET', path: '/v2/models/flowers/versions/1/config' });
    expect(latest.status).toBe(200);
    expect(json(latest)).toEqual({
      name: 'flowers',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      version_policy: { all: {} },
      // 16,777,216 elements (limits.maxElements) over 4 features per row.
      max_batch_size: 4194304,
      input: [{ name: 'float_input', data_type: 'TYPE_FP32', dims: [4] }],
      output: [
        { name: 'output_label', data_type: 'TYPE_STRING', dims: [1], reshape: { shape: [] } },
        { name: 'output_probability', data_type: 'TYPE_FP32', dims: [3] },
      ],
      default_model_filename: 'model.onnx',
      parameters: {},
    });
    expect(pinned.text).toBe(latest.text);
    expect((await stack.send({ method: 'GET', path: '/v2/models/flowers/versions/9/config' })).status).toBe(404);
    expect((await stack.send({ method: 'GET', path: '/v2/models/nothing/config' })).status).toBe(404);
  });

  it('classifies as Triton does: top-k "score:index:label" per row, JSON or binary', async () => {
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [6.3, 3.3, 6, 2.5],
    ];
    const input = { name: 'float_input', datatype: 'FP32', shape: [2, 4], data: rows.flat() };
    const probabilities = json(
      await infer('flowers', JSON.stringify({ inputs: [input], outputs: [{ name: 'output_probability' }] })),
    );
    const scores = (probabilities.outputs as { data: number[] }[])[0]!.data;
    const expected = [0, 1].flatMap((row) => {
      const ranked = [0, 1, 2].sort((a, b) => scores[row * 3 + b]! - scores[row * 3 + a]!).slice(0, 2);
      return ranked.map((c) => `${Math.fround(scores[row * 3 + c]!).toFixed(6)}:${c}:${LABELS[c]}`);
    });

    const request = {
      inputs: [input],
      outputs: [{ name: 'output_probability', parameters: { classification: 2, binary_data: false } }],
    };
    const answer = json(await infer('flowers', JSON.stringify(request)));
    expect(answer.outputs).toEqual([{ name: 'output_probability', datatype: 'BYTES', shape: [2, 2], data: expected }]);

    const binary = encodeInferenceRequest(
      [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: new Float32Array(rows.flat()) }],
      { binary: true, outputs: [{ name: 'output_probability', binary: true, classCount: 2 }] },
    );
    const binaryAnswer = await infer('flowers', binary.body, binary.headers);
    const decoded = decodeInferenceResponse(binaryAnswer.bytes, binaryAnswer.headers as Record<string, string>);
    expect(decoded.outputs[0]).toEqual({
      name: 'output_probability',
      datatype: 'BYTES',
      shape: [2, 2],
      data: expected,
    });
  });

  it('refuses classification of a BYTES output and a malformed class count', async () => {
    const input = { name: 'float_input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] };
    const onLabels = await infer(
      'flowers',
      JSON.stringify({ inputs: [input], outputs: [{ name: 'output_label', parameters: { classification: 1 } }] }),
    );
    expect(onLabels.status).toBe(400);
    expect(json(onLabels).error).toMatch(/^output "output_label" is BYTES, which has no scores to classify/);
    const negative = await infer(
      'flowers',
      JSON.stringify({
        inputs: [input],
        outputs: [{ name: 'output_probability', parameters: { classification: -1 } }],
      }),
    );
    expect(negative.status).toBe(400);
    expect(json(negative).error).toMatch(/"classification" must be a non-negative integer/);
  });

  it('refuses load/unload and shared memory with what to do instead', async () => {
    const load = await stack.send({ method: 'POST', path: '/v2/repository/models/flowers/load', body: '{}' });
    expect(load.status).toBe(400);
    expect(json(load).error).toMatch(/^models are not loaded on request here: every READY version is served/);
    expect((await stack.send({ method: 'POST', path: '/v2/repository/models/flowers/unload' })).status).toBe(400);
    const shm = await infer(
      'floats',
      JSON.stringify({
        ...JSON.parse(floatsBody(1)),
        outputs: [{ name: 'output', parameters: { shared_memory_region: 'r' } }],
      }),
    );
    expect(shm.status).toBe(400);
    expect(json(shm).error).toMatch(/asks for shared memory/);
  });
});
