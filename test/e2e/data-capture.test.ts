/**
 * Data capture under `npm start`'s wiring (`startLocal`): real onnxruntime, the embedded S3 server enforcing each
 * function's deployed role. Capture files are SageMaker Data Capture records read with the documented field names,
 * their input and output are the request and the answer byte for byte (JSON, and BASE64 for the binary extension),
 * batches take fewer PUTs than requests, a 0% policy writes nothing, and a capture store that fails (a role without
 * the capture grant: every write denied) loses no request.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import type { AccessDenial } from '../../functions/local/s3-access.js';
import { bucketStatements, inferAccess, type BucketAccess } from '../../infra/function-grants.js';
import { linearModel, linearRequest } from '../flow/fixture.js';

/** One line of a capture file, with SageMaker's documented field names. */
interface SageMakerRecord {
  captureData: {
    endpointInput: { observedContentType: string; mode: string; data: string; encoding: string };
    endpointOutput: { observedContentType: string; mode: string; data: string; encoding: string };
  };
  eventMetadata: { eventId: string; inferenceId?: string; inferenceTime: string };
  eventVersion: string;
}

/** What a client sent and got. */
interface Exchange {
  readonly sent: Uint8Array;
  readonly sentHeaders: Record<string, string>;
  readonly answer: Uint8Array;
  readonly headers: Record<string, string>;
  readonly status: number;
}

const dirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A catalog folder with one entry per model (no seeds: the tests upload the models). */
async function catalog(entries: Record<string, unknown>): Promise<string> {
  const dir = await tempDir('onnx-serverless-capture-catalog-');
  await mkdir(dir, { recursive: true });
  for (const [name, entry] of Object.entries(entries))
    await writeFile(join(dir, `${name}.json`), JSON.stringify(entry));
  return dir;
}

async function start(
  catalogDir: string,
  dataDir: string,
  extra: Partial<Parameters<typeof startLocal>[0]> = {},
): Promise<{ stack: LocalStack; denials: AccessDenial[] }> {
  const denials: AccessDenial[] = [];
  // No DATA_CAPTURE: the deployment-wide default is 0%, as deployed without -c captureSamplingPercent.
  const { DATA_CAPTURE: _unset, ...env } = process.env;
  const stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    catalogDir,
    silent: true,
    env,
    onAccessDenied: (denial) => denials.push(denial),
    ...extra,
  });
  return { stack, denials };
}

async function post(stack: LocalStack, model: string, body: Uint8Array, headers: Record<string, string>) {
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, { method: 'POST', body, headers });
  return {
    sent: body,
    sentHeaders: headers,
    status: response.status,
    headers: Object.fromEntries(response.headers),
    answer: new Uint8Array(await response.arrayBuffer()),
  } satisfies Exchange;
}

const jsonBody = (rows: number[][], id?: string) =>
  new TextEncoder().encode(JSON.stringify({ ...(id === undefined ? {} : { id }), ...linearRequest(rows) }));

/** Every capture file under `prefix`, read through S3 with the owner's credentials: key and records. */
async function captureFiles(stack: LocalStack, prefix: string) {
  const keys = await stack.runtime.store.list(prefix);
  return Promise.all(
    keys.map(async (key) => {
      const text = new TextDecoder().decode((await stack.runtime.store.get(key))?.body);
      const lines = text.split('\n').filter((line) => line !== '');
      return { key, records: lines.map((line) => JSON.parse(line) as SageMakerRecord) };
    }),
  );
}

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('a catalog model capturing 100% in batches of 3', () => {
  const exchanges: Exchange[] = [];
  let files: Awaited<ReturnType<typeof captureFiles>>;
  let filesBeforeClose: number;
  let uncaptured: Awaited<ReturnType<typeof captureFiles>>;
  let denials: AccessDenial[];

  beforeAll(async () => {
    const dataDir = await tempDir('onnx-serverless-capture-data-');
    const catalogDir = await catalog({
      linear: { warmer: false, capture: { samplingPercent: 100, maxBatchRecords: 3, flushIntervalSeconds: 3600 } },
      quiet: { warmer: false, capture: { samplingPercent: 0 } },
    });
    const running = await start(catalogDir, dataDir);
    denials = running.denials;
    const { stack } = running;
    await stack.runtime.store.put('uploads/linear/v1.onnx', linearModel(2, 1));
    await stack.runtime.store.put('uploads/quiet/v1.onnx', linearModel(3, 0));
    await stack.runtime.store.put('uploads/shared/v1.onnx', linearModel(4, 0));
    await stack.settled();

    // Sequential: the batch boundaries are then known (a batch is written by the request that fills it).
    for (let i = 0; i < 4; i++) {
      exchanges.push(
        await post(stack, 'linear', jsonBody([[i, 1, 2, 3]], `req-${i}`), { 'content-type': 'application/json' }),
      );
    }
    const binary = encodeInferenceRequest(
      [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) }],
      { binary: true, binaryOutput: true, id: 'bin-1' },
    );
    exchanges.push(await post(stack, 'linear', binary.body, binary.headers as Record<string, string>));
    // A bad request is answered 400 and captures nothing; the next one is captured as usual.
    exchanges.push(
      await post(stack, 'linear', new TextEncoder().encode('{"inputs": ['), { 'content-type': 'application/json' }),
    );
    exchanges.push(await post(stack, 'linear', jsonBody([[9, 9, 9, 9]]), { 'content-type': 'application/json' }));
    exchanges.push(await post(stack, 'linear', jsonBody([[8, 8, 8, 8]]), { 'content-type': 'application/json' }));
    // Not captured: an explicit 0%, and the shared function's default (no DATA_CAPTURE).
    for (const model of ['quiet', 'shared']) {
      expect((await post(stack, model, jsonBody([[1, 1, 1, 1]]), { 'content-type': 'application/json' })).status).toBe(
        200,
      );
    }
    filesBeforeClose = (await stack.runtime.store.list('capture/linear/')).length;
    // Closing writes what capture still holds; a new stack on the same data reads it back through S3.
    await stack.close();
    const reopened = await start(await catalog({}), dataDir);
    files = await captureFiles(reopened.stack, 'capture/linear/');
    uncaptured = [
      ...(await captureFiles(reopened.stack, 'capture/quiet/')),
      ...(await captureFiles(reopened.stack, 'capture/shared/')),
    ];
    await reopened.stack.close();
  }, 120_000);

  it('answers every request as without capture, and nothing is denied to the real role', () => {
    expect(exchanges.map((e) => e.status)).toEqual([200, 200, 200, 200, 200, 400, 200, 200]);
    expect(denials).toEqual([]);
  });

  it('writes batches: 7 answered requests in 3 files (fewer PUTs than requests), the last one at the close', () => {
    expect(filesBeforeClose).toBe(2);
    expect(files.map((f) => f.records.length).sort()).toEqual([1, 3, 3]);
    for (const { key, records } of files) {
      const time = records[0]!.eventMetadata.inferenceTime;
      const hour = `${time.slice(0, 4)}/${time.slice(5, 7)}/${time.slice(8, 10)}/${time.slice(11, 13)}`;
      expect(key).toMatch(new RegExp(`^capture/linear/1/${hour}/\\d{2}-\\d{2}-\\d{3}-[0-9a-f-]{36}\\.jsonl$`));
    }
  });

  it('records SageMaker Data Capture fields, and JSON input and output equal to the request and the answer', () => {
    const records = files.flatMap((f) => f.records);
    const answered = exchanges.filter((e) => e.status === 200);
    const json = answered.filter((e) => e.headers['inference-header-content-length'] === undefined);
    const byInput = new Map(records.map((r) => [r.captureData.endpointInput.data, r]));
    for (const exchange of json) {
      const record = byInput.get(new TextDecoder().decode(exchange.sent));
      expect(record, 'a record of each JSON request').toBeDefined();
      expect(record!.eventVersion).toBe('0');
      expect(record!.eventMetadata.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(record!.eventMetadata.inferenceTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      expect(record!.captureData.endpointInput).toMatchObject({
        observedContentType: 'application/json',
        mode: 'INPUT',
        encoding: 'JSON',
      });
      expect(record!.captureData.endpointOutput).toMatchObject({ mode: 'OUTPUT', encoding: 'JSON' });
      expect(record!.captureData.endpointOutput.data).toBe(new TextDecoder().decode(exchange.answer));
    }
    expect(
      records.filter((r) => r.eventMetadata.inferenceId?.startsWith('req-')).map((r) => r.eventMetadata.inferenceId),
    ).toEqual(['req-0', 'req-1', 'req-2', 'req-3']);
    // y = 2 * sum(row) + 1, read back from the captured answer.
    const first = JSON.parse(
      byInput.get(new TextDecoder().decode(exchanges[0]!.sent))!.captureData.endpointOutput.data,
    );
    expect(first.outputs[0].data).toEqual([13]);
  });

  it('records the binary extension as BASE64 with its header size, equal to the bytes sent and answered', () => {
    const exchange = exchanges[4]!;
    const record = files.flatMap((f) => f.records).find((r) => r.eventMetadata.inferenceId === 'bin-1');
    expect(record).toBeDefined();
    const { endpointInput, endpointOutput } = record!.captureData;
    const sentHeader = exchange.sentHeaders['Inference-Header-Content-Length'];
    const answerHeader = exchange.headers['inference-header-content-length'];
    expect(answerHeader).toBeDefined();
    expect(endpointInput).toMatchObject({
      observedContentType: `application/vnd.sagemaker-triton.binary+json;json-header-size=${sentHeader}`,
      mode: 'INPUT',
      encoding: 'BASE64',
    });
    expect(Buffer.from(endpointInput.data, 'base64')).toEqual(Buffer.from(exchange.sent));
    expect(endpointOutput).toMatchObject({
      observedContentType: `application/vnd.sagemaker-triton.binary+json;json-header-size=${answerHeader}`,
      mode: 'OUTPUT',
      encoding: 'BASE64',
    });
    const captured = Buffer.from(endpointOutput.data, 'base64');
    expect(captured).toEqual(Buffer.from(exchange.answer));
    // The record alone is enough to decode the answer: y = 2 * sum(row) + 1.
    const decoded = decodeInferenceResponse(captured, { 'inference-header-content-length': answerHeader });
    expect(Array.from(decoded.outputs[0]!.data as Float32Array)).toEqual([21, 53]);
  });

  it('writes nothing for a 0% policy or the shared function without a default', () => {
    expect(uncaptured).toEqual([]);
  });
});

describe('a capture store that fails', () => {
  it('loses no request: every write is denied (a role without the capture grant), every answer is right', async () => {
    const own = inferAccess('linear');
    const withoutCapture: BucketAccess = {
      ...own,
      objects: own.objects.filter((grant) => !grant.keyPatterns.some((p) => p.startsWith('capture/'))),
    };
    // The narrowed role still reads its model: only the capture grant is gone.
    expect(bucketStatements(withoutCapture, 'arn:aws:s3:::models').length).toBe(
      bucketStatements(own, 'arn:aws:s3:::models').length - 1,
    );
    const catalogDir = await catalog({
      linear: { warmer: false, capture: { samplingPercent: 100, maxBatchRecords: 2, flushIntervalSeconds: 3600 } },
    });
    const { stack, denials } = await start(catalogDir, await tempDir('onnx-serverless-capture-denied-'), {
      accessOverrides: { 'infer-linear': withoutCapture },
    });
    try {
      await stack.runtime.store.put('uploads/linear/v1.onnx', linearModel(2, 1));
      await stack.settled();
      const answers: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const exchange = await post(stack, 'linear', jsonBody([[i, 0, 0, 0]]), { 'content-type': 'application/json' });
        expect(exchange.status).toBe(200);
        answers.push(JSON.parse(new TextDecoder().decode(exchange.answer)).outputs[0].data);
      }
      // y = 2 * i + 1: the answers of a failing capture are the answers.
      expect(answers).toEqual([[1], [3], [5], [7], [9]]);
      // Two batches (after the 2nd and the 4th request) were written and refused, as S3 refuses them deployed.
      const refused = denials.filter((d) => d.action === 's3:PutObject');
      expect(refused.map((d) => d.role)).toEqual(['infer-linear', 'infer-linear']);
      for (const denial of refused)
        expect(denial.resource).toMatch(/^arn:aws:s3:::models\/capture\/linear\/1\/.*\.jsonl$/);
      expect(await stack.runtime.store.list('capture/')).toEqual([]);
    } finally {
      await stack.close();
    }
  });
});
