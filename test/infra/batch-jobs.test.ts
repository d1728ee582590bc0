/**
 * The batch state machine as synthesized: its definition (the template's ASL, references filled in) passes the
 * Amazon States Language validator `asl-validator`; its Distributed Map lists the input prefix, batches 32 keys per
 * child, is bounded and tolerant as the context says, and its children invoke a published version of the batch
 * function; the S3 rights of the state machine's and the batch function's roles are exactly those of
 * `infra/function-grants.ts` (what the embedded S3 enforces under `npm start`); cdk-nag finds nothing; and a
 * concurrency above the function's reserved concurrency fails the synth naming both options.
 */
import aslValidator from 'asl-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BATCH_FUNCTION_ACCESS,
  BATCH_STATE_MACHINE_ACCESS,
  bucketArn,
  bucketStatements,
} from '../../infra/function-grants.js';
import { addServiceStack, createServiceApp } from '../../infra/service-app.js';
import {
  nagFindings,
  removeTempDirs,
  resources,
  s3PolicyOf,
  synthesize,
  tempDir,
  type Synthesized,
} from './fixture.js';

afterAll(removeTempDirs);

type Json = Record<string, unknown>;

/** Placeholders for what the definition references: each resource type gets a well-formed ARN or name. */
function resolveReference(template: Json, node: Json): string {
  const ref = node.Ref as string | undefined;
  if (ref === 'AWS::Partition') return 'aws';
  if (ref === 'AWS::Region') return 'us-east-1';
  if (ref === 'AWS::AccountId') return '123456789012';
  const type = (template.Resources as Record<string, { Type: string }>)[ref ?? '']?.Type;
  if (type === 'AWS::Lambda::Version') return 'arn:aws:lambda:us-east-1:123456789012:function:batch:1';
  if (type === 'AWS::S3::Bucket') return 'models';
  if (type === 'AWS::SNS::Topic') return 'arn:aws:sns:us-east-1:123456789012:batch-jobs';
  throw new Error(`the definition references something unexpected: ${JSON.stringify(node)}`);
}

/** The state machine's definition as Step Functions receives it. */
function definitionOf(synth: Synthesized): Json {
  const template = synth.template.toJSON() as Json;
  const machines = Object.values(resources(synth.template)).filter(
    (r) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  expect(machines).toHaveLength(1);
  const definitionString = (machines[0]?.Properties?.DefinitionString ?? {}) as Json;
  const join = definitionString['Fn::Join'] as [string, unknown[]];
  const text = join[1]
    .map((part) => (typeof part === 'string' ? part : resolveReference(template, part as Json)))
    .join('');
  return JSON.parse(text) as Json;
}

let synth: Synthesized;
let definition: Json;

beforeAll(() => {
  synth = synthesize(
    { batchMaxConcurrency: 20, batchReservedConcurrency: 25, batchToleratedFailurePercentage: 5 },
    { bundling: false },
  );
  definition = definitionOf(synth);
}, 300_000);

describe('the batch state machine', () => {
  it('passes the Amazon States Language validator', () => {
    const result = aslValidator(definition, { checkPaths: true, checkArn: true });
    expect(result.errorsText()).toBe('');
    expect(result.isValid).toBe(true);
    // The validator bites: a map whose batcher points nowhere, or a dangling Next, is refused.
    const broken = JSON.parse(JSON.stringify(definition)) as { States: Record<string, Json> };
    (broken.States.Start as Json).Next = 'Nowhere';
    expect(aslValidator(broken).isValid).toBe(false);
  });

  it('lists the input prefix, batches 32 keys per child, bounded and tolerant as configured, on a pinned version', () => {
    const states = definition.States as Record<string, Json>;
    expect(Object.keys(states)).toEqual(['Request', 'Start', 'Items', 'Finish', 'Notify']);
    expect(states.Items).toMatchObject({
      Type: 'Map',
      MaxConcurrency: 20,
      ToleratedFailurePercentage: 5,
      ItemReader: {
        Resource: 'arn:aws:states:::s3:listObjectsV2',
        Parameters: { Bucket: 'models', 'Prefix.$': '$.job.input.prefix' },
      },
      ItemBatcher: { MaxItemsPerBatch: 32, BatchInput: { 'job.$': '$.job' } },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' } },
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Finish' }],
    });
    // Every step invokes a published version of the batch function, never $LATEST.
    const processor = (states.Items as { ItemProcessor: { States: Record<string, Json> } }).ItemProcessor.States;
    for (const task of [states.Start, states.Finish, processor.RunItems]) {
      expect(task?.Resource).toBe('arn:aws:lambda:us-east-1:123456789012:function:batch:1');
    }
    expect(states.Start?.Parameters).toMatchObject({ action: 'start', 'jobId.$': '$$.Execution.Name' });
    expect(states.Notify).toMatchObject({ Resource: 'arn:aws:states:::sns:publish' });
    const fn = Object.values(resources(synth.template)).find(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        String((r.Properties?.Description as string) ?? '').startsWith('batch jobs'),
    );
    expect(fn?.Properties?.ReservedConcurrentExecutions).toBe(25);
  });

  it('gives the state machine and the batch function exactly their S3 rights of function-grants.ts', () => {
    const { batchJobs, bucket } = synth.stack;
    const id = (construct: { node: { defaultChild?: unknown } }) =>
      synth.stack.getLogicalId(construct.node.defaultChild as never);
    const s3Statements = (role: { node: { defaultChild?: unknown } }) =>
      s3PolicyOf(synth.template, id(role), id(bucket), 'models').filter((s) =>
        s.Action.some((a) => a.startsWith('s3:')),
      );
    expect(s3Statements(batchJobs.batchFunction.role)).toEqual(
      bucketStatements(BATCH_FUNCTION_ACCESS, bucketArn('models')),
    );
    expect(s3Statements(batchJobs.stateMachine.role as never)).toEqual(
      bucketStatements(BATCH_STATE_MACHINE_ACCESS, bucketArn('models')),
    );
  });

  it('passes cdk-nag with every suppression reasoned', () => {
    expect(nagFindings(synth.app).filter((f) => f.includes('BatchJobs'))).toEqual([]);
  });

  it('refuses at synth a concurrency above the reserved concurrency, naming both options', () => {
    const app = createServiceApp({
      outdir: tempDir('batch-out'),
      context: { 'aws:cdk:bundling-stacks': [], batchMaxConcurrency: '30', batchReservedConcurrency: '20' },
    });
    expect(() => addServiceStack(app)).toThrow(
      /batchMaxConcurrency 30 is above the batch function's reserved concurrency 20.*-c batchReservedConcurrency/,
    );
    const bad = createServiceApp({ outdir: tempDir('batch-out'), context: { batchToleratedFailurePercentage: 'x' } });
    expect(() => addServiceStack(bad)).toThrow(/-c batchToleratedFailurePercentage=x: use a number/);
  });
});
