/**
 * The whole service in one stack, composed of constructs: the {@link ModelBucket}, the {@link InferenceApi} with
 * the shared `control` function, the {@link Registrar}, one {@link ModelEndpoint} per catalog entry, and the
 * onnxruntime layers the functions need. The catalog is read by the app (`app.ts`) and passed in.
 */
import {
  Annotations,
  Aspects,
  CfnOutput,
  DefaultStackSynthesizer,
  Duration,
  Stack,
  Token,
  type CfnElement,
  type StackProps,
  type RemovalPolicy,
} from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct, IConstruct } from 'constructs';
import { join } from 'node:path';
import { checkSamplingPercent } from '../functions/core/capture.js';
import { catalogPreprocessJson, type CatalogEntry } from '../functions/core/catalog.js';
import { catalogRolloutJson, ROLLOUT_DEFAULTS } from '../functions/core/rollout.js';
import {
  FrontChoiceError,
  resolveFrontAuth,
  type ApiFront,
  type FrontAuthorization,
} from '../functions/core/fronts.js';
import { AlarmTopic, functionErrorsAlarm } from './alarms.js';
import { BatchJobs } from './batch-jobs.js';
import { grantBucketAccess } from './bucket-grants.js';
import { DEFAULT_MODELS_DIR } from './catalog-loader.js';
import { FitDescriptions } from './descriptions.js';
import { ENV, REPOSITORY_PREFIXES } from './constants.js';
import { CONTROL_ROUTES, modelRoutes } from './front-routes.js';
import { FunctionUrlFront } from './function-url-front.js';
import { HttpApiFront, type JwtSettings } from './http-api-front.js';
import { frontStreams } from './response-streaming.js';
import { InferenceApi, type ThrottleSettings } from './inference-api.js';
import { DEFAULT_NODE_RUNTIME, lambdaRuntime, type Architecture, type NodeRuntime } from './lambda-runtime.js';
import { ModelBucket } from './model-bucket.js';
import { ModelEndpoint } from './model-endpoint.js';
import { CONTROL_ACCESS, ROLLOUT_ACCESS, ROLLOUT_SERVICE_GRANTS } from './function-grants.js';
import { acknowledge, managedPolicyFinding, wildcardResourceFinding } from './nag.js';
import { OnnxruntimeLayer } from './onnxruntime-layer.js';
import { Registrar } from './registrar.js';
import { ServiceFunction, TRACER_CONTEXT } from './service-function.js';
import { SharedModelEndpoint } from './shared-endpoint.js';

export type { ApiAuthorization, ThrottleSettings } from './inference-api.js';
export type { ApiFront, FrontAuthorization } from '../functions/core/fronts.js';
export type { JwtSettings } from './http-api-front.js';

/** Props of {@link OnnxServerlessStack}. */
export interface OnnxServerlessStackProps extends StackProps {
  /**
   * The models that get a dedicated endpoint: the parsed catalog (`loadCatalog(modelsDir)`, as `app.ts` does).
   */
  readonly models: readonly CatalogEntry[];
  /**
   * The catalog directory: the base of the entries' `seed` paths.
   * @default the repository's `models/`
   */
  readonly modelsDir?: string;
  /**
   * The front door (docs/fronts.md): `'rest'`, an API Gateway REST API (payload 1.0 events); `'http'`, an API
   * Gateway HTTP API (2.0); `'url'`, a Lambda function URL per function (2.0), optionally behind CloudFront.
   * CLI: `-c api=http`.
   * @default 'rest'
   */
  readonly api?: ApiFront;
  /**
   * How callers authenticate. `'api-key'` (REST): an `x-api-key` header, with a key and a usage plan created.
   * `'iam'`: SigV4-signed requests (`execute-api:Invoke`, or `lambda:InvokeFunctionUrl` for function URLs).
   * `'jwt'` (HTTP API): a bearer JWT of {@link jwt}. `'none'`: no authentication, with a synth warning
   * (CLI: `-c auth=none`). A front that cannot use the choice fails the synth saying why.
   * @default the front's first: 'api-key' for REST, 'iam' for the HTTP API and function URLs
   */
  readonly authorization?: FrontAuthorization;
  /** The issuer and audiences of `authorization: 'jwt'`. CLI: `-c jwtIssuer=https://... -c jwtAudience=a,b`. */
  readonly jwt?: JwtSettings;
  /**
   * `api: 'url'` only: one CloudFront distribution with origin access control before the function URLs, a single
   * public domain for every route (needs `authorization: 'none'`). CLI: `-c cloudfront=true`.
   * @default false
   */
  readonly cloudfront?: boolean;
  /**
   * Throttling of every method of the stage, and of the usage plan's key.
   * @default { rateLimit: 50, burstLimit: 100 }
   */
  readonly throttle?: ThrottleSettings;
  /**
   * The API stage name, the first path segment of every URL.
   * @default 'prod'
   */
  readonly stageName?: string;
  /**
   * API Gateway execution logs (errors only, never request bodies). They need the account-wide API Gateway
   * CloudWatch role, which this stack then creates (`AWS::ApiGateway::Account`).
   * @default true
   */
  readonly executionLogging?: boolean;
  /**
   * Stream answers from the infer functions (REST integrations with `responseTransferMode: STREAM`, functions with
   * `RESPONSE_STREAMING=true`): answers past Lambda's 6 MB buffered limit reach the client, up to 200 MB, instead of
   * a 413. It turns off API Gateway's response caching and content encoding for those routes (the functions
   * compress themselves). With `api: 'url'`, function URLs with `RESPONSE_STREAM`. An HTTP API cannot stream.
   * CLI: `-c streaming=true|false`.
   * @default the front's own: true for `url` (it costs nothing more), false for `rest` and `http`
   */
  readonly responseStreaming?: boolean;
  /**
   * Load the Powertools Tracer in every function (`POWERTOOLS_TRACE_ENABLED`): a `## handler` subsegment per
   * invocation with cold-start and model annotations. Lambda's active tracing records invocations either way;
   * the Tracer's X-Ray SDK adds about 15 ms to each cold start. CLI: `-c powertoolsTracer=true`.
   * @default false
   */
  readonly powertoolsTracer?: boolean;
  /**
   * `NODE_OPTIONS=--enable-source-maps`: readable stack traces in the logs, for 13 to 25 ms more per cold start.
   * The source maps ship with every bundle either way. CLI: `-c sourceMapStackTraces=true`.
   * @default false
   */
  readonly sourceMapStackTraces?: boolean;
  /**
   * Retention of every log group (functions, API access logs).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * `MANIFEST_TTL_SECONDS` of the infer and control functions.
   * @default 15
   */
  readonly manifestTtlSeconds?: number;
  /**
   * The Node.js runtime of every function (the layers declare every supported one). CLI: `-c runtime=nodejs22.x`.
   * @default 'nodejs24.x'
   */
  readonly runtime?: NodeRuntime;
  /**
   * Architecture of the shared `register` and `control` functions.
   * @default 'arm64'
   */
  readonly sharedArchitecture?: Architecture;
  /**
   * Memory of the shared infer function (models without a catalog entry); a quarter of it is its budget of loaded
   * model files.
   * @default 3008
   */
  readonly sharedInferMemoryMb?: number;
  /**
   * Memory of `register`, which parses, rewrites and test-runs every upload.
   * @default 3008
   */
  readonly registerMemoryMb?: number;
  /**
   * Timeout of `register`.
   * @default Duration.minutes(5)
   */
  readonly registerTimeout?: Duration;
  /**
   * What happens to the model bucket when the stack is deleted. `DESTROY` also empties it.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
  /**
   * Where every alarm notifies (e.g. `new SnsAction(topic)`); overrides `alarmEmail` and `alarmTopicArn`.
   * @default the topic of alarmEmail or alarmTopicArn, else none (alarms only show in CloudWatch)
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * Existing subnets (with a route to AWS APIs) where Managed Instances run, for models with `managedInstances`.
   * Given with `managedInstancesSecurityGroupIds`. CLI: `-c subnetIds=subnet-a,subnet-b`.
   * @default a small VPC made for them: 2 AZs, private subnets with one NAT gateway, an S3 gateway endpoint
   */
  readonly managedInstancesSubnetIds?: readonly string[];
  /** Security groups of the Managed Instances, with `managedInstancesSubnetIds`. CLI: `-c securityGroupIds=sg-1`. */
  readonly managedInstancesSecurityGroupIds?: readonly string[];
  /** Every alarm notifies a new SNS topic with this address subscribed. CLI: `-c alarmEmail=ops@example.com`. */
  readonly alarmEmail?: string;
  /** Every alarm notifies this existing SNS topic. CLI: `-c alarmTopicArn=arn:aws:sns:...`. */
  readonly alarmTopicArn?: string;
  /**
   * Percent of requests (0 to 100) that data capture writes to `capture/<model>/` for every model whose catalog
   * entry sets no `capture.samplingPercent`, and for the shared function's models (docs/capture.md).
   * CLI: `-c captureSamplingPercent=10`.
   * @default 0: nothing is captured
   */
  readonly captureSamplingPercent?: number;
  /**
   * Batch jobs' children in flight at once (the Distributed Map's `MaxConcurrency`); never above
   * `batchReservedConcurrency`. CLI: `-c batchMaxConcurrency=20`.
   * @default 10
   */
  readonly batchMaxConcurrency?: number;
  /** Reserved concurrency of the batch function. CLI: `-c batchReservedConcurrency=20`. @default 10 */
  readonly batchReservedConcurrency?: number;
  /**
   * Share of failed batch children a job tolerates. CLI: `-c batchToleratedFailurePercentage=5`.
   * @default 10
   */
  readonly batchToleratedFailurePercentage?: number;
  /**
   * Directory the onnxruntime layers are built in, one sub-directory per architecture.
   * @default `layers/onnxruntime/build`
   */
  readonly layerBuildDir?: string;
}

// Feature flags this stack relies on, set on the stack so `cdk synth` and tests behave alike without cdk.json
// (ModelBucket and InferenceApi set their own).
const FEATURE_FLAGS = {
  // A new layer version (new onnxruntime) publishes a new function version for the provisioned alias.
  '@aws-cdk/aws-lambda:recognizeLayerVersion': true,
} as const;

/** The onnx-serverless service. */
export class OnnxServerlessStack extends Stack {
  /** The model repository. */
  public readonly bucket: s3.Bucket;
  /** Receives the model bucket's server access logs. */
  public readonly accessLogBucket: s3.Bucket;
  /** The front door and how its callers authenticate. */
  public readonly front: { readonly api: ApiFront; readonly authorization: FrontAuthorization };
  /** The REST API with every route, with `api: 'rest'`. */
  public readonly api?: apigw.RestApi;
  /** The API construct: the REST API, its resources, key and usage plan, with `api: 'rest'`. */
  public readonly inferenceApi?: InferenceApi;
  /** The HTTP API with every route, with `api: 'http'`. */
  public readonly httpApi?: HttpApiFront;
  /** The function URLs (and CloudFront distribution), with `api: 'url'`. */
  public readonly functionUrls?: FunctionUrlFront;
  /** One endpoint per served model, by model name. */
  public readonly endpoints: ReadonlyMap<string, ModelEndpoint>;
  /** The onnxruntime layers, by architecture (only those some function uses). */
  public readonly layers: ReadonlyMap<Architecture, OnnxruntimeLayer>;
  /** Health, server metadata and repository index. */
  public readonly controlFunction: ServiceFunction;
  /** Every model without a catalog entry: the shared infer function behind `/v2/models/{model}`. */
  public readonly sharedEndpoint: SharedModelEndpoint;
  /** One capacity provider per architecture used by a model with `managedInstances`. */
  public readonly capacityProviders: ReadonlyMap<Architecture, lambda.CapacityProvider>;
  /** The VPC made for Managed Instances, when some model uses them and no network was given. */
  public readonly managedInstancesVpc?: ec2.Vpc;
  /** The topic every alarm notifies, with `alarmEmail` or `alarmTopicArn`. */
  public readonly alarmTopic?: AlarmTopic;
  /** Registration: the `register` function, its notification and alarm. */
  public readonly registrar: Registrar;
  /** Validates and registers uploads. */
  public readonly registerFunction: ServiceFunction;
  /** The guarded-rollout controller (docs/rollouts.md), run every minute by {@link rolloutSchedule}. */
  public readonly rolloutFunction: ServiceFunction;
  /** The EventBridge rule that runs the rollout controller. */
  public readonly rolloutSchedule: events.Rule;
  /** Batch jobs: the state machine, the batch function and the topic of finished jobs. */
  public readonly batchJobs: BatchJobs;
  /** The API key callers send as `x-api-key`, with `authorization: 'api-key'`. */
  public readonly apiKey?: apigw.IApiKey;
  /** The usage plan throttling that key, with `authorization: 'api-key'`. */
  public readonly usagePlan?: apigw.UsagePlan;

  /**
   * The constructs that only group resources. They are left out of logical ids, so every resource keeps the id it
   * had when the stack built everything inline: an update never replaces the retained bucket, the API (and so its
   * URL) or the API key.
   */
  private readonly groupingConstructs = new Set<IConstruct>();

  constructor(scope: Construct, id: string, props: OnnxServerlessStackProps) {
    super(scope, id, props);
    // Before any child exists (context is fixed once a node has children): the functions bundle the Tracer only if
    // they will load it.
    this.node.setContext(TRACER_CONTEXT, props.powertoolsTracer ?? false);
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);
    // Descriptions carry catalog text: each is made to fit its service's pattern and length before synthesis.
    Aspects.of(this).add(new FitDescriptions());

    const modelsDir = props.modelsDir ?? DEFAULT_MODELS_DIR;
    const models = props.models;
    const sharedArchitecture = props.sharedArchitecture ?? 'arm64';
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const manifestTtlSeconds = props.manifestTtlSeconds ?? 15;
    // Whether the front streams the infer functions' answers: decided for every front in one place.
    let responseStreaming: boolean;
    try {
      responseStreaming = frontStreams(props.api ?? 'rest', props.responseStreaming);
    } catch (error) {
      throw new Error(`${this.node.path}: ${(error as Error).message}`, { cause: error });
    }
    validateModels(this.node.path, models);
    const captureSamplingPercent = props.captureSamplingPercent ?? 0;
    checkSamplingPercent(`${this.node.path}: captureSamplingPercent`, captureSamplingPercent);
    const runtime = props.runtime ?? DEFAULT_NODE_RUNTIME;
    try {
      lambdaRuntime(runtime);
    } catch (error) {
      throw new Error(`${this.node.path}: ${(error as Error).message}`, { cause: error });
    }

    if (props.alarmEmail !== undefined || props.alarmTopicArn !== undefined) {
      this.alarmTopic = new AlarmTopic(this, 'Alarms', {
        ...(props.alarmEmail === undefined ? {} : { email: props.alarmEmail }),
        ...(props.alarmTopicArn === undefined ? {} : { topicArn: props.alarmTopicArn }),
      });
    }
    const alarmAction = props.alarmAction ?? this.alarmTopic?.action;

    const repository = this.group(
      new ModelBucket(this, 'Repository', {
        ...(props.bucketRemovalPolicy === undefined ? {} : { removalPolicy: props.bucketRemovalPolicy }),
      }),
    );
    this.bucket = repository.bucket;
    this.accessLogBucket = repository.accessLogBucket;

    const layers = new Map<Architecture, OnnxruntimeLayer>();
    for (const arch of [...new Set([sharedArchitecture, ...models.map((m) => m.architecture)])].sort()) {
      layers.set(
        arch,
        new OnnxruntimeLayer(this, `OnnxruntimeLayer-${arch}`, {
          architecture: arch,
          ...(props.layerBuildDir === undefined ? {} : { buildDir: join(props.layerBuildDir, arch) }),
        }),
      );
    }
    this.layers = layers;
    const sharedLayer = layers.get(sharedArchitecture) as OnnxruntimeLayer;

    this.front = this.resolveFront(props);
    const { api, authorization } = this.front;
    if (api === 'rest') {
      // Id "Default": CDK leaves it out of every logical id and of the unique ids that API Gateway's permissions and
      // usage-plan key embed in theirs; a renamed usage-plan key would be created beside the old one and conflict.
      this.inferenceApi = new InferenceApi(this, 'Default', {
        authorization: authorization === 'jwt' ? 'iam' : authorization,
        ...(props.throttle === undefined ? {} : { throttle: props.throttle }),
        ...(props.stageName === undefined ? {} : { stageName: props.stageName }),
        ...(props.executionLogging === undefined ? {} : { executionLogging: props.executionLogging }),
        logRetention,
        serviceName: this.stackName,
      });
      this.api = this.inferenceApi.api;
      this.apiKey = this.inferenceApi.apiKey;
      this.usagePlan = this.inferenceApi.usagePlan;
    } else if (api === 'http') {
      this.httpApi = new HttpApiFront(this, 'HttpFront', {
        authorization: authorization === 'jwt' || authorization === 'none' ? authorization : 'iam',
        ...(props.jwt === undefined ? {} : { jwt: props.jwt }),
        ...(props.throttle === undefined ? {} : { throttle: props.throttle }),
        logRetention,
      });
    } else {
      this.functionUrls = new FunctionUrlFront(this, 'UrlFront', {
        authorization: authorization === 'none' ? 'none' : 'iam',
        cloudfront: props.cloudfront ?? false,
      });
    }

    // control's bundle imports onnxruntime-node (shared handler runtime), so it gets the layer too.
    this.controlFunction = this.createControl(
      sharedArchitecture,
      sharedLayer,
      runtime,
      logRetention,
      manifestTtlSeconds,
    );
    this.inferenceApi?.addControlRoutes(this.controlFunction.function);
    this.httpApi?.addRoutes('Control', CONTROL_ROUTES, this.controlFunction.function);
    // Control is the distribution's default origin: every path no model owns.
    this.functionUrls?.addTarget('Control', this.controlFunction.function, [], false);
    functionErrorsAlarm(this.controlFunction, alarmAction);

    this.registrar = this.group(
      new Registrar(this, 'Registration', {
        bucket: this.bucket,
        layer: sharedLayer,
        runtime,
        logRetention,
        ...(props.registerMemoryMb === undefined ? {} : { memoryMb: props.registerMemoryMb }),
        ...(props.registerTimeout === undefined ? {} : { timeout: props.registerTimeout }),
        ...(alarmAction === undefined ? {} : { alarmAction }),
        catalogPreprocess: catalogPreprocessJson(models),
        catalogRollout: catalogRolloutJson(models),
      }),
    );
    this.registerFunction = this.registrar.registerFunction;

    const capacityProviders = new Map<Architecture, lambda.CapacityProvider>();
    const managedArchitectures = [
      ...new Set(models.filter((m) => m.managedInstances !== false).map((m) => m.architecture)),
    ].sort();
    if (managedArchitectures.length > 0) {
      let network: { subnets: ec2.ISubnet[]; securityGroups: ec2.ISecurityGroup[] } | undefined;
      const subnetIds = props.managedInstancesSubnetIds ?? [];
      const groupIds = props.managedInstancesSecurityGroupIds ?? [];
      if ((subnetIds.length === 0) !== (groupIds.length === 0)) {
        throw new Error(
          `${this.node.path}: give both managedInstancesSubnetIds and managedInstancesSecurityGroupIds, or neither`,
        );
      }
      if (subnetIds.length > 0) {
        validateNetwork(this.node.path, subnetIds, groupIds);
        network = {
          subnets: subnetIds.map((id, i) => ec2.Subnet.fromSubnetId(this, `ManagedInstancesSubnet${i}`, id)),
          securityGroups: groupIds.map((id, i) =>
            ec2.SecurityGroup.fromSecurityGroupId(this, `ManagedInstancesGroup${i}`, id),
          ),
        };
      } else {
        this.managedInstancesVpc = this.createManagedInstancesVpc();
        network = {
          subnets: this.managedInstancesVpc.privateSubnets,
          securityGroups: [
            new ec2.SecurityGroup(this, 'ManagedInstancesSecurityGroup', {
              vpc: this.managedInstancesVpc,
              description: 'Lambda Managed Instances of onnx-serverless: outbound only',
              allowAllOutbound: true,
            }),
          ],
        };
      }
      for (const arch of managedArchitectures) {
        const provider = new lambda.CapacityProvider(this, `CapacityProvider-${arch}`, {
          subnets: network.subnets,
          securityGroups: network.securityGroups,
          architectures: [arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64],
        });
        acknowledge(
          provider,
          [managedPolicyFinding('AWSLambdaManagedEC2ResourceOperator')],
          "The AWS-maintained policy Lambda assumes to launch and manage the capacity provider's EC2 instances.",
        );
        capacityProviders.set(arch, provider);
      }
    }
    this.capacityProviders = capacityProviders;

    const endpoints = new Map<string, ModelEndpoint>();
    for (const model of models) {
      const endpoint = new ModelEndpoint(this, `Model-${model.name}`, {
        model,
        ...(this.inferenceApi === undefined
          ? {}
          : { modelsResource: this.inferenceApi.modelsResource, methodOptions: this.inferenceApi.routeOptions }),
        front: api,
        bucket: this.bucket,
        layer: layers.get(model.architecture) as OnnxruntimeLayer,
        runtime,
        ...(model.managedInstances === false ? {} : { capacityProvider: capacityProviders.get(model.architecture) }),
        manifestTtlSeconds,
        captureSamplingPercent,
        logRetention,
        modelsDir,
        responseStreaming,
        // The bucket construct holds the notification resource: seeds go up once register would see them.
        seedAfter: [this.bucket, this.registerFunction],
        ...(alarmAction === undefined ? {} : { alarmAction }),
      });
      endpoints.set(model.name, endpoint);
      this.httpApi?.addRoutes(`Model-${model.name}`, modelRoutes(model.name), endpoint.invokeTarget);
      this.functionUrls?.addTarget(
        `Model-${model.name}`,
        endpoint.invokeTarget,
        [`/v2/models/${model.name}`, `/v2/models/${model.name}/*`],
        responseStreaming,
      );
    }
    this.endpoints = endpoints;
    this.sharedEndpoint = new SharedModelEndpoint(this, 'SharedModels', {
      ...(this.inferenceApi === undefined
        ? {}
        : { modelsResource: this.inferenceApi.modelsResource, methodOptions: this.inferenceApi.routeOptions }),
      bucket: this.bucket,
      layer: sharedLayer,
      runtime,
      manifestTtlSeconds,
      captureSamplingPercent,
      logRetention,
      responseStreaming,
      ...(props.sharedInferMemoryMb === undefined ? {} : { memoryMb: props.sharedInferMemoryMb }),
      ...(alarmAction === undefined ? {} : { alarmAction }),
    });

    this.batchJobs = new BatchJobs(this, 'BatchJobs', {
      bucket: this.bucket,
      layer: sharedLayer,
      runtime,
      logRetention,
      ...(props.batchMaxConcurrency === undefined ? {} : { maxConcurrency: props.batchMaxConcurrency }),
      ...(props.batchReservedConcurrency === undefined ? {} : { reservedConcurrency: props.batchReservedConcurrency }),
      ...(props.batchToleratedFailurePercentage === undefined
        ? {}
        : { toleratedFailurePercentage: props.batchToleratedFailurePercentage }),
      ...(alarmAction === undefined ? {} : { alarmAction }),
    });
    new CfnOutput(this, 'BatchStateMachineArn', {
      value: this.batchJobs.stateMachine.stateMachineArn,
      description:
        'aws stepfunctions start-execution --state-machine-arn <this> --input ' +
        '\'{"model":"<m>","input":"s3://<bucket>/batch/<in>/","output":"s3://<bucket>/batch/<out>/"}\'',
    });
    new CfnOutput(this, 'BatchTopicArn', {
      value: this.batchJobs.topic.topicArn,
      description: 'Every finished batch job record is published here',
    });
    const sharedFunction = this.sharedEndpoint.inferFunction.function;
    this.httpApi?.addRoutes('SharedModels', modelRoutes('{model}'), sharedFunction);
    // After every catalog model's patterns: CloudFront takes the first behavior that matches.
    this.functionUrls?.addTarget('SharedModels', sharedFunction, ['/v2/models/*'], responseStreaming);
    const v2Url = this.inferenceApi?.v2Url ?? this.httpApi?.v2Url ?? this.functionUrls?.finish();

    if (this.apiKey !== undefined) {
      new CfnOutput(this, 'ApiKeyId', {
        value: this.apiKey.keyId,
        description: 'aws apigateway get-api-key --include-value --query value --output text --api-key <this id>',
      });
    }
    new CfnOutput(this, 'BucketName', {
      value: this.bucket.bucketName,
      description: `Upload models with: aws s3 cp model.onnx s3://<bucket>/${REPOSITORY_PREFIXES.uploads}<model-name>/`,
    });
    new CfnOutput(this, 'FailedRegistrationsQueue', {
      value: this.registrar.failedEvents.queueUrl,
      description: 'S3 events of uploads whose registration failed after retries (re-upload to retry)',
    });
    if (v2Url !== undefined) {
      new CfnOutput(this, 'InferenceUrl', {
        value: v2Url,
        description: 'KServe V2 root; models are under /models/<name>',
      });
    }

    ({ fn: this.rolloutFunction, rule: this.rolloutSchedule } = this.createRolloutController(
      sharedArchitecture,
      sharedLayer,
      runtime,
      logRetention,
    ));
    functionErrorsAlarm(this.rolloutFunction, alarmAction);

    const functions = [
      this.controlFunction,
      this.registerFunction,
      this.rolloutFunction,
      this.sharedEndpoint.inferFunction,
      this.batchJobs.batchFunction,
      ...[...this.endpoints.values()].map((e) => e.inferFunction),
    ];
    for (const serviceFunction of functions) {
      serviceFunction.function.addEnvironment(ENV.traceEnabled, String(props.powertoolsTracer ?? false));
      if (props.sourceMapStackTraces ?? false)
        serviceFunction.function.addEnvironment(ENV.nodeOptions, '--enable-source-maps');
    }

    this.acknowledgeCdkProviders();
  }

  /** The front and its authentication, checked together (a combination the front cannot serve fails the synth). */
  private resolveFront(props: OnnxServerlessStackProps): OnnxServerlessStack['front'] {
    const api = props.api ?? 'rest';
    const authorization = props.authorization ?? (props.jwt === undefined ? undefined : 'jwt');
    let front: OnnxServerlessStack['front'];
    try {
      front = resolveFrontAuth(api, authorization);
    } catch (error) {
      if (!(error instanceof FrontChoiceError)) throw error;
      throw new Error(`${this.node.path}: ${error.message}`, { cause: error });
    }
    if (front.authorization === 'jwt' && props.jwt === undefined) {
      throw new Error(
        `${this.node.path}: authorization=jwt needs the issuer and audience: -c jwtIssuer=... -c jwtAudience=...`,
      );
    }
    if (front.authorization !== 'jwt' && props.jwt !== undefined) {
      throw new Error(
        `${this.node.path}: jwtIssuer and jwtAudience apply only with authorization=jwt (api=http), not ${front.authorization}`,
      );
    }
    if (front.api !== 'rest') {
      const restOnly = (['executionLogging', 'stageName'] as const).filter((key) => props[key] !== undefined);
      if (restOnly.length > 0) {
        throw new Error(
          `${this.node.path}: ${restOnly.join(' and ')} apply to api=rest only (the ${front.api} front has no such ` +
            'setting): leave them out',
        );
      }
    }
    if (props.cloudfront === true && front.api !== 'url') {
      throw new Error(
        `${this.node.path}: cloudfront=true puts CloudFront before function URLs: use it with -c api=url`,
      );
    }
    if (front.authorization === 'none') {
      Annotations.of(this).addWarningV2(
        'onnx-serverless:no-auth',
        `auth=none: the ${front.api} front accepts requests from anyone on the internet` +
          (props.cloudfront === true ? ' (through CloudFront; attach a WAF web ACL)' : '') +
          '; every inference is billed to this account',
      );
    }
    return front;
  }

  /** Logical ids leave out the grouping constructs (see {@link groupingConstructs}). */
  protected override allocateLogicalId(element: CfnElement): string {
    const scopes = element.node.scopes.filter((scope) => !this.groupingConstructs.has(scope));
    // Stack's own allocation, over the path without the grouping constructs.
    return super.allocateLogicalId({ node: { scopes }, stack: this } as unknown as CfnElement);
  }

  /** Two AZs of private subnets with one NAT gateway (instances reach Lambda and CloudWatch) and an S3 endpoint. */
  private createManagedInstancesVpc(): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'ManagedInstancesVpc', {
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'instances', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    acknowledge(
      vpc,
      ['VPC7'],
      "VPC flow logs are left to the operator: the VPC only carries the Managed Instances' own traffic to AWS APIs.",
    );
    return vpc;
  }

  private group<T extends IConstruct>(construct: T): T {
    this.groupingConstructs.add(construct);
    return construct;
  }

  private createControl(
    architecture: Architecture,
    layer: OnnxruntimeLayer,
    runtime: NodeRuntime,
    logRetention: logs.RetentionDays,
    manifestTtlSeconds: number,
  ): ServiceFunction {
    const control = new ServiceFunction(this, 'Control', {
      handler: 'control',
      architecture,
      layer,
      runtime,
      memoryMb: 512,
      timeout: Duration.seconds(29),
      logRetention,
      serviceName: 'control',
      description: 'KServe V2 health, server metadata and repository index (onnx-serverless)',
      environment: {
        [ENV.modelBucket]: this.bucket.bucketName,
        [ENV.manifestTtlSeconds]: String(manifestTtlSeconds),
      },
    });
    grantBucketAccess(control.role, this.bucket, CONTROL_ACCESS);
    return control;
  }

  /**
   * The rollout controller: a function every minute (EventBridge's finest rate, the controller's interval) that reads
   * the per-version metrics from CloudWatch, rewrites manifests under the rollout grants, and publishes rollbacks to
   * the alarm topic when the stack has one.
   */
  private createRolloutController(
    architecture: Architecture,
    layer: OnnxruntimeLayer,
    runtime: NodeRuntime,
    logRetention: logs.RetentionDays,
  ): { fn: ServiceFunction; rule: events.Rule } {
    const topic = this.alarmTopic?.topic;
    const fn = new ServiceFunction(this, 'Rollout', {
      handler: 'rollout',
      architecture,
      // The shared runtime wiring loads onnxruntime-node at import, as control's does.
      layer,
      runtime,
      memoryMb: 512,
      timeout: Duration.seconds(50),
      logRetention,
      serviceName: 'rollout',
      description:
        'Guarded rollouts: advances, promotes or rolls back canary, linear and shadow rollouts (onnx-serverless)',
      environment: {
        [ENV.modelBucket]: this.bucket.bucketName,
        ...(topic === undefined ? {} : { [ENV.alarmTopicArn]: topic.topicArn }),
      },
    });
    grantBucketAccess(fn.role, this.bucket, ROLLOUT_ACCESS);
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...ROLLOUT_SERVICE_GRANTS.metrics.actions], resources: ['*'] }),
    );
    acknowledge(fn.role, ['IAM5[Resource::*]'], ROLLOUT_SERVICE_GRANTS.metrics.reason);
    if (topic !== undefined) {
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: [...ROLLOUT_SERVICE_GRANTS.notify.actions], resources: [topic.topicArn] }),
      );
    }
    const rule = new events.Rule(this, 'RolloutSchedule', {
      description: 'Runs the onnx-serverless rollout controller every minute',
      schedule: events.Schedule.rate(Duration.seconds(ROLLOUT_DEFAULTS.controllerIntervalSeconds)),
      targets: [
        new targets.LambdaFunction(fn.function, {
          // The next run judges afresh: a late or retried run only repeats it.
          retryAttempts: 0,
          maxEventAge: Duration.minutes(1),
        }),
      ],
    });
    return { fn, rule };
  }

  /**
   * CDK's own singleton functions: the S3 notification handler (behind `addEventNotification`) and the
   * BucketDeployment handler (seed uploads). Their code, runtime and policies belong to aws-cdk-lib; the
   * findings are listed one by one so a new one (say, after a CDK upgrade) still fails the checks.
   */
  private acknowledgeCdkProviders(): void {
    const basicRole = managedPolicyFinding('service-role/AWSLambdaBasicExecutionRole');
    const qualifier = String(
      this.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER,
    );
    // How cdk-nag prints the asset bucket: pseudo parameters unless the stack has a concrete environment.
    const account = Token.isUnresolved(this.account) ? '<AWS::AccountId>' : this.account;
    const region = Token.isUnresolved(this.region) ? '<AWS::Region>' : this.region;
    for (const child of this.node.children) {
      const id = child.node.id;
      if (id.startsWith('BucketNotificationsHandler')) {
        acknowledge(child, [basicRole], 'CDK-managed S3 notification handler: it writes only its own logs.');
      } else if (id.startsWith('Custom::CDKBucketDeployment')) {
        acknowledge(child, [basicRole], 'CDK-managed seed-upload handler: it writes only its own logs.');
        acknowledge(
          child,
          [
            'IAM5[Action::s3:GetObject*]',
            'IAM5[Action::s3:GetBucket*]',
            'IAM5[Action::s3:List*]',
            'IAM5[Action::s3:DeleteObject*]',
            'IAM5[Action::s3:Abort*]',
            `IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-${qualifier}-assets-${account}-${region}/*]`,
            wildcardResourceFinding(this, this.bucket.arnForObjects('*')),
          ],
          'CDK-managed seed-upload handler: aws-cdk-lib grants it read on the CDK asset bucket and read/write on ' +
            'the destination bucket; it runs only during deployments (prune is off, so it deletes nothing).',
        );
        acknowledge(child, ['L1'], 'CDK-managed seed-upload handler; aws-cdk-lib chooses its runtime.');
      }
    }
  }
}

/**
 * What `AWS::Lambda::CapacityProvider`'s `VpcConfig` accepts (its CloudFormation schema, and the id formats
 * CloudFormation's linter checks): 1 to 16 subnets and at most 5 security groups, by id.
 */
const NETWORK_RULES = [
  { option: 'subnetIds', prop: 'managedInstancesSubnetIds', pattern: /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/, max: 16 },
  {
    option: 'securityGroupIds',
    prop: 'managedInstancesSecurityGroupIds',
    pattern: /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/,
    max: 5,
  },
] as const;

/** Checks given subnet and security-group ids against {@link NETWORK_RULES}, naming the option at fault. */
function validateNetwork(path: string, subnetIds: readonly string[], groupIds: readonly string[]): void {
  for (const [rule, ids] of [
    [NETWORK_RULES[0], subnetIds],
    [NETWORK_RULES[1], groupIds],
  ] as const) {
    const where = `${path}: ${rule.prop} (-c ${rule.option})`;
    if (ids.length > rule.max)
      throw new Error(`${where}: a capacity provider takes at most ${rule.max}, got ${ids.length}`);
    const bad = ids.find((id) => !rule.pattern.test(id));
    if (bad !== undefined) throw new Error(`${where}: "${bad}" is not an id of that kind (${rule.pattern.source})`);
  }
}

/** Model names must be unique: each gets its own routes and function. */
function validateModels(path: string, models: readonly CatalogEntry[]): void {
  const seen = new Set<string>();
  for (const model of models) {
    if (seen.has(model.name)) throw new Error(`${path}: model "${model.name}" is declared twice; names must be unique`);
    seen.add(model.name);
  }
}
