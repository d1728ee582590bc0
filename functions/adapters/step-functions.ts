/**
 * The two Step Functions calls that start and follow a deployed batch job, `StartExecution` and `DescribeExecution`,
 * as signed AWS JSON 1.0 requests (`aws-request.ts`): the SDK's Step Functions client would be a new dependency for
 * two requests.
 */
import { createAwsPoster } from './aws-request.js';
import type { CredentialsSource } from './aws-signing.js';

/** Options of {@link createStepFunctions}. */
export interface StepFunctionsOptions {
  /** The state machine's region (the fourth field of its ARN). */
  readonly region: string;
  /** Read on the first call. */
  readonly credentials: () => CredentialsSource;
  /**
   * The Step Functions API's endpoint (`AWS_ENDPOINT_URL_SFN`), for tests.
   * @default `https://states.<region>.amazonaws.com`
   */
  readonly endpoint?: string;
}

/** An execution's status, as `DescribeExecution` names it; only `RUNNING` and `PENDING_REDRIVE` are still going. */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

/** What `StartExecution` answers. */
export interface StartedExecution {
  readonly executionArn: string;
  /** When the execution started. */
  readonly startDate: Date;
}

/** What `DescribeExecution` answers, the fields the CLI reads. */
export interface ExecutionDescription {
  readonly executionArn: string;
  /** The execution's name: a batch job's id. */
  readonly name: string;
  readonly status: ExecutionStatus;
  /** The error name of a failed execution, e.g. `BadRequestError` (a refused start). */
  readonly error?: string;
  /** Why it failed: for a failed Lambda task, the function's JSON error (`errorType`, `errorMessage`). */
  readonly cause?: string;
}

/** Step Functions refused a call: its error type (`StateMachineDoesNotExist`, `AccessDeniedException`...). */
export class StepFunctionsError extends Error {
  /** The error type without its namespace, e.g. `ExecutionAlreadyExists`. */
  public readonly type: string;
  /** The HTTP status of the answer. */
  public readonly status: number;

  public constructor(action: string, status: number, type: string, message: string, options?: ErrorOptions) {
    super(`Step Functions ${action} refused (HTTP ${status}, ${type}): ${message}`, options);
    this.name = 'StepFunctionsError';
    this.type = type;
    this.status = status;
  }
}

/** The calls a deployed batch job needs. */
export interface StepFunctions {
  /**
   * Starts an execution of `stateMachineArn` named `name` with `input` (serialised as JSON).
   * @throws StepFunctionsError when Step Functions refuses it.
   */
  startExecution(stateMachineArn: string, name: string, input: unknown): Promise<StartedExecution>;
  /**
   * Where an execution is.
   * @throws StepFunctionsError when Step Functions refuses it.
   */
  describeExecution(executionArn: string): Promise<ExecutionDescription>;
}

/**
 * A Step Functions client for the calls of {@link StepFunctions}, one signed POST each.
 * @example
 * const sfn = createStepFunctions({ region: 'eu-west-1', credentials: () => chain() });
 * const { executionArn } = await sfn.startExecution(arn, jobId, { model: 'iris', version: 'latest', input, output });
 */
export function createStepFunctions(options: StepFunctionsOptions): StepFunctions {
  const endpoint = options.endpoint ?? `https://states.${options.region}.amazonaws.com`;
  const post = createAwsPoster('states', endpoint, options.region, options.credentials);
  const path = new URL(endpoint).pathname || '/';
  const call = async (action: 'StartExecution' | 'DescribeExecution', request: object): Promise<unknown> => {
    const answer = await post(
      path,
      { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AWSStepFunctions.${action}` },
      JSON.stringify(request),
    );
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      // A proxy's HTML page or an empty body: reported below with the status.
    }
    if (answer.status !== 200) {
      // AWS JSON errors name their type as `__type`, often with a namespace (`com.amazonaws...#ExecutionDoesNotExist`).
      const type = String(body.__type ?? answer.headers['x-amzn-errortype'] ?? 'UnknownError').replace(/^.*#/, '');
      const message = String(body.message ?? body.Message ?? answer.text.slice(0, 300));
      throw new StepFunctionsError(action, answer.status, type.replace(/:.*$/, ''), message);
    }
    return body;
  };
  return {
    async startExecution(stateMachineArn, name, input) {
      const body = (await call('StartExecution', { stateMachineArn, name, input: JSON.stringify(input) })) as {
        executionArn: string;
        startDate: number;
      };
      // AWS JSON 1.0 sends timestamps as epoch seconds.
      return { executionArn: body.executionArn, startDate: new Date(body.startDate * 1000) };
    },
    async describeExecution(executionArn) {
      const body = (await call('DescribeExecution', { executionArn })) as Record<string, unknown>;
      return {
        executionArn: String(body.executionArn),
        name: String(body.name),
        status: body.status as ExecutionStatus,
        ...(typeof body.error === 'string' ? { error: body.error } : {}),
        ...(typeof body.cause === 'string' ? { cause: body.cause } : {}),
      };
    },
  };
}
