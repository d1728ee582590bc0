/**
 * How an infer function runs its async jobs (docs/async.md): an `async` alias that the function invokes with
 * `InvocationType: Event`, whose event invoke configuration bounds the event's age and its retries and routes the
 * outcome: on success to EventBridge's default bus (a "Lambda Function Invocation Result - Success" event that rules
 * can forward anywhere, with no resource of ours to secure), on failure back to the same function, which writes the
 * error record at the job's output location and marks the job failed (a timeout or a crash cannot write its own).
 * The alias keeps these destinations off every other asynchronous invocation (warmers invoke the function itself).
 * The local runtime does the same with the same numbers (`functions/local/async-invocation.ts`).
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { Construct } from 'constructs';
import { ASYNC_INVOCATION } from '../functions/core/async-jobs.js';

/** Props of {@link AsyncInvocation}. */
export interface AsyncInvocationProps {
  /** The infer function whose jobs these are. */
  readonly function: lambda.Function;
  /** Its execution role: it queues jobs on the alias and is its own on-failure destination. */
  readonly role: iam.IRole;
}

/** The `async` alias of an infer function and its event invoke configuration. */
export class AsyncInvocation extends Construct {
  /** The alias async jobs are queued on. */
  public readonly alias: lambda.Alias;
  /** Maximum event age, retries and destinations of the alias. */
  public readonly config: lambda.EventInvokeConfig;

  constructor(scope: Construct, id: string, props: AsyncInvocationProps) {
    super(scope, id);
    const fn = props.function;
    this.alias = new lambda.Alias(this, 'Alias', { aliasName: ASYNC_INVOCATION.alias, version: fn.currentVersion });
    // A policy of its own, not the role's default one (which the function depends on): the statement names the
    // function's ARN without a dependency cycle.
    const invoke = new iam.Policy(this, 'Invoke', {
      roles: [props.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          // The alias (queuing a job) and the function itself (its on-failure destination).
          resources: [fn.functionArn, `${fn.functionArn}:${ASYNC_INVOCATION.alias}`],
        }),
      ],
    });
    this.config = new lambda.EventInvokeConfig(this, 'Config', {
      function: fn,
      qualifier: ASYNC_INVOCATION.alias,
      maxEventAge: Duration.seconds(ASYNC_INVOCATION.maxEventAgeSeconds),
      retryAttempts: ASYNC_INVOCATION.retryAttempts,
      onSuccess: new destinations.EventBridgeDestination(),
      onFailure: { bind: () => ({ destination: fn.functionArn }) },
    });
    // Lambda checks the role may reach both destinations when the configuration is created.
    this.config.node.addDependency(this.alias, invoke);
  }
}
