/**
 * Async requests through the deployed artifact (docs/async.md): the bundled infer function of a synthesized app in
 * fresh Lambda-like processes, under the S3 statements its template gives its role. Accepting a request queues the
 * job with a signed `Invoke` of the function's `async` alias and `InvocationType: Event` (received by a loopback
 * stand-in of the Lambda API that answers 202 as Lambda does); the queued event, delivered to a fresh process, writes
 * the answer and moves the job to succeeded; the record of the on-failure destination marks a job failed with the
 * reason.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { bodyOf, restEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, squareModel, synthesize } from './fixture.js';

/** One `Invoke` call as the Lambda API received it. */
interface Invocation {
  readonly target: string;
  readonly invocationType: string | undefined;
  readonly signed: boolean;
  readonly payload: unknown;
}

let rig: ArtifactRig;
let lambdaApi: Server;
let lambdaEndpoint: string;
const invocations: Invocation[] = [];
/** A fault to inject: the Lambda API refuses the next Event invocation as throttled. */
let throttleNext = false;
let inferId: string;

beforeAll(async () => {
  const synth = synthesize(
    { models: [parseCatalogEntry('square', { architecture: 'x86_64', warmer: false })], sharedArchitecture: 'x86_64' },
    { bundling: true, id: 'AsyncArtifacts' },
  );
  rig = await startArtifactRig(synth);
  inferId = rig.idOf(synth.stack.endpoints.get('square')!.inferFunction.function);
  // Lambda's Invoke API on loopback: records the call and answers an Event invocation's 202 (the event is queued).
  lambdaApi = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = decodeURIComponent(/\/functions\/([^/]+)\/invocations$/.exec(request.url ?? '')?.[1] ?? '');
      const invocationType = request.headers['x-amz-invocation-type'] as string | undefined;
      invocations.push({
        target,
        invocationType,
        signed: String(request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 '),
        payload: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      if (throttleNext) {
        throttleNext = false;
        response
          .writeHead(429, { 'x-amzn-errortype': 'TooManyRequestsException' })
          .end(JSON.stringify({ message: 'Rate Exceeded.' }));
        return;
      }
      response.writeHead(invocationType === 'Event' ? 202 : 200).end();
    });
  });
  await new Promise<void>((resolve) => lambdaApi.listen(0, '127.0.0.1', resolve));
  lambdaEndpoint = `http://127.0.0.1:${(lambdaApi.address() as AddressInfo).port}`;

  const { s3 } = rig;
  await s3.client.send(
    new PutObjectCommand({ Bucket: s3.server.bucket, Key: 'uploads/square/v1.onnx', Body: squareModel() }),
  );
  const [registered] = (
    await rig.invoke(rig.idOf(synth.stack.registerFunction.function), [await rig.eventFor('uploads/square/v1.onnx')])
  ).results;
  expect(JSON.stringify(registered)).toContain('registered');
  await s3.client.send(
    new PutObjectCommand({
      Bucket: s3.server.bucket,
      Key: 'async/square/inputs/three.json',
      ContentType: 'application/json',
      Body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3], data: [1.5, -2, 3] }] }),
    }),
  );
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  await new Promise((resolve) => lambdaApi?.close(resolve));
  removeTempDirs();
});

function asyncRequest(name: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      parameters: {
        input_location: 's3://models/async/square/inputs/three.json',
        output_location: `s3://models/async/square/outputs/${name}.json`,
      },
    }),
  );
}

async function objectText(key: string): Promise<string> {
  const object = await rig.s3.client.send(new GetObjectCommand({ Bucket: rig.s3.server.bucket, Key: key }));
  return await object.Body!.transformToString();
}

it('queues the job with an Event invocation of the async alias, and the event answers into S3', async () => {
  const accept = await rig.invoke(
    inferId,
    [
      restEvent('POST', '/v2/models/square/infer', '/v2/models/square/infer', asyncRequest('ok'), {
        'content-type': 'application/json',
      }),
    ],
    { lambdaEndpoint },
  );
  const [accepted] = accept.results as { statusCode: number }[];
  expect(accepted?.statusCode).toBe(202);
  const body = bodyOf(accepted) as { job_id: string; status: string; model_version: string };
  expect(body).toMatchObject({ status: 'accepted', model_version: '1' });
  expect(invocations).toEqual([
    {
      target: `${inferId}:async`,
      invocationType: 'Event',
      signed: true,
      payload: { asyncInference: { model: 'square', id: body.job_id } },
    },
  ]);

  // Lambda delivers the queued event to an instance of the alias: a fresh process here.
  const run = await rig.invoke(inferId, [
    invocations[0]?.payload,
    restEvent('GET', '/v2/models/square/jobs/{id}', `/v2/models/square/jobs/${body.job_id}`),
  ]);
  const [result, status] = run.results as [unknown, { statusCode: number }];
  expect(result).toMatchObject({ job_id: body.job_id, status: 'succeeded', model_version: '1' });
  expect(status.statusCode).toBe(200);
  expect(bodyOf(status)).toMatchObject({ id: body.job_id, state: 'succeeded', version: '1' });
  const answer = JSON.parse(await objectText('async/square/outputs/ok.json')) as {
    model_name: string;
    outputs: { name: string; data: number[] }[];
  };
  expect(answer.model_name).toBe('square');
  expect(answer.outputs[0]).toMatchObject({ name: 'y', data: [2.25, 4, 9] });
  expect(rig.describeDenials()).toEqual([]);
}, 120_000);

it("marks the job failed with the reason from the on-failure destination's record", async () => {
  invocations.length = 0;
  const accept = await rig.invoke(
    inferId,
    [
      restEvent('POST', '/v2/models/square/infer', '/v2/models/square/infer', asyncRequest('late'), {
        'content-type': 'application/json',
      }),
    ],
    { lambdaEndpoint },
  );
  const { job_id: id } = bodyOf(accept.results[0]) as { job_id: string };
  // What Lambda sends the on-failure destination (the function itself) when every attempt timed out.
  const record = {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: 'c0ffee00-0000-4000-8000-000000000000',
      functionArn: `arn:aws:lambda:us-east-1:123456789012:function:${inferId}:async`,
      condition: 'RetriesExhausted',
      approximateInvokeCount: 3,
    },
    requestPayload: invocations[0]?.payload,
    responseContext: { statusCode: 200, executedVersion: '1', functionError: 'Unhandled' },
    responsePayload: { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 29.00 seconds' },
  };
  const run = await rig.invoke(inferId, [
    record,
    // A late duplicate of the job's own event finds it failed and changes nothing.
    invocations[0]?.payload,
  ]);
  expect(run.results[0]).toMatchObject({ job_id: id, status: 'failed' });
  expect(run.results[1]).toMatchObject({ job_id: id, status: 'failed' });
  const errorRecord = JSON.parse(await objectText('async/square/outputs/late.json')) as { error: string };
  expect(errorRecord.error).toBe('the job failed after 3 attempt(s): Task timed out after 29.00 seconds');
  expect(JSON.parse(await objectText(`async/square/jobs/${id}.json`))).toMatchObject({
    state: 'failed',
    error: errorRecord.error,
  });
  expect(rig.describeDenials()).toEqual([]);
}, 120_000);

it('answers 503 when Lambda refuses to queue the job, and the job record says it failed', async () => {
  invocations.length = 0;
  throttleNext = true;
  const run = await rig.invoke(
    inferId,
    [
      restEvent('POST', '/v2/models/square/infer', '/v2/models/square/infer', asyncRequest('throttled'), {
        'content-type': 'application/json',
      }),
    ],
    { lambdaEndpoint },
  );
  const [refused] = run.results as { statusCode: number; headers: Record<string, string> }[];
  expect(refused?.statusCode).toBe(503);
  expect(refused?.headers['retry-after']).toBe('1');
  expect(bodyOf(refused)).toEqual({ error: 'the async job could not be queued; send the request again' });
  const [{ payload }] = invocations as [Invocation];
  const { id } = (payload as { asyncInference: { id: string } }).asyncInference;
  expect(JSON.parse(await objectText(`async/square/jobs/${id}.json`))).toMatchObject({
    state: 'failed',
    error: 'the job could not be queued',
  });
}, 120_000);
