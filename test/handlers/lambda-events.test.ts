import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { decodeInferenceResponse, encodeInferenceRequest } from '../../functions/core/codec/index.js';
import type { ModelSession, SessionFactory } from '../../functions/core/session.js';
import { readConfig } from '../../functions/wiring/config.js';
import { createRegisterHandler } from '../../functions/transport/register-handler.js';
import { createControlHandler, createInferHandler } from '../../functions/transport/http-handlers.js';
import { createObservability, loadTracer } from '../../functions/wiring/observability.js';
import { createRuntime, type Runtime } from '../../functions/wiring/runtime.js';
import type { WarmerEvent, WarmerResult } from '../../functions/core/warmer.js';
import { restApiEvent, s3Event } from '../../tools/lambda-events.js';

const context = { awsRequestId: 'req-123' };
const observability = createObservability('test', false);
observability.logger.setLogLevel('SILENT');

function restEvent(
  method: string,
  path: string,
  body?: Uint8Array,
  headers: Record<string, string> = {},
): APIGatewayProxyEvent {
  return restApiEvent({ method, path, body, headers, requestId: 'gw-1' });
}

function httpApiEvent(
  method: string,
  rawPath: string,
  body?: string,
  headers: Record<string, string> = {},
): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers,
    body,
    isBase64Encoded: false,
    requestContext: {
      requestId: 'gw-2',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
    } as APIGatewayProxyEventV2['requestContext'],
  };
}

let dir: string;
let runtime: Runtime;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'handlers-'));
  runtime = createRuntime(readConfig({ MODEL_DIR: dir }));
  for (const model of ['linear', 'iris']) {
    await runtime.store.put(
      `uploads/${model}/first upload.onnx`,
      new Uint8Array(await readFile(`models/${model}.onnx`)),
    );
  }
  const registered = await createRegisterHandler(
    runtime,
    observability,
  )(s3Event(['uploads/linear/first upload.onnx', 'uploads/iris/first upload.onnx', 'uploads/readme.txt']));
  expect(registered.outcomes.map((o) => o.kind)).toEqual(['registered', 'registered', 'ignored']);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const request = encodeInferenceRequest([
  { name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array([1, 2, 3, 4, 0, 0, 0, 0]) },
]);

describe('infer handler', () => {
  it('serves a REST API (payload 1.0) event with a base64 body, stage prefix and all', async () => {
    const handler = createInferHandler(runtime, observability, { model: 'linear' });

    const result = (await handler(
      restEvent('POST', '/v2/models/linear/infer', request.body, { 'Content-Type': 'application/json' }),
      context,
    )) as APIGatewayProxyResult;

    expect(result.statusCode).toBe(200);
    const response = decodeInferenceResponse(Buffer.from(result.body), result.headers as Record<string, string>);
    expect(response.modelVersion).toBe('1');
    expect(response.outputs[0]?.shape).toEqual([2, 1]);
  });

  it('serves an HTTP API (payload 2.0) event with a plain body, and a binary answer base64-encoded', async () => {
    const handler = createInferHandler(runtime, observability, { model: 'iris' });
    const binary = encodeInferenceRequest(
      [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) }],
      { binaryOutput: true },
    );

    const result = (await handler(
      httpApiEvent('POST', '/v2/models/iris/infer', new TextDecoder().decode(binary.body), { ...binary.headers }),
      context,
    )) as APIGatewayProxyResult;

    expect(result.statusCode).toBe(200);
    expect(result.isBase64Encoded).toBe(true);
    const response = decodeInferenceResponse(
      Buffer.from(result.body, 'base64'),
      result.headers as Record<string, string>,
    );
    expect(Array.from(response.outputs[0]!.data as BigInt64Array)).toEqual([0n]);
  });

  it('serves only its own model', async () => {
    const handler = createInferHandler(runtime, observability, { model: 'linear' });

    const other = (await handler(restEvent('GET', '/v2/models/iris'), context)) as APIGatewayProxyResult;
    const control = (await handler(restEvent('GET', '/v2/health/live'), context)) as APIGatewayProxyResult;

    expect(other.statusCode).toBe(404);
    expect(control.statusCode).toBe(404);
    expect(JSON.parse(other.body)).toEqual({ error: expect.stringContaining('model "linear"') });
  });

  it('answers a bug with 500, a generic message and the request id, and keeps serving', async () => {
    const explode = (session: ModelSession): ModelSession => ({
      ...session,
      inputs: session.inputs,
      outputs: session.outputs,
      run: async () => {
        throw new TypeError('/secret/path.ts exploded');
      },
      release: () => session.release(),
    });
    const broken: SessionFactory = {
      create: async (model, options) => explode(await onnxruntimeSessionFactory.create(model, options)),
      createFromFile: async (file, options) => explode(await onnxruntimeSessionFactory.createFromFile(file, options)),
    };
    const faulty = createRuntime(readConfig({ MODEL_DIR: dir }), { servingSessionFactory: broken });
    const handler = createInferHandler(faulty, observability, { model: 'linear' });
    const event = restEvent('POST', '/v2/models/linear/infer', request.body, { 'content-type': 'application/json' });

    const result = (await handler(event, context)) as APIGatewayProxyResult;
    const healthy = (await createInferHandler(runtime, observability, { model: 'linear' })(
      event,
      context,
    )) as APIGatewayProxyResult;

    expect(result.statusCode).toBe(500);
    // The API Gateway request id: the one the client sees in x-amzn-RequestId.
    expect(JSON.parse(result.body)).toEqual({ error: 'internal error; request id gw-1' });
    expect(healthy.statusCode).toBe(200);
  });
  it('serves as usual with the Powertools Tracer loaded (POWERTOOLS_TRACE_ENABLED=true)', async () => {
    const traced = createObservability('test-traced', false, await loadTracer('test-traced'));
    traced.logger.setLogLevel('SILENT');
    const handler = createInferHandler(runtime, traced, { model: 'linear' });

    const first = (await handler(
      restEvent('POST', '/v2/models/linear/infer', request.body, { 'content-type': 'application/json' }),
      context,
    )) as APIGatewayProxyResult;
    const second = (await handler(
      restEvent('POST', '/v2/models/linear/infer', request.body, { 'content-type': 'application/json' }),
      context,
    )) as APIGatewayProxyResult;

    expect(traced.tracer).toBeDefined();
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
  });
});

describe('warmer events', () => {
  it('load the latest session without inferring, so the next request does no load', async () => {
    const fresh = createRuntime(readConfig({ MODEL_DIR: dir }));
    const handler = createInferHandler(fresh, observability, { model: 'iris' });
    const latest = await fresh.service.resolve('iris');
    expect(await fresh.service.isLoaded(latest)).toBe(false);

    const result = (await handler({ warmer: true, concurrency: 1 }, context)) as WarmerResult;

    expect(result).toEqual({
      warmed: true,
      model: 'iris',
      version: '1',
      coldStart: expect.any(Boolean),
      loaded: true,
      invoked: 0,
      failed: 0,
    });
    expect(await fresh.service.isLoaded(latest)).toBe(true);
    expect(await fresh.service.ensureLoaded(latest)).toEqual({ loaded: false });
  });

  it('fan out exactly N-1 self-invocations that hold and do not fan out again', async () => {
    const payloads: WarmerEvent[] = [];
    const handler = createInferHandler(runtime, observability, {
      model: 'iris',
      invoke: async (payload) => {
        payloads.push(payload);
      },
    });

    const result = (await handler({ warmer: true, concurrency: 5 }, context)) as WarmerResult;

    expect(result.invoked).toBe(4);
    expect(result.failed).toBe(0);
    expect(payloads).toHaveLength(4);
    expect(payloads.every((p) => p.warmer && p.concurrency === 1 && (p.holdMs ?? 0) > 0)).toBe(true);
  });

  it('fan out to the ARN they were invoked through: the serving alias, not $LATEST', async () => {
    const targets: Array<string | undefined> = [];
    const handler = createInferHandler(runtime, observability, {
      model: 'iris',
      invoke: async (_payload, target) => {
        targets.push(target);
      },
    });
    const alias = 'arn:aws:lambda:us-east-1:123456789012:function:infer-iris:live';

    await handler({ warmer: true, concurrency: 3 }, { ...context, invokedFunctionArn: alias });

    expect(targets).toEqual([alias, alias]);
  });

  it('count failed self-invocations apart and still warm this instance', async () => {
    let calls = 0;
    const handler = createInferHandler(runtime, observability, {
      model: 'iris',
      invoke: async () => {
        calls += 1;
        if (calls % 2 === 0) throw new Error('Rate exceeded');
      },
    });

    const result = (await handler({ warmer: true, concurrency: 5 }, context)) as WarmerResult;

    expect(result).toMatchObject({ warmed: true, model: 'iris', invoked: 2, failed: 2 });
    expect(await runtime.service.isLoaded(await runtime.service.resolve('iris'))).toBe(true);
  });
});

describe('control handler', () => {
  it('serves health, server metadata and the repository index, and no model routes', async () => {
    const handler = createControlHandler(runtime, observability);

    const ready = await handler(restEvent('GET', '/v2/health/ready'), context);
    const index = await handler(httpApiEvent('POST', '/v2/repository/index'), context);
    const model = await handler(restEvent('GET', '/v2/models/iris'), context);

    expect(JSON.parse(ready.body)).toEqual({ ready: true });
    expect(JSON.parse(index.body)).toEqual([
      { name: 'iris', version: '1', state: 'READY', reason: '' },
      { name: 'linear', version: '1', state: 'READY', reason: '' },
    ]);
    expect(model.statusCode).toBe(404);
  });
});
