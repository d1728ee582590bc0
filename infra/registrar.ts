/**
 * Registration on AWS: the `register` function, subscribed to the bucket's ObjectCreated events for
 * `uploads/**` + `.onnx`, with the S3 rights registration needs and an alarm on its errors.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { functionErrorsAlarm } from './alarms.js';
import { grantBucketAccess } from './bucket-grants.js';
import { REGISTER_ACCESS } from './function-grants.js';
import { registerScratchMbFor } from '../functions/core/file-registration.js';
import { DEFAULT_MAX_MODEL_BYTES } from '../functions/wiring/config.js';
import { ENV, REPOSITORY_PREFIXES, UPLOAD_SUFFIXES } from './constants.js';
import { acknowledge } from './nag.js';
import { PLATFORM_LIMITS } from '../functions/core/platform-limits.js';
import type { Architecture } from './lambda-runtime.js';
import type { HostedFunctionProps } from './function-props.js';
import { ServiceFunction } from './service-function.js';

/** Props of {@link Registrar}. */
export interface RegistrarProps extends HostedFunctionProps {
  /**
   * Memory of `register`, which parses, rewrites and test-runs every upload.
   * @default 3008
   */
  readonly memoryMb?: number;
  /**
   * Timeout of `register`.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * The image preprocessing that catalog entries declare (`catalogPreprocessJson` of the catalog), set as
   * `CATALOG_PREPROCESS`: registration applies it to every upload of those models.
   * @default none
   */
  readonly catalogPreprocess?: string;
  /**
   * The rollout policies that catalog entries declare (`catalogRolloutJson` of the catalog), set as
   * `CATALOG_ROLLOUT`: registration applies them to every upload of those models (docs/rollouts.md).
   * @default none
   */
  readonly catalogRollout?: string;
}

/**
 * Bytes of Lambda's 4 KB environment that `CATALOG_PREPROCESS` may take: the rest is for register's other
 * variables (bucket, Powertools, NODE_OPTIONS: about 300 bytes today).
 */
export const CATALOG_PREPROCESS_MAX_BYTES = PLATFORM_LIMITS.lambdaEnvironmentBytes - 1024;

/**
 * The `register` function, its bucket notification, rights and alarms, and the queue where S3 events land when
 * registration failed on every attempt (Lambda retries an asynchronous invocation twice).
 */
export class Registrar extends Construct {
  /** The `register` function and its role. */
  public readonly registerFunction: ServiceFunction;
  /** Fires on any error of `register` in five minutes. */
  public readonly errorsAlarm: cloudwatch.Alarm;
  /**
   * Receives the S3 event (with the error) of every upload whose registration failed after Lambda's retries: the
   * upload neither became a version nor a rejection record. Redrive by re-uploading, or invoke `register` with the
   * message's event.
   */
  public readonly failedEvents: sqs.Queue;
  /** Fires when a failed registration is waiting in {@link failedEvents}. */
  public readonly failedEventsAlarm: cloudwatch.Alarm;
  /** The architecture `register` runs on (its layer's). */
  public readonly architecture: Architecture;

  constructor(scope: Construct, id: string, props: RegistrarProps) {
    super(scope, id);
    const memory = props.memoryMb ?? 3008;
    if (!Number.isInteger(memory) || memory < 128 || memory > 10240) {
      throw new Error(`${this.node.path}: registerMemoryMb must be an integer from 128 to 10240, got ${memory}`);
    }
    this.architecture = props.layer.architecture;
    const preprocess = props.catalogPreprocess;
    const rollout = props.catalogRollout;
    const preprocessBytes = Buffer.byteLength(
      `${ENV.catalogPreprocess}${preprocess ?? ''}${rollout === undefined ? '' : `${ENV.catalogRollout}${rollout}`}`,
    );
    if ((preprocess !== undefined || rollout !== undefined) && preprocessBytes > CATALOG_PREPROCESS_MAX_BYTES) {
      throw new Error(
        `${this.node.path}: the image preprocessing declared in the catalog (models/*.json "preprocess") takes ` +
          `${preprocessBytes} bytes of register's environment (${ENV.catalogPreprocess}, with ${ENV.catalogRollout}), over the ` +
          `${CATALOG_PREPROCESS_MAX_BYTES} that Lambda's 4 KB limit leaves it: move some models' "preprocess" to ` +
          'the sidecar uploaded with their model (<file>.onnx.json)',
      );
    }
    const register = new ServiceFunction(this, 'Register', {
      handler: 'register',
      architecture: props.layer.architecture,
      layer: props.layer,
      ...(props.runtime === undefined ? {} : { runtime: props.runtime }),
      memoryMb: memory,
      timeout: props.timeout ?? Duration.minutes(5),
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      serviceName: 'register',
      description: 'Validates uploads/<model>/*.onnx and *.zip and registers them as new versions (onnx-serverless)',
      // A .zip upload and its unpacked files sit in /tmp together while it registers.
      ephemeralStorageMb: registerScratchMbFor(DEFAULT_MAX_MODEL_BYTES),
      environment: {
        [ENV.modelBucket]: props.bucket.bucketName,
        ...(preprocess === undefined ? {} : { [ENV.catalogPreprocess]: preprocess }),
        ...(rollout === undefined ? {} : { [ENV.catalogRollout]: rollout }),
      },
    });
    this.registerFunction = register;
    grantBucketAccess(register.role, props.bucket, REGISTER_ACCESS);

    // S3 takes one suffix per filter: one notification per suffix that starts a registration.
    for (const suffix of UPLOAD_SUFFIXES) {
      props.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(register.function), {
        prefix: REPOSITORY_PREFIXES.uploads,
        suffix,
      });
    }
    this.errorsAlarm = functionErrorsAlarm(register, props.alarmAction);

    this.failedEvents = new sqs.Queue(this, 'FailedRegistrations', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.failedEvents,
      ['SQS3'],
      'This queue is itself the on-failure destination of register; nothing consumes it automatically.',
    );
    register.function.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(this.failedEvents) });
    this.failedEventsAlarm = new cloudwatch.Alarm(this, 'FailedRegistrationsAlarm', {
      alarmDescription:
        'register: an upload could not be registered after retries; its S3 event waits in the failed-registrations queue',
      metric: this.failedEvents.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmAction !== undefined) this.failedEventsAlarm.addAlarmAction(props.alarmAction);
  }
}
