/**
 * The Step Functions adapter against a loopback HTTP server standing in for the Step Functions API (an AWS boundary
 * without a local server): what is sent (AWS JSON 1.0 headers, the signature's scope, the body) and how its answers
 * and refusals come back.
 */
import { describe, expect, it } from 'vitest';
import { awsStandIn } from './aws-stand-in.js';
import { createStepFunctions, StepFunctionsError } from '../../functions/adapters/step-functions.js';

const credentials = () => ({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:BatchJobs';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:BatchJobs:job-1';

describe('createStepFunctions', () => {
  it('starts an execution named after the job with its input as a JSON string, signed for states', async () => {
    // Prepare
    const sfn = await awsStandIn(200, () => JSON.stringify({ executionArn: EXECUTION, startDate: 1796529600.5 }));
    const client = createStepFunctions({ region: 'eu-west-1', credentials, endpoint: sfn.endpoint });
    const input = { model: 'iris', version: 'latest', input: 's3://b/batch/in/', output: 's3://b/batch/out/' };

    // Act
    const started = await client.startExecution(STATE_MACHINE, 'job-1', input);

    // Assess
    expect(started).toEqual({ executionArn: EXECUTION, startDate: new Date(1796529600500) });
    const [call] = sfn.received;
    expect(call?.path).toBe('/');
    expect(call?.headers['x-amz-target']).toBe('AWSStepFunctions.StartExecution');
    expect(call?.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(call?.headers['x-amz-security-token']).toBe('token');
    expect(String(call?.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-1\/states\/aws4_request, SignedHeaders=[^ ]*x-amz-target/,
    );
    expect(JSON.parse(call?.body ?? '')).toEqual({
      stateMachineArn: STATE_MACHINE,
      name: 'job-1',
      input: JSON.stringify(input),
    });
  });

  it("describes an execution, with a failed one's error and cause", async () => {
    // Prepare: the answer of an execution refused at its Start state.
    const cause = JSON.stringify({ errorType: 'BadRequestError', errorMessage: 'input s3://b/x/ is not a folder' });
    const sfn = await awsStandIn(200, () =>
      JSON.stringify({
        executionArn: EXECUTION,
        stateMachineArn: STATE_MACHINE,
        name: 'job-1',
        status: 'FAILED',
        startDate: 1796529600,
        stopDate: 1796529601,
        error: 'BadRequestError',
        cause,
      }),
    );
    const client = createStepFunctions({ region: 'eu-west-1', credentials, endpoint: sfn.endpoint });

    // Act
    const described = await client.describeExecution(EXECUTION);

    // Assess
    expect(described).toEqual({
      executionArn: EXECUTION,
      name: 'job-1',
      status: 'FAILED',
      error: 'BadRequestError',
      cause,
    });
    expect(sfn.received[0]?.headers['x-amz-target']).toBe('AWSStepFunctions.DescribeExecution');
    expect(JSON.parse(sfn.received[0]?.body ?? '')).toEqual({ executionArn: EXECUTION });
  });

  it('rejects with the error type and message Step Functions answers', async () => {
    // Prepare
    const sfn = await awsStandIn(400, () =>
      JSON.stringify({
        __type: 'com.amazonaws.swf.service.v2.model#StateMachineDoesNotExist',
        message: `State Machine Does Not Exist: '${STATE_MACHINE}'`,
      }),
    );
    const client = createStepFunctions({ region: 'eu-west-1', credentials, endpoint: sfn.endpoint });

    // Act
    const refused = await client.startExecution(STATE_MACHINE, 'job-1', {}).catch((error: unknown) => error);

    // Assess
    expect(refused).toBeInstanceOf(StepFunctionsError);
    expect(refused).toMatchObject({
      name: 'StepFunctionsError',
      type: 'StateMachineDoesNotExist',
      status: 400,
      message: `Step Functions StartExecution refused (HTTP 400, StateMachineDoesNotExist): State Machine Does Not Exist: '${STATE_MACHINE}'`,
    });
  });
});
