/**
 * A batch job through the real local wiring (`startLocal()`): 1,000 inputs in the embedded S3, the job started by the
 * route, run by the local engine over the batch handler under the grants of `infra/function-grants.ts`. It ends with
 * exactly one record per input: results equal to the single requests' answers, failure records with reasons; a
 * second run changes no object; a location outside the rule is a 400 naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/cli.js';
import { type FlowStack, startFlowStack } from '../flow/fixture.js';
import {
  BATCH_MODEL,
  type BatchInput,
  buildInputs,
  expectedKeys,
  INPUT_COUNTS,
  INPUT_PREFIX,
  isValidCase,
  listing as listObjects,
  OUTPUT_PREFIX,
  uploadInputs,
} from './fixture.js';

let flow: FlowStack;
let inputs: BatchInput[];

/** Every object under `prefix`, with its etag. */
const listing = (prefix: string) => listObjects(flow.client, flow.stack.s3.bucket, prefix);

/** Starts a job through the route and waits for its record to be complete. */
async function runJob(): Promise<Record<string, unknown>> {
  const started = await flow.request('POST', `/v2/models/${BATCH_MODEL.name}/batch`, {
    input: `s3://models/${INPUT_PREFIX}`,
    output: `s3://models/${OUTPUT_PREFIX}`,
  });
  expect(started.status).toBe(202);
  const job = started.body as { jobId: string; version: string; status_url: string; state: string };
  expect(job).toMatchObject({ version: '1', state: 'RUNNING' });
  for (;;) {
    const status = await flow.request('GET', job.status_url);
    expect(status.status).toBe(200);
    if ((status.body as { state: string }).state === 'SUCCEEDED') return status.body as Record<string, unknown>;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  flow = await startFlowStack();
  const outcome = await flow.uploadAndWait(BATCH_MODEL.name, 'identity.onnx', BATCH_MODEL.bytes(), BATCH_MODEL.sample);
  expect(outcome.kind).toBe('registered');
  inputs = await buildInputs();
  await uploadInputs(flow.store, inputs);
}, 120_000);

afterAll(async () => {
  await flow?.close();
});

describe('a batch job of 1,000 inputs', () => {
  it('ends with exactly one record per input, equal to single requests, and a second run changes nothing', async () => {
    const valid = inputs.filter((i) => isValidCase(i.kind)).length;
    const record = await runJob();
    expect(record).toMatchObject({
      model: BATCH_MODEL.name,
      version: '1',
      engine: 'local',
      counts: { inputs: 1000, results: valid, failures: 1000 - valid, pending: 0 },
    });
    expect((record.failedKeys as string[]).length).toBe(1000 - valid);

    const written = await listing(OUTPUT_PREFIX);
    expect(written.size).toBe(1000);
    for (const input of inputs) {
      const keys = expectedKeys(input);
      // Exactly one of the two, the right one.
      expect([written.has(keys.result), written.has(keys.failure)]).toEqual([
        isValidCase(input.kind),
        !isValidCase(input.kind),
      ]);
    }

    // Failure records: the status and the reason the infer route gives the same request.
    const reasons: Record<string, RegExp> = {
      malformed: /JSON/i,
      'wrong-shape': /shape \[1, 3, 4, 4\]/,
      'not-image': /image/i,
      empty: /JSON/i,
      'empty-object': /inputs/i,
    };
    for (const input of inputs.filter((i) => !isValidCase(i.kind)).filter((_, n) => n % 7 === 0)) {
      const stored = await flow.store.get(expectedKeys(input).failure);
      const failure = JSON.parse(new TextDecoder().decode(stored?.body)) as Record<string, unknown>;
      const single = await fetch(`${flow.gatewayUrl}/v2/models/${BATCH_MODEL.name}/versions/1/infer`, {
        method: 'POST',
        headers: input.headers,
        body: input.body,
      });
      const answer = (await single.json()) as { error: string };
      expect(failure).toEqual({
        input: input.key,
        model: 'pic',
        version: '1',
        status: single.status,
        error: answer.error,
      });
      expect(failure.status).toBe(400);
      expect(failure.error).toMatch(reasons[input.kind] as RegExp);
    }

    // Results: the single request's answer, byte for byte (JSON Lines: one answer per line).
    for (const input of inputs.filter((i) => isValidCase(i.kind)).filter((_, n) => n % 9 === 0)) {
      const stored = new TextDecoder().decode((await flow.store.get(expectedKeys(input).result))?.body);
      const bodies = input.kind === 'jsonl' ? new TextDecoder().decode(input.body).trim().split('\n') : [input.body];
      const answers: string[] = [];
      for (const body of bodies) {
        const single = await fetch(`${flow.gatewayUrl}/v2/models/${BATCH_MODEL.name}/versions/1/infer`, {
          method: 'POST',
          headers: input.headers,
          body,
        });
        expect(single.status).toBe(200);
        answers.push((await single.text()).trimEnd());
      }
      expect(stored.trimEnd()).toBe(answers.join('\n'));
    }
    const imageResult = JSON.parse(
      new TextDecoder().decode(
        (await flow.store.get(expectedKeys(inputs.find((i) => i.kind === 'image') as BatchInput).result))?.body,
      ),
    ) as { outputs: { shape: number[]; data: number[] }[] };
    expect(imageResult.outputs[0]?.shape).toEqual([1, 3, 8, 8]);

    // Again: a new job record, and not one object of the output changed.
    const again = await runJob();
    expect(again.jobId).not.toBe(record.jobId);
    expect(again.counts).toEqual(record.counts);
    expect(await listing(OUTPUT_PREFIX)).toEqual(written);
    // Every function stayed within its deployed grants.
    expect(flow.denials).toEqual([]);
    expect(INPUT_COUNTS.json + INPUT_COUNTS.binary + INPUT_COUNTS.image + INPUT_COUNTS.jsonl).toBe(valid);
  }, 300_000);

  it('refuses a location outside batch/ with a 400 naming the rule, then starts the next valid job', async () => {
    const cases = [
      { input: `s3://models/${INPUT_PREFIX}`, output: 's3://models/uploads/pic/', why: /not a folder under batch\// },
      { input: 's3://other-bucket/batch/in/', output: `s3://models/${OUTPUT_PREFIX}`, why: /not in the model bucket/ },
      { input: `s3://models/${INPUT_PREFIX}`, output: `s3://models/${INPUT_PREFIX}out/`, why: /overlap/ },
      { input: 'batch/in/', output: `s3://models/${OUTPUT_PREFIX}`, why: /S3 URI/ },
      { input: `s3://models/${INPUT_PREFIX}`, output: 's3://models/batch/_jobs/x/', why: /_jobs/ },
    ];
    for (const { why, ...body } of cases) {
      const answer = await flow.request('POST', `/v2/models/${BATCH_MODEL.name}/batch`, body);
      expect(answer.status).toBe(400);
      expect((answer.body as { error: string }).error).toMatch(why);
      expect((answer.body as { error: string }).error).toContain('input and output must be s3://<model bucket>/batch/');
    }
    const unknown = await flow.request('POST', '/v2/models/nosuch/batch', {
      input: `s3://models/${INPUT_PREFIX}`,
      output: `s3://models/${OUTPUT_PREFIX}`,
    });
    expect(unknown.status).toBe(404);
    expect((await flow.request('GET', `/v2/models/${BATCH_MODEL.name}/batch/nosuch-job`)).status).toBe(404);
    const record = await runJob();
    expect(record.counts).toMatchObject({ inputs: 1000, pending: 0 });
  }, 120_000);

  it('starts from the CLI, pinned to the version asked for, and waits for the counts', async () => {
    const lines: string[] = [];
    const io = { out: (line: string) => lines.push(line), store: flow.store };
    const locations = ['--input', `s3://models/${INPUT_PREFIX}`, '--output', `s3://models/${OUTPUT_PREFIX}`];
    const code = await runCli(
      ['batch', `${BATCH_MODEL.name}:1`, ...locations, '--api', flow.gatewayUrl, '--wait', '--json'],
      io,
    );
    expect({ code, lines }).toEqual({ code: 0, lines: expect.any(Array) as unknown });
    const record = JSON.parse(lines.at(-1) ?? '') as { state: string; version: string; counts: Record<string, number> };
    expect(record).toMatchObject({ state: 'SUCCEEDED', version: '1', counts: { inputs: 1000, pending: 0 } });

    // A bad location: the route's 400 reason on stderr, exit 1; a missing option: usage, exit 2.
    const errors: string[] = [];
    const failing = { out: () => undefined, err: (line: string) => errors.push(line), store: flow.store };
    expect(
      await runCli(
        [
          'batch',
          BATCH_MODEL.name,
          '--input',
          's3://models/uploads/',
          '--output',
          's3://models/batch/o/',
          '--api',
          flow.gatewayUrl,
        ],
        failing,
      ),
    ).toBe(1);
    expect(errors.join('\n')).toMatch(/400: input s3:\/\/models\/uploads\/ is not a folder under batch\//);
    expect(await runCli(['batch', BATCH_MODEL.name, '--input', `s3://models/${INPUT_PREFIX}`], failing)).toBe(2);
    expect(await runCli(['batch', `${BATCH_MODEL.name}:7`, ...locations, '--api', flow.gatewayUrl], failing)).toBe(1);
    expect(errors.join('\n')).toMatch(/404: model "pic" has no version "7"/);
  }, 120_000);
});
