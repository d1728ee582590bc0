/**
 * One model's inference endpoint: its `infer-<name>` function, its KServe V2 routes, its warmer, its optional
 * provisioned concurrency, its alarms and its optional seed upload, all sized by its `models/<name>.json` entry.
 */
import { Annotations, Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct, type IDependable } from 'constructs';
import { AsyncInvocation } from './async-invocation.js';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { captureEnvironment } from '../functions/core/capture.js';
import { parseCatalogEntry, type CatalogEntry } from '../functions/core/catalog.js';
import { scratchMbFor } from '../functions/core/model-service.js';
import { FRONT_PROFILES, type ApiFront } from '../functions/core/fronts.js';
import { PLATFORM_LIMITS } from '../functions/core/platform-limits.js';
import { addTableRoutes } from './api-routes.js';
import { DEFAULT_MODELS_DIR, resolveSeedPath } from './catalog-loader.js';
import { ENV, REPOSITORY_PREFIXES, UPLOAD_SUFFIX } from './constants.js';
import { grantBucketAccess } from './bucket-grants.js';
import { inferAccess } from './function-grants.js';
import { acknowledge, wildcardResourceFinding } from './nag.js';
import type { NodeRuntime } from './lambda-runtime.js';
import type { OnnxruntimeLayer } from './onnxruntime-layer.js';
import { ServiceFunction } from './service-function.js';
import { restIntegrationOptions, streamingEnvironment } from './response-streaming.js';

/** Props of {@link ModelEndpoint}. */
export interface ModelEndpointProps {
  /** The model's catalog entry (`models/<name>.json`, parsed with `parseCatalogEntry` or `loadCatalog`). */
  readonly model: CatalogEntry;
  /**
   * The `/v2/models` resource of the REST API; the endpoint adds `<name>` and its sub-routes under it.
   * @default no REST routes: another front (HTTP API, function URL) routes to {@link ModelEndpoint.invokeTarget}
   */
  readonly modelsResource?: apigw.IResource;
  /** The model repository bucket. The function may read only `models/<name>/*` of it. */
  readonly bucket: s3.IBucket;
  /** The onnxruntime layer; its architecture must be the model's. */
  readonly layer: OnnxruntimeLayer;
  /**
   * Options of every method this endpoint adds (authorization, API key, request validator).
   * @default no authorization: set this, as {@link OnnxServerlessStack} does
   */
  readonly methodOptions?: apigw.MethodOptions;
  /**
   * The front that routes to this endpoint: its timeout decides the catalog's timeout warning.
   * @default 'rest'
   */
  readonly front?: ApiFront;
  /** The Node.js runtime. @default 'nodejs24.x' */
  readonly runtime?: NodeRuntime;
  /**
   * The capacity provider the function runs on, for an entry with `managedInstances` (required then).
   * @default none: on-demand Lambda
   */
  readonly capacityProvider?: lambda.CapacityProvider;
  /**
   * The front streams answers (see `infra/response-streaming.ts`): the infer function gets `RESPONSE_STREAMING=true`
   * and its REST integration `responseTransferMode: STREAM` (InvokeWithResponseStream), so answers past Lambda's
   * 6 MB buffered limit are streamed, up to 200 MB.
   * @default false
   */
  readonly responseStreaming?: boolean;
  /**
   * How long the function trusts the manifest it read before reading it again (`MANIFEST_TTL_SECONDS`).
   * @default 15
   */
  readonly manifestTtlSeconds?: number;
  /**
   * Retention of the function's logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Where the alarms notify.
   * @default none: the alarms still show in CloudWatch
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * Errors per 5 minutes at which the errors alarm fires.
   * @default 1
   */
  readonly errorsAlarmThreshold?: number;
  /**
   * p99 duration above which the latency alarm fires (2 of 3 five-minute periods).
   * @default 80% of the model's timeout
   */
  readonly latencyAlarmThreshold?: Duration;
  /**
   * Percent of requests captured when the entry's `capture` sets no `samplingPercent` (docs/capture.md).
   * @default 0: nothing is captured
   */
  readonly captureSamplingPercent?: number;
  /**
   * The directory the entry's `seed` path is relative to.
   * @default the repository's `models/`
   */
  readonly modelsDir?: string;
  /**
   * What must exist before the seed is uploaded: the bucket's notification to `register`, so that the upload
   * starts a registration and a fresh deploy serves version 1.
   * @default nothing
   */
  readonly seedAfter?: readonly IDependable[];
}

/** A model's function, routes, warmer, provisioned concurrency, alarms and seed upload. */
export class ModelEndpoint extends Construct {
  /** The model's name. */
  public readonly modelName: string;
  /** The `infer-<name>` function and its role. */
  public readonly inferFunction: ServiceFunction;
  /** Whether the front streams this function's answers (`responseStreaming`). */
  public readonly responseStreaming: boolean;
  /** The `live` alias holding the provisioned concurrency, when the catalog asks for some. */
  public readonly alias?: lambda.Alias;
  /** What API Gateway and the warmer invoke: the alias when there is one, else the function. */
  public readonly invokeTarget: lambda.IFunction;
  /** The `/v2/models/<name>` resource, when the endpoint is on the REST API. */
  public readonly resource?: apigw.Resource;
  /** The `async` alias that async requests are queued on, with its destinations (docs/async.md). */
  public readonly asyncInvocation: AsyncInvocation;
  /** The EventBridge warmer rule, unless the catalog disables warmers. */
  public readonly warmerRule?: events.Rule;
  /** Alarms on errors, throttles and p99 latency. */
  public readonly alarms: {
    readonly errors: cloudwatch.Alarm;
    readonly throttles: cloudwatch.Alarm;
    readonly latencyP99: cloudwatch.Alarm;
  };
  /** The upload of the seed model to `uploads/<name>/`, when the entry has a seed. */
  public readonly seedDeployment?: s3deploy.BucketDeployment;

  constructor(scope: Construct, id: string, props: ModelEndpointProps) {
    super(scope, id);
    const model = validateModel(this.node.path, props.model);
    const ttl = props.manifestTtlSeconds ?? 15;
    const errorsThreshold = props.errorsAlarmThreshold ?? 1;
    const latencyThreshold = props.latencyAlarmThreshold ?? Duration.millis(model.timeoutSeconds * 1000 * 0.8);
    const seedPath = resolveSeedPath(model, props.modelsDir ?? DEFAULT_MODELS_DIR);
    this.validate(model, props, { ttl, errorsThreshold, latencyThreshold, seedPath });
    this.modelName = model.name;
    const ephemeralStorageMb = this.ephemeralStorageMb(model, seedPath);
    const capture = captureEnvironment(model.capture, props.captureSamplingPercent ?? 0);

    this.responseStreaming = props.responseStreaming ?? false;
    this.inferFunction = new ServiceFunction(this, 'Infer', {
      handler: 'infer',
      architecture: model.architecture,
      memoryMb: model.memoryMb,
      ephemeralStorageMb,
      timeout: Duration.seconds(model.timeoutSeconds),
      layer: props.layer,
      ...(props.runtime === undefined ? {} : { runtime: props.runtime }),
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      serviceName: `infer-${model.name}`,
      description: functionDescription(model),
      // A warmer that failed is replaced by the next one; retrying it only burns invocations.
      retryAttempts: 0,
      environment: {
        [ENV.modelBucket]: props.bucket.bucketName,
        [ENV.modelName]: model.name,
        [ENV.manifestTtlSeconds]: String(ttl),
        [ENV.modelLimits]: JSON.stringify(model.limits),
        [ENV.preload]: String(model.preload),
        ...(capture === undefined ? {} : { [ENV.dataCapture]: capture }),
        ...streamingEnvironment(this.responseStreaming),
      },
    });
    const fn = this.inferFunction.function;
    if (model.managedInstances !== false) {
      // Validated above: an entry with managedInstances always comes with a capacity provider.
      const settings = model.managedInstances;
      props.capacityProvider?.addFunction(fn, {
        perExecutionEnvironmentMaxConcurrency: settings.maxConcurrency,
        executionEnvironmentMemoryGiBPerVCpu: settings.memoryGiBPerVCpu,
        latestPublishedScalingConfig: {
          minExecutionEnvironments: settings.minExecutionEnvironments,
          ...(settings.maxExecutionEnvironments === undefined
            ? {}
            : { maxExecutionEnvironments: settings.maxExecutionEnvironments }),
        },
      });
    }
    this.grantModelRead(props.bucket, model.name);
    this.grantSelfInvoke(fn);
    this.asyncInvocation = new AsyncInvocation(this, 'Async', { function: fn, role: this.inferFunction.role });

    if (model.provisionedConcurrency > 0) {
      this.alias = new lambda.Alias(this, 'Live', {
        aliasName: 'live',
        version: fn.currentVersion,
        provisionedConcurrentExecutions: model.provisionedConcurrency,
      });
    }
    this.invokeTarget = this.alias ?? fn;

    if (props.modelsResource !== undefined)
      this.resource = this.addRoutes(props.modelsResource, model.name, props.methodOptions ?? {});
    if (model.warmer !== false) this.warmerRule = this.addWarmer(model.name, model.warmer);
    this.alarms = this.addAlarms(fn, model.name, errorsThreshold, latencyThreshold, props.alarmAction);
    if (seedPath !== undefined)
      this.seedDeployment = this.addSeed(props.bucket, model.name, seedPath, props.seedAfter ?? []);
  }

  /**
   * `/tmp` holds the model file while onnxruntime reads it: the largest declared (`maxModelMb`) or seeded model plus
   * headroom, at least Lambda's 512 MB. A model that cannot fit in Lambda's 10,240 MB fails the synth.
   */
  private ephemeralStorageMb(model: CatalogEntry, seedPath: string | undefined): number {
    const seedBytes = seedPath !== undefined && existsSync(seedPath) ? statSync(seedPath).size : 0;
    const modelBytes = Math.max(seedBytes, (model.maxModelMb ?? 0) * 1024 * 1024);
    const needed = scratchMbFor(modelBytes);
    if (needed > PLATFORM_LIMITS.lambdaMaxEphemeralStorageMb) {
      throw new Error(
        `${this.node.path} (models/${model.name}.json): a ${Math.ceil(modelBytes / (1024 * 1024))} MB model needs ` +
          `${needed} MB of /tmp to load, more than Lambda's ${PLATFORM_LIMITS.lambdaMaxEphemeralStorageMb} MB of ` +
          `ephemeral storage; lower maxModelMb or serve a smaller model`,
      );
    }
    return Math.max(PLATFORM_LIMITS.lambdaMinEphemeralStorageMb, needed);
  }

  private validate(
    model: CatalogEntry,
    props: ModelEndpointProps,
    resolved: { ttl: number; errorsThreshold: number; latencyThreshold: Duration; seedPath?: string },
  ): void {
    const where = `${this.node.path} (models/${model.name}.json)`;
    if (props.layer.architecture !== model.architecture) {
      throw new Error(
        `${where}: the model runs on ${model.architecture} but the onnxruntime layer given is ` +
          `${props.layer.architecture}; pass the ${model.architecture} layer`,
      );
    }
    if (!Number.isInteger(resolved.ttl) || resolved.ttl < 1 || resolved.ttl > 3600) {
      throw new Error(`${where}: manifestTtlSeconds must be an integer from 1 to 3600, got ${resolved.ttl}`);
    }
    if (!Number.isInteger(resolved.errorsThreshold) || resolved.errorsThreshold < 1) {
      throw new Error(`${where}: errorsAlarmThreshold must be a positive integer, got ${resolved.errorsThreshold}`);
    }
    const latencyMs = resolved.latencyThreshold.toMilliseconds();
    if (latencyMs <= 0 || latencyMs > model.timeoutSeconds * 1000) {
      throw new Error(
        `${where}: latencyAlarmThreshold (${latencyMs} ms) must be above 0 and at most the timeout ` +
          `(${model.timeoutSeconds} s), or the alarm could never fire; lower it or raise timeoutSeconds`,
      );
    }
    if (model.warmer !== false) validateSchedule(where, model.warmer.schedule);
    if (model.managedInstances !== false && props.capacityProvider === undefined) {
      throw new Error(
        `${where}: managedInstances needs a capacity provider; pass capacityProvider (OnnxServerlessStack does)`,
      );
    }
    if (model.managedInstances !== false && model.provisionedConcurrency > 0) {
      throw new Error(
        `${where}: choose managedInstances or provisionedConcurrency, not both (Managed Instances have no cold starts)`,
      );
    }
    if (resolved.seedPath !== undefined) validateSeed(where, model.seed ?? '', resolved.seedPath);

    const annotations = Annotations.of(this);
    const front = FRONT_PROFILES[props.front ?? 'rest'];
    if (model.timeoutSeconds > front.timeoutSeconds) {
      annotations.addWarningV2(
        'onnx-serverless:timeout',
        `timeoutSeconds ${model.timeoutSeconds} exceeds the ${front.title}'s ${front.timeoutSeconds} s: clients ` +
          `get a 504 after ${front.timeoutSeconds} s while the function keeps running`,
      );
    }
    // API Gateway's 10 MB, whatever the front: Lambda's 6 MB event bounds every front alike (the local gateway says
    // so per request), so only a limit past the largest gateway's is certainly unreachable.
    if (model.limits.maxBodyBytes > PLATFORM_LIMITS.apiGatewayMaxBodyBytes) {
      annotations.addWarningV2(
        'onnx-serverless:max-body',
        `limits.maxBodyBytes ${model.limits.maxBodyBytes} exceeds API Gateway's 10 MB; larger bodies never arrive`,
      );
    }
    if (model.provisionedConcurrency > 0 && !model.preload) {
      annotations.addWarningV2(
        'onnx-serverless:preload',
        'provisionedConcurrency without preload: provisioned instances still load the model on their first ' +
          'request; set "preload": true',
      );
    }
  }

  /** This model's own prefixes, read-only, and nothing else of the bucket (see {@link inferAccess}). */
  private grantModelRead(bucket: s3.IBucket, name: string): void {
    grantBucketAccess(this.inferFunction.role, bucket, inferAccess(name));
  }

  /**
   * Warmers fan out by invoking their own function. A separate policy (not the role's default policy, which the
   * function depends on) lets the statement name the function's ARN without a dependency cycle.
   */
  private grantSelfInvoke(fn: lambda.IFunction): void {
    const policy = new iam.Policy(this, 'SelfInvoke', {
      roles: [this.inferFunction.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [fn.functionArn, `${fn.functionArn}:*`],
        }),
      ],
    });
    acknowledge(
      policy,
      [wildcardResourceFinding(this, `${fn.functionArn}:*`)],
      "Warmer fan-out invokes this same function; ':*' covers its own versions and the live alias only.",
    );
  }

  private addRoutes(models: apigw.IResource, name: string, options: apigw.MethodOptions): apigw.Resource {
    // Test invocations from the console would double the function's resource-policy statements.
    const integration = new apigw.LambdaIntegration(this.invokeTarget, {
      proxy: true,
      allowTestInvoke: false,
      ...restIntegrationOptions(this.responseStreaming),
    });
    addTableRoutes({ function: 'model', models, model: name }, integration, options);
    return models.resourceForPath(name);
  }

  private addWarmer(name: string, warmer: { schedule: string; concurrency: number }): events.Rule {
    return new events.Rule(this, 'Warmer', {
      description: `Keeps ${warmer.concurrency} instance(s) of infer-${name} warm with the latest version loaded`,
      schedule: events.Schedule.expression(warmer.schedule),
      targets: [
        new targets.LambdaFunction(this.invokeTarget, {
          event: events.RuleTargetInput.fromObject({ warmer: true, concurrency: warmer.concurrency }),
          // A late warmer is worthless: the next one is already scheduled.
          retryAttempts: 0,
          maxEventAge: Duration.minutes(1),
        }),
      ],
    });
  }

  private addAlarms(
    fn: lambda.IFunction,
    name: string,
    errorsThreshold: number,
    latencyThreshold: Duration,
    action: cloudwatch.IAlarmAction | undefined,
  ): ModelEndpoint['alarms'] {
    const period = Duration.minutes(5);
    const errors = new cloudwatch.Alarm(this, 'ErrorsAlarm', {
      alarmDescription: `infer-${name}: function errors (unhandled exceptions, timeouts, out of memory)`,
      metric: fn.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
      threshold: errorsThreshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const throttles = new cloudwatch.Alarm(this, 'ThrottlesAlarm', {
      alarmDescription: `infer-${name}: invocations throttled (account or reserved concurrency exhausted)`,
      metric: fn.metricThrottles({ period, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const latencyP99 = new cloudwatch.Alarm(this, 'LatencyP99Alarm', {
      alarmDescription: `infer-${name}: p99 duration above ${latencyThreshold.toMilliseconds()} ms`,
      metric: fn.metricDuration({ period, statistic: cloudwatch.Stats.percentile(99) }),
      threshold: latencyThreshold.toMilliseconds(),
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (action !== undefined) for (const alarm of [errors, throttles, latencyP99]) alarm.addAlarmAction(action);
    return { errors, throttles, latencyP99 };
  }

  /**
   * Uploads the seed to `uploads/<name>/` (never pruning what users uploaded), after the register notification
   * exists. A `<seed>.json` sample next to it goes up first, as registration reads it when the model arrives.
   */
  private addSeed(
    bucket: s3.IBucket,
    name: string,
    seedPath: string,
    after: readonly IDependable[],
  ): s3deploy.BucketDeployment {
    const upload = (id: string, file: string): s3deploy.BucketDeployment => {
      const deployment = new s3deploy.BucketDeployment(this, id, {
        // Only that one file of its directory: the asset is the directory with everything else excluded.
        sources: [s3deploy.Source.asset(dirname(file), { exclude: ['*', `!${basename(file)}`] })],
        destinationBucket: bucket,
        destinationKeyPrefix: `${REPOSITORY_PREFIXES.uploads}${name}/`,
        prune: false,
        retainOnDelete: true,
        memoryLimit: 512,
      });
      for (const dependency of after) deployment.node.addDependency(dependency);
      return deployment;
    };
    const sample = `${seedPath}.json`;
    const sampleDeployment = existsSync(sample) ? upload('SeedSample', sample) : undefined;
    const seed = upload('Seed', seedPath);
    if (sampleDeployment !== undefined) seed.node.addDependency(sampleDeployment);
    return seed;
  }
}

/** The function's description, with the model's own (the stack's `FitDescriptions` makes it fit Lambda and IAM). */
function functionDescription(model: CatalogEntry): string {
  return `infer-${model.name} (onnx-serverless)${model.description === undefined ? '' : `: ${model.description}`}`;
}

/** Re-parses an entry so hand-built entries get the catalog's checks and defaults too. */
function validateModel(path: string, model: CatalogEntry): CatalogEntry {
  const { name, ...fields } = model;
  try {
    return parseCatalogEntry(name, fields);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;

/** EventBridge accepts `rate(1 minute)` and `rate(5 minutes)` but not `rate(1 minutes)`: say so before deploying. */
function validateSchedule(where: string, schedule: string): void {
  const example = 'use "rate(5 minutes)" or "cron(0/5 * * * ? *)"';
  if (schedule.startsWith('rate(')) {
    const match = RATE.exec(schedule);
    if (match === null)
      throw new Error(`${where}: warmer.schedule "${schedule}" is not a valid rate expression; ${example}`);
    const value = Number(match[1]);
    const plural = match[2]?.endsWith('s') ?? false;
    if (value < 1) throw new Error(`${where}: warmer.schedule "${schedule}" must be at least 1; ${example}`);
    if ((value === 1) === plural) {
      const unit = (match[2] ?? '').replace(/s$/, '');
      throw new Error(
        `${where}: warmer.schedule "${schedule}": EventBridge wants "${value} ${value === 1 ? unit : `${unit}s`}"`,
      );
    }
    return;
  }
  const cron = /^cron\((.+)\)$/.exec(schedule);
  if (cron === null || cron[1]?.trim().split(/\s+/).length !== 6) {
    throw new Error(`${where}: warmer.schedule "${schedule}" is neither rate(...) nor a 6-field cron(...); ${example}`);
  }
}

function validateSeed(where: string, declared: string, path: string): void {
  if (!path.endsWith(UPLOAD_SUFFIX)) {
    throw new Error(
      `${where}: seed "${declared}" must end in ${UPLOAD_SUFFIX}; only such uploads start a registration`,
    );
  }
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new Error(`${where}: seed "${declared}" not found at ${path}; the path is relative to models/`);
  }
}
