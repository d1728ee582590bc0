/**
 * Batch jobs on AWS: one Step Functions state machine per stack whose Distributed Map lists a job's input prefix
 * (`ItemReader`), hands the keys to the batch function in batches (`ItemBatcher`), bounded by `maxConcurrency`
 * (never above the function's reserved concurrency) and tolerating `toleratedFailurePercentage` failed children,
 * then writes the job record and publishes it on the stack's batch topic (docs/batch.md).
 *
 * States: `Request` (fills in `version: latest`), `Start` (the batch function checks the locations, pins the version
 * and writes the RUNNING record), `Items` (the map; each child invokes the function's published version, so its
 * code cannot change under a running job either), `Finish` (the record, counted from the bucket), `Notify`.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { BATCH_DEFAULTS } from '../functions/core/batch/job.js';
import { DEFAULT_LIMITS } from '../functions/core/catalog.js';
import { functionErrorsAlarm } from './alarms.js';
import { grantBucketAccess } from './bucket-grants.js';
import { ENV } from './constants.js';
import { BATCH_FUNCTION_ACCESS, BATCH_STATE_MACHINE_ACCESS } from './function-grants.js';
import type { HostedFunctionProps } from './function-props.js';
import { acknowledge, wildcardResourceFinding } from './nag.js';
import { ServiceFunction } from './service-function.js';

/** Props of {@link BatchJobs}. */
export interface BatchJobsProps extends HostedFunctionProps {
  /**
   * Children of the Distributed Map in flight at once (`MaxConcurrency`). Never above `reservedConcurrency`: a
   * synth that asks for more fails. CLI: `-c batchMaxConcurrency=20`.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * Reserved concurrency of the batch function: what a job may use at most, kept free from the account's other
   * functions. CLI: `-c batchReservedConcurrency=20`.
   * @default 10
   */
  readonly reservedConcurrency?: number;
  /**
   * Share of failed children (batches whose function failed after its retries) the job tolerates before the map
   * fails; a failed item is a failure record, never a failed child. CLI: `-c batchToleratedFailurePercentage=5`.
   * @default 10
   */
  readonly toleratedFailurePercentage?: number;
  /** Input objects per child invocation (`MaxItemsPerBatch`). @default 32 */
  readonly itemsPerChild?: number;
  /** Memory of the batch function. @default 3008 */
  readonly memoryMb?: number;
}

/** Distributed Map's own bound on `MaxConcurrency`. */
const MAX_MAP_CONCURRENCY = 10_000;

/** `S3ObjectsItemReader` without its bucket-wide `s3:ListBucket`: the role's grants come from `function-grants.ts`. */
class ScopedS3ObjectsItemReader extends sfn.S3ObjectsItemReader {
  public override providePolicyStatements(): iam.PolicyStatement[] {
    return [];
  }
}

/** The batch function, the state machine and the topic of finished jobs. */
export class BatchJobs extends Construct {
  /** The batch function (start, items, finish). */
  public readonly batchFunction: ServiceFunction;
  /** The state machine; start an execution with `{"model", "version"?, "input", "output"}`. */
  public readonly stateMachine: sfn.StateMachine;
  /** Every finished job's record is published here. */
  public readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: BatchJobsProps) {
    super(scope, id);
    const maxConcurrency = props.maxConcurrency ?? BATCH_DEFAULTS.maxConcurrency;
    const reservedConcurrency = props.reservedConcurrency ?? BATCH_DEFAULTS.reservedConcurrency;
    const tolerated = props.toleratedFailurePercentage ?? BATCH_DEFAULTS.toleratedFailurePercentage;
    const itemsPerChild = props.itemsPerChild ?? BATCH_DEFAULTS.itemsPerChild;
    validate(this.node.path, { maxConcurrency, reservedConcurrency, tolerated, itemsPerChild });

    this.batchFunction = new ServiceFunction(this, 'Batch', {
      handler: 'batch',
      architecture: props.layer.architecture,
      layer: props.layer,
      ...(props.runtime === undefined ? {} : { runtime: props.runtime }),
      memoryMb: props.memoryMb ?? 3008,
      // A child runs at most 32 items by default; a slow model gets the most Lambda allows.
      timeout: Duration.minutes(15),
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      serviceName: 'batch',
      description: 'batch jobs (onnx-serverless): the children of the batch state machine',
      reservedConcurrency,
      environment: {
        [ENV.modelBucket]: props.bucket.bucketName,
        [ENV.modelLimits]: JSON.stringify(DEFAULT_LIMITS),
      },
    });
    grantBucketAccess(this.batchFunction.role, props.bucket, BATCH_FUNCTION_ACCESS);
    functionErrorsAlarm(this.batchFunction, props.alarmAction);
    // Children invoke one published version: the code of a running job never changes under it.
    const version = this.batchFunction.function.currentVersion;

    this.topic = new sns.Topic(this, 'Topic', { displayName: 'onnx-serverless batch jobs', enforceSSL: true });
    acknowledge(
      this.topic,
      ['SNS2'],
      'Job records carry object keys and counts, never model inputs or outputs; the AWS-managed SNS key would keep ' +
        'no subscriber (SQS, Lambda) from reading them, and a customer key would cost more than the notifications.',
    );

    const request = new sfn.Pass(this, 'Request', {
      comment: 'The execution input, with "version": "latest" unless it names one',
      parameters: { 'request.$': 'States.JsonMerge(States.StringToJson(\'{"version":"latest"}\'), $, false)' },
    });
    const start = new tasks.LambdaInvoke(this, 'Start', {
      comment: 'Checks the locations, pins the version, writes the RUNNING job record',
      lambdaFunction: version,
      payload: sfn.TaskInput.fromObject({
        action: 'start',
        jobId: sfn.JsonPath.executionName,
        model: sfn.JsonPath.stringAt('$.request.model'),
        version: sfn.JsonPath.stringAt('$.request.version'),
        input: sfn.JsonPath.stringAt('$.request.input'),
        output: sfn.JsonPath.stringAt('$.request.output'),
      }),
      payloadResponseOnly: true,
      resultPath: '$.job',
      retryOnServiceExceptions: true,
    });
    const child = new tasks.LambdaInvoke(this, 'RunItems', {
      comment: 'One batch of input keys: one result or failure record each',
      lambdaFunction: version,
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    // A 503 (the model could not be loaded right now) wrote nothing for its items: the batch is tried again.
    child.addRetry({
      errors: ['ServiceUnavailableError', 'States.Timeout'],
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 3,
    });
    const items = new sfn.DistributedMap(this, 'Items', {
      comment: 'Lists the input prefix and runs the batch function on each batch of keys',
      itemReader: new ScopedS3ObjectsItemReader({
        bucket: props.bucket,
        prefix: sfn.JsonPath.stringAt('$.job.input.prefix'),
      }),
      itemBatcher: new sfn.ItemBatcher({ maxItemsPerBatch: itemsPerChild, batchInput: { 'job.$': '$.job' } }),
      maxConcurrency,
      toleratedFailurePercentage: tolerated,
      mapExecutionType: sfn.StateMachineType.EXPRESS,
      resultPath: sfn.JsonPath.DISCARD,
    });
    items.itemProcessor(
      new sfn.Pass(this, 'Unwrap', {
        comment: 'ItemBatcher nests the job under BatchInput.job; the function takes it as BatchInput',
        parameters: { 'Items.$': '$.Items', 'BatchInput.$': '$.BatchInput.job' },
      }).next(child),
    );
    const finish = new tasks.LambdaInvoke(this, 'Finish', {
      comment: 'Counts the results and failure records in the bucket, writes the job record',
      lambdaFunction: version,
      payload: sfn.TaskInput.fromObject({ action: 'finish', job: sfn.JsonPath.objectAt('$.job') }),
      payloadResponseOnly: true,
      resultPath: '$.record',
      retryOnServiceExceptions: true,
    });
    // A map over its tolerated failures still gets its record: the pending items are counted, a redrive resumes.
    items.addCatch(finish, { resultPath: '$.mapError' });
    const notify = new tasks.SnsPublish(this, 'Notify', {
      comment: 'The job record, on the batch topic',
      topic: this.topic,
      message: sfn.TaskInput.fromText(sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$.record'))),
      subject: 'onnx-serverless batch job finished',
      resultPath: sfn.JsonPath.DISCARD,
    });

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'onnx-serverless batch jobs: input {"model", "version"?, "input": "s3://...", "output": "s3://..."}',
      definitionBody: sfn.DefinitionBody.fromChainable(request.next(start).next(items).next(finish).next(notify)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    grantBucketAccess(this.stateMachine.role, props.bucket, BATCH_STATE_MACHINE_ACCESS);
    acknowledge(
      this.stateMachine.role,
      ['IAM5[Resource::*]'],
      'Step Functions log delivery and X-Ray (logs:CreateLogDelivery..., xray:PutTraceSegments) support no ' +
        'resource-level permissions.',
    );
    // aws-cdk-lib's policy for the map's own child executions: scoped to this state machine's executions.
    const mapPolicy = this.stateMachine.node.tryFindChild('DistributedMapPolicy') as iam.Policy | undefined;
    const mapResources = (
      mapPolicy?.document.toJSON() as { Statement?: { Resource?: string | string[] }[] } | undefined
    )?.Statement?.flatMap((statement) => statement.Resource ?? []).filter((resource) => resource.includes('*'));
    acknowledge(
      this.stateMachine,
      (mapResources ?? []).map((resource) => wildcardResourceFinding(this, resource)),
      "A Distributed Map describes and stops its own child executions: aws-cdk-lib scopes the grant to this state machine's executions.",
    );
  }
}

function validate(
  path: string,
  values: { maxConcurrency: number; reservedConcurrency: number; tolerated: number; itemsPerChild: number },
): void {
  const { maxConcurrency, reservedConcurrency, tolerated, itemsPerChild } = values;
  if (!Number.isInteger(reservedConcurrency) || reservedConcurrency < 1) {
    throw new Error(`${path}: batchReservedConcurrency must be a positive integer, got ${reservedConcurrency}`);
  }
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > MAX_MAP_CONCURRENCY) {
    throw new Error(
      `${path}: batchMaxConcurrency must be an integer from 1 to ${MAX_MAP_CONCURRENCY}, got ${maxConcurrency}`,
    );
  }
  if (maxConcurrency > reservedConcurrency) {
    throw new Error(
      `${path}: batchMaxConcurrency ${maxConcurrency} is above the batch function's reserved concurrency ` +
        `${reservedConcurrency}: the children past it would be throttled; lower -c batchMaxConcurrency or raise ` +
        '-c batchReservedConcurrency',
    );
  }
  if (!Number.isFinite(tolerated) || tolerated < 0 || tolerated > 100) {
    throw new Error(`${path}: batchToleratedFailurePercentage must be from 0 to 100, got ${tolerated}`);
  }
  if (!Number.isInteger(itemsPerChild) || itemsPerChild < 1) {
    throw new Error(`${path}: items per child must be a positive integer, got ${itemsPerChild}`);
  }
}
