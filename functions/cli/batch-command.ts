/**
 * `npm run models -- batch <model>[:<version>] --input s3://... --output s3://...`: starts a batch job
 * (docs/batch.md) on one of its two engines, `npm start`'s local engine through the gateway's batch route, or the
 * stack's Step Functions state machine, and with `--wait` follows it to its job record. Both end the same way: the
 * record's counts, and exit 1 when items were left pending.
 */
import { randomUUID } from 'node:crypto';
import { type ExecutionDescription, type StepFunctions, StepFunctionsError } from '../adapters/step-functions.js';
import { checkBatchLocations, type JobRecord, jobRecordKey, parseS3Uri } from '../core/batch/index.js';
import { BadRequestError } from '../core/errors.js';
import { checkModelName, type CommandContext, DEFAULT_WAIT_SECONDS } from './commands.js';
import { CommandFailedError, EXIT_CODES, UsageError } from './errors.js';

/** `npm start`'s gateway, whose batch routes run the local engine. */
export interface GatewayEngine {
  readonly kind: 'gateway';
  /** The gateway's URL, e.g. `http://127.0.0.1:8080`. */
  readonly api: string;
}

/** The stack's batch state machine: one execution per job, named after the job. */
export interface StepFunctionsEngine {
  readonly kind: 'step-functions';
  /** The stack output `BatchStateMachineArn`. */
  readonly stateMachineArn: string;
  readonly stepFunctions: StepFunctions;
  /** The model bucket (`MODEL_BUCKET`): the locations must be in it, and `--wait` reads the job record from it. */
  readonly bucket: string;
}

/** Options of {@link batchCommand}. */
export interface BatchOptions {
  /** `<model>` or `<model>:<version>` (a number or a label). */
  readonly target: string;
  readonly input: string;
  readonly output: string;
  /** Where the job runs. */
  readonly engine: GatewayEngine | StepFunctionsEngine;
  readonly wait: boolean;
  /** @default {@link DEFAULT_WAIT_SECONDS} */
  readonly timeoutSeconds?: number;
  /** The job id of a deployed job (the execution's name). @default a random UUID */
  readonly jobId?: string;
}

/**
 * How often `batch --wait` looks at the job: the local record is one GET on loopback; a deployed execution takes
 * seconds per step anyway (Lambda invocations, the map's listing), so polling faster only spends API calls.
 */
const POLL_MS = { gateway: 500, 'step-functions': 2000 } as const;

/** A started job, as the wait loop follows it. */
interface StartedJob {
  readonly jobId: string;
  /** What `--json` prints when not waiting. */
  readonly summary: Readonly<Record<string, unknown>>;
  /** One look at the job: its complete record, or `undefined` while it runs. */
  readonly poll: () => Promise<JobRecord | undefined>;
}

/**
 * `batch <model>[:<version>] --input s3://... --output s3://...`: starts a batch job and prints its id; with `wait`,
 * follows it until its record is complete and prints its counts (exit 1 if items were left pending, 3 on timeout).
 */
export async function batchCommand(ctx: CommandContext, options: BatchOptions): Promise<number> {
  const [model = '', version = 'latest', ...extra] = options.target.split(':');
  checkModelName(model);
  if (extra.length > 0 || version === '')
    throw new UsageError(`batch takes <model>[:<version>], got "${options.target}"`);
  const { engine } = options;
  const job =
    engine.kind === 'gateway'
      ? await startOnGateway(ctx, engine, model, version, options)
      : await startOnStepFunctions(ctx, engine, model, version, options);
  if (!options.wait) {
    if (ctx.json) ctx.out(JSON.stringify(job.summary));
    return EXIT_CODES.ok;
  }
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = ctx.now ?? Date.now;
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_WAIT_SECONDS;
  const deadline = now() + timeoutSeconds * 1000;
  for (;;) {
    const record = await job.poll();
    if (record !== undefined) {
      if (ctx.json) ctx.out(JSON.stringify(record));
      else {
        const c = record.counts;
        ctx.out(
          `job ${job.jobId} ${record.state.toLowerCase()} in ${((record.durationMs ?? 0) / 1000).toFixed(1)} s: ` +
            `${c?.inputs} inputs, ${c?.results} results, ${c?.failures} failure records, ${c?.pending} pending` +
            ` (under ${options.output})`,
        );
      }
      return (record.counts?.pending ?? 0) > 0 ? EXIT_CODES.failed : EXIT_CODES.ok;
    }
    if (now() >= deadline) {
      ctx.err(`job ${job.jobId} still running after ${timeoutSeconds} s`);
      return EXIT_CODES.timedOut;
    }
    await sleep(POLL_MS[engine.kind]);
  }
}

/** Starts the job through the batch route of `npm start`'s gateway; its refusals are the route's 4xx. */
async function startOnGateway(
  ctx: CommandContext,
  engine: GatewayEngine,
  model: string,
  version: string,
  options: BatchOptions,
): Promise<StartedJob> {
  const base = engine.api.replace(/\/$/, '');
  const call = async (method: string, route: string, body?: unknown): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await fetch(`${base}${route}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
    } catch (error) {
      throw new CommandFailedError(`cannot reach the API at ${base} (start it with \`npm start\`, or pass --api)`, {
        cause: error,
      });
    }
    const text = await response.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { error: text.slice(0, 300) };
    }
    if (response.status >= 400) {
      throw new CommandFailedError(`${base} answered ${response.status}: ${String(json.error)}`);
    }
    return json;
  };
  const versionPath = version === 'latest' ? '' : `/versions/${encodeURIComponent(version)}`;
  const started = (await call('POST', `/v2/models/${encodeURIComponent(model)}${versionPath}/batch`, {
    input: options.input,
    output: options.output,
  })) as { jobId: string; version: string; status_url: string };
  if (!ctx.json)
    ctx.out(`job ${started.jobId}: ${model} version ${started.version}; status ${base}${started.status_url}`);
  return {
    jobId: started.jobId,
    summary: started,
    poll: async () => {
      const record = (await call('GET', started.status_url)) as unknown as JobRecord;
      return record.state === 'RUNNING' ? undefined : record;
    },
  };
}

/**
 * Starts an execution of the stack's state machine named after the job, with the input docs/batch.md gives it.
 * The locations are checked here first, with the rule the `Start` state applies: a refusal costs no execution and
 * comes back at once instead of as a failed execution.
 */
async function startOnStepFunctions(
  ctx: CommandContext,
  engine: StepFunctionsEngine,
  model: string,
  version: string,
  options: BatchOptions,
): Promise<StartedJob> {
  try {
    checkBatchLocations(engine.bucket, parseS3Uri(options.input, 'input'), parseS3Uri(options.output, 'output'));
  } catch (error) {
    if (!(error instanceof BadRequestError)) throw error;
    throw new CommandFailedError(error.message, { cause: error });
  }
  const jobId = options.jobId ?? randomUUID();
  const input = { model, version, input: options.input, output: options.output };
  const { executionArn } = await stepFunctionsCall(() =>
    engine.stepFunctions.startExecution(engine.stateMachineArn, jobId, input),
  );
  const record = `s3://${engine.bucket}/${jobRecordKey(model, jobId)}`;
  if (!ctx.json) {
    ctx.out(`job ${jobId}: ${model} version ${version}; execution ${executionArn}`);
    ctx.out(`job record: ${record} (complete when the job ends; also published on the stack's batch topic)`);
  }
  return {
    jobId,
    summary: { jobId, ...input, state: 'RUNNING', engine: 'step-functions', executionArn, record },
    poll: async () => {
      const execution = await stepFunctionsCall(() => engine.stepFunctions.describeExecution(executionArn));
      if (execution.status === 'RUNNING' || execution.status === 'PENDING_REDRIVE') return undefined;
      if (execution.status !== 'SUCCEEDED') throw new CommandFailedError(executionFailure(execution));
      const stored = await ctx.store.get(jobRecordKey(model, jobId));
      if (stored === undefined) {
        throw new CommandFailedError(`execution ${executionArn} succeeded, but there is no job record at ${record}`);
      }
      return JSON.parse(new TextDecoder().decode(stored.body)) as JobRecord;
    },
  };
}

/**
 * Runs one Step Functions call; its refusal (the error type says what to fix: `StateMachineDoesNotExist`,
 * `AccessDeniedException`...) or an unreachable endpoint become one line instead of an S3 failure's message.
 * The credential chain's own errors pass, for the CLI's message about credentials.
 */
async function stepFunctionsCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StepFunctionsError) throw new CommandFailedError(error.message, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new CommandFailedError(`cannot reach the Step Functions API: ${code} (check your network)`, {
      cause: error,
    });
  }
}

/**
 * Why an execution ended without success, in the words of the local route: a failed Lambda task's cause is the
 * function's `{"errorType", "errorMessage"}`, so a refused start reads `BadRequestError: output s3://... is not ...`.
 */
function executionFailure(execution: ExecutionDescription): string {
  let reason = execution.cause ?? '';
  try {
    const cause = JSON.parse(reason) as { errorMessage?: unknown };
    if (typeof cause.errorMessage === 'string') reason = cause.errorMessage;
  } catch {
    // Not JSON (a States.* error, an abort's note): as it is.
  }
  const error = execution.error ?? 'no error name';
  const status = execution.status.toLowerCase().replace('_', ' ');
  return `execution ${execution.executionArn} ${status}: ${error}${reason === '' ? '' : `: ${reason.slice(0, 1000)}`}`;
}
