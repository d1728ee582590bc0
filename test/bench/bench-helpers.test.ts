/**
 * The benchmark's own helpers: sampling, the inputs it derives from a model's metadata, and the events and files
 * it hands to handlers and child processes. No timings are asserted; only what the numbers are computed from.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  binaryRequest,
  inferEvent,
  inputTensor,
  jsonRequest,
  modelInputs,
  writeInputsFile,
  type InputJson,
} from '../../bench/inputs.js';
import { median, medians, timeAlternating } from '../../bench/stats.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { decodeInferenceRequest } from '../../functions/core/codec/index.js';
import { fromApiGatewayEvent } from '../../functions/transport/http.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('stats', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('runs every alternative warmup + blocks x perBlock times, in turns of one block each', async () => {
    const order: string[] = [];
    const samples = await timeAlternating(
      { a: () => order.push('a'), b: async () => void order.push('b') },
      { warmup: 1, blocks: 3, perBlock: 2 },
    );

    expect(order.join('')).toBe('abaabbaabbaabb');
    expect(samples.a).toHaveLength(6);
    expect(samples.b).toHaveLength(6);
    expect(samples.a.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
    expect(Object.keys(medians(samples))).toEqual(['a', 'b']);
  });
});

describe('inputs', () => {
  it('gives dynamic dimensions the size 1 and fills every element of the declared type', () => {
    const image = inputTensor({ name: 'x', datatype: 'FP32', shape: [-1, 3, 2, 2] });
    const ids = inputTensor({ name: 'ids', datatype: 'INT64', shape: [2, -1] });

    expect(image.shape).toEqual([1, 3, 2, 2]);
    expect(image.data).toBeInstanceOf(Float32Array);
    expect(image.data.length).toBe(12);
    expect(new Set(Array.from(image.data as Float32Array)).size).toBeGreaterThan(1);
    expect(ids.shape).toEqual([2, 1]);
    expect(ids.data).toBeInstanceOf(BigInt64Array);
  });

  it('is deterministic, so every process of a run sends the same tensors', () => {
    const specs = [{ name: 'x', datatype: 'FP32' as const, shape: [4] }];

    expect(modelInputs(specs)[0]?.data).toEqual(modelInputs(specs)[0]?.data);
  });

  it('builds API Gateway events whose body decodes back to the same tensors, binary and JSON', () => {
    const tensors = modelInputs([{ name: 'x', datatype: 'FP32', shape: [1, 5] }]);
    for (const request of [binaryRequest(tensors), jsonRequest(tensors)]) {
      const event = inferEvent('m', request);
      const http = fromApiGatewayEvent(event, 'r');

      const decoded = decodeInferenceRequest(http.body, {
        contentType: http.headers['content-type'],
        inferenceHeaderContentLength: http.headers['inference-header-content-length'],
        limits: DEFAULT_LIMITS,
      });

      expect(http.method).toBe('POST');
      expect(http.path).toBe('/v2/models/m/infer');
      expect(event.isBase64Encoded).toBe(true);
      expect(decoded.inputs[0]?.data).toEqual(tensors[0]?.data);
    }
  });

  it('writes the inputs file the child processes read: onnxruntime types, dims and the raw bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-inputs-'));
    dirs.push(dir);
    const tensors = [
      ...modelInputs([{ name: 'x', datatype: 'FP32', shape: [2, 2] }]),
      { name: 's', datatype: 'BYTES' as const, shape: [2], data: ['a', 'b'] },
    ];

    writeInputsFile(join(dir, 'inputs.json'), tensors);
    const [x, s] = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as InputJson[];

    expect(x).toMatchObject({ name: 'x', type: 'float32', dims: [2, 2] });
    const bytes = Buffer.from(x?.data as string, 'base64');
    expect(Array.from(new Float32Array(new Uint8Array(bytes).buffer))).toEqual(
      Array.from(tensors[0]?.data as Float32Array),
    );
    expect(s).toEqual({ name: 's', type: 'string', dims: [2], data: ['a', 'b'] });
  });
});
