/**
 * `npm run models -- batch` against a deployed stack: with MODEL_BUCKET set it starts an execution of the stack's
 * state machine and follows it to the job record, here against a loopback stand-in for the Step Functions API
 * (an AWS boundary without a local server) and a store on disk standing in for the model bucket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { runCli } from '../../functions/cli/cli.js';
import { EXIT_CODES } from '../../functions/cli/errors.js';
import { finishedRecord, jobRecordKey, type BatchJobSpec } from '../../functions/core/batch/index.js';
import { awsStandIn } from '../adapters/aws-stand-in.js';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:BatchJobs';
const LOCATIONS = ['--input', 's3://prod-models/batch/in/', '--output', 's3://prod-models/batch/out/'];

interface Call {
  readonly target: string;
  readonly authorization: string;
  readonly body: Record<string, string>;
}

/** What the stand-in does with DescribeExecution: answer a status, and optionally write what Finish writes. */
type Describe = (name: string, calls: number) => Promise<Record<string, unknown>>;

let folder: string;
let store: FsBlobStore;

/** A Step Functions stand-in: StartExecution answers the execution's ARN, DescribeExecution asks `describe`. */
async function stepFunctions(describe: Describe, refuse?: { status: number; body: unknown }) {
  const calls: Call[] = [];
  let name = '';
  const { endpoint } = await awsStandIn(async (request) => {
    const body = JSON.parse(request.body) as Record<string, string>;
    const target = String(request.headers['x-amz-target']);
    calls.push({ target, authorization: String(request.headers.authorization), body });
    if (refuse !== undefined) return { status: refuse.status, body: JSON.stringify(refuse.body) };
    if (target === 'AWSStepFunctions.StartExecution') {
      name = body.name ?? '';
      const machine = body.stateMachineArn ?? '';
      const executionArn = `${machine.replace(':stateMachine:', ':execution:')}:${name}`;
      return { status: 200, body: JSON.stringify({ executionArn, startDate: 1 }) };
    }
    const described = calls.filter((c) => c.target === target).length;
    return {
      status: 200,
      body: JSON.stringify({ executionArn: body.executionArn, name, ...(await describe(name, described)) }),
    };
  });
  return { calls, endpoint };
}

/** Runs the CLI as a deployed user would, MODEL_BUCKET and the state machine's ARN set. */
async function cli(argv: readonly string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  let slept = 0;
  const code = await runCli(argv, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: { MODEL_BUCKET: 'prod-models', BATCH_STATE_MACHINE_ARN: STATE_MACHINE, ...env },
    store,
    now: () => slept,
    sleep: async (ms) => {
      slept += ms;
    },
  });
  return { code, out, err, slept };
}

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), 'cli-batch-sfn-'));
  store = new FsBlobStore(folder);
  // The SDK's default chain reads the process's environment first: a key pair there keeps it off any profile.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDCLI');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
  vi.stubEnv('AWS_SESSION_TOKEN', '');
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(folder, { recursive: true, force: true });
});

/** The record the Finish step writes for job `name`: 3 inputs, 2 results, 1 failure record. */
async function writeFinishedRecord(name: string): Promise<void> {
  const spec: BatchJobSpec = {
    jobId: name,
    model: 'iris',
    version: '3',
    input: { bucket: 'prod-models', prefix: 'batch/in/' },
    output: { bucket: 'prod-models', prefix: 'batch/out/' },
    startedAt: '2026-12-06T06:00:00.000Z',
  };
  const record = finishedRecord(
    spec,
    'step-functions',
    ['batch/in/a.json', 'batch/in/b.json', 'batch/in/c.json'],
    ['batch/out/a.json.result.json', 'batch/out/b.json.result.json', 'batch/out/c.json.failure.json'],
    Date.parse('2026-12-06T06:00:04.000Z'),
  );
  await store.put(jobRecordKey('iris', name), new TextEncoder().encode(JSON.stringify(record)));
}

describe('batch with MODEL_BUCKET set', () => {
  it('starts an execution named after the job, waits for it and prints the counts of its job record', async () => {
    // Prepare: the execution runs on the first look and has finished (record written) on the second.
    const sfn = await stepFunctions(async (name, calls) => {
      if (calls === 1) return { status: 'RUNNING' };
      await writeFinishedRecord(name);
      return { status: 'SUCCEEDED' };
    });

    // Act
    const result = await cli(['batch', 'iris', ...LOCATIONS, '--wait'], { AWS_ENDPOINT_URL_SFN: sfn.endpoint });

    // Assess
    expect(result.err).toEqual([]);
    expect(result.code).toBe(EXIT_CODES.ok);
    const [start, ...describes] = sfn.calls;
    const jobId = start?.body.name ?? '';
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    expect(start?.target).toBe('AWSStepFunctions.StartExecution');
    expect(start?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDCLI\/\d{8}\/eu-west-1\/states\/aws4_request,/,
    );
    expect(start?.body).toEqual({
      stateMachineArn: STATE_MACHINE,
      name: jobId,
      input: JSON.stringify({
        model: 'iris',
        version: 'latest',
        input: 's3://prod-models/batch/in/',
        output: 's3://prod-models/batch/out/',
      }),
    });
    const executionArn = `arn:aws:states:eu-west-1:123456789012:execution:BatchJobs:${jobId}`;
    expect(describes.map((c) => [c.target, c.body])).toEqual([
      ['AWSStepFunctions.DescribeExecution', { executionArn }],
      ['AWSStepFunctions.DescribeExecution', { executionArn }],
    ]);
    expect(describes[0]?.authorization).toContain('/eu-west-1/states/aws4_request');
    expect(result.slept).toBe(2000);
    expect(result.out).toEqual([
      `job ${jobId}: iris version latest; execution ${executionArn}`,
      `job record: s3://prod-models/batch/_jobs/iris/${jobId}.json (complete when the job ends; also published on the stack's batch topic)`,
      `job ${jobId} succeeded in 4.0 s: 3 inputs, 2 results, 1 failure records, 0 pending (under s3://prod-models/batch/out/)`,
    ]);
  });

  it('prints the started job as JSON without waiting, with --state-machine over the environment', async () => {
    // Prepare
    const sfn = await stepFunctions(async () => ({ status: 'RUNNING' }));
    const other = STATE_MACHINE.replace('eu-west-1', 'us-east-2');

    // Act
    const result = await cli(['batch', 'iris:stable', ...LOCATIONS, '--state-machine', other, '--json'], {
      AWS_ENDPOINT_URL_SFN: sfn.endpoint,
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.ok);
    expect(sfn.calls.map((c) => c.target)).toEqual(['AWSStepFunctions.StartExecution']);
    expect(sfn.calls[0]?.authorization).toContain('/us-east-2/states/aws4_request');
    const jobId = sfn.calls[0]?.body.name;
    expect(JSON.parse(result.out.join(''))).toEqual({
      jobId,
      model: 'iris',
      version: 'stable',
      input: 's3://prod-models/batch/in/',
      output: 's3://prod-models/batch/out/',
      state: 'RUNNING',
      engine: 'step-functions',
      executionArn: `arn:aws:states:us-east-2:123456789012:execution:BatchJobs:${jobId}`,
      record: `s3://prod-models/batch/_jobs/iris/${jobId}.json`,
    });
  });

  it("says why an execution failed, in the batch function's words (exit 1)", async () => {
    // Prepare: Start refused the job (an unknown version), as the failed Lambda task's cause carries it.
    const sfn = await stepFunctions(async () => ({
      status: 'FAILED',
      error: 'NotFoundError',
      cause: JSON.stringify({ errorType: 'NotFoundError', errorMessage: 'model "iris" has no version "9"' }),
    }));

    // Act
    const result = await cli(['batch', 'iris:9', ...LOCATIONS, '--wait'], { AWS_ENDPOINT_URL_SFN: sfn.endpoint });

    // Assess
    expect(result.code).toBe(EXIT_CODES.failed);
    expect(result.err).toEqual([
      `error: execution arn:aws:states:eu-west-1:123456789012:execution:BatchJobs:${sfn.calls[0]?.body.name} ` +
        'failed: NotFoundError: model "iris" has no version "9"',
    ]);
  });

  it('says what Step Functions refused, and refuses locations outside the rule before any call (exit 1)', async () => {
    // Prepare
    const sfn = await stepFunctions(async () => ({}), {
      status: 400,
      body: { __type: 'com.amazonaws.swf.service.v2.model#StateMachineDoesNotExist', message: 'no such machine' },
    });
    const env = { AWS_ENDPOINT_URL_SFN: sfn.endpoint };

    // Act
    const refused = await cli(['batch', 'iris', ...LOCATIONS], env);
    const outside = await cli(
      ['batch', 'iris', '--input', 's3://prod-models/uploads/', '--output', 's3://prod-models/batch/o/'],
      env,
    );

    // Assess
    expect(refused.code).toBe(EXIT_CODES.failed);
    expect(refused.err).toEqual([
      'error: Step Functions StartExecution refused (HTTP 400, StateMachineDoesNotExist): no such machine',
    ]);
    expect(outside.code).toBe(EXIT_CODES.failed);
    expect(outside.err[0]).toMatch(/^error: input s3:\/\/prod-models\/uploads\/ is not a folder under batch\/: /);
    expect(sfn.calls).toHaveLength(1);
  });

  it('is a usage error without a state machine, with a malformed one, or with --state-machine locally', async () => {
    // Act
    const missing = await cli(['batch', 'iris', ...LOCATIONS], { BATCH_STATE_MACHINE_ARN: '' });
    const malformed = await cli(['batch', 'iris', ...LOCATIONS, '--state-machine', 'BatchJobs'], {});
    const local = await cli(['batch', 'iris', ...LOCATIONS, '--state-machine', STATE_MACHINE], { MODEL_BUCKET: '' });
    const both = await cli(['batch', 'iris', ...LOCATIONS, '--state-machine', STATE_MACHINE, '--api', 'http://x'], {});

    // Assess
    expect([missing.code, malformed.code, local.code, both.code]).toEqual(Array(4).fill(EXIT_CODES.usage));
    expect(missing.err[0]).toBe(
      'error: MODEL_BUCKET is set, so batch starts a deployed job: pass --state-machine <arn> or set ' +
        "BATCH_STATE_MACHINE_ARN to the stack output BatchStateMachineArn (for npm start's local engine, unset " +
        'MODEL_BUCKET or pass --api)',
    );
    expect(malformed.err[0]).toContain('"BatchJobs" is not a state machine ARN');
    expect(local.err[0]).toContain('--state-machine starts a deployed job');
    expect(both.err[0]).toContain("--api (npm start's gateway) and --state-machine (a deployed stack) exclude");
  });
});
