/**
 * The whole service in one stack: the model bucket, one {@link ModelEndpoint} per catalog entry on one REST API,
 * the shared `control` and `register` functions, and the onnxruntime layers the functions need.
 */
import { CfnOutput, DefaultStackSynthesizer, Duration, RemovalPolicy, Stack, Token, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type { Construct } from 'constructs';
import { join } from 'node:path';
import type { CatalogEntry } from '../functions/core/catalog.js';
import { DEFAULT_MODELS_DIR, loadCatalog } from './catalog-loader.js';
import { registerScratchMbFor } from '../functions/core/file-registration.js';
import { DEFAULT_MAX_MODEL_BYTES } from '../functions/wiring/config.js';
import { BINARY_MEDIA_TYPES, ENV, REPOSITORY_PREFIXES, UPLOAD_SUFFIXES, V2_ROOT } from './constants.js';
import { ModelEndpoint } from './model-endpoint.js';
import { grantListUnder, grantObjects } from './bucket-grants.js';
import { acknowledge, managedPolicyFinding, wildcardResourceFinding } from './nag.js';
import { OnnxruntimeLayer } from './onnxruntime-layer.js';
import { ServiceFunction, type Architecture } from './service-function.js';

/** How callers authenticate to the REST API. */
export type ApiAuthorization = 'api-key' | 'iam';

/** Steady-state requests per second and burst, per method of the stage and for the usage plan. */
export interface ThrottleSettings {
  /** Requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst. */
  readonly burstLimit: number;
}

/** Props of {@link OnnxServerlessStack}. */
export interface OnnxServerlessStackProps extends StackProps {
  /**
   * The models to serve.
   * @default every `models/<name>.json` of `modelsDir`
   */
  readonly models?: readonly CatalogEntry[];
  /**
   * The catalog directory: read when `models` is not given, and the base of the entries' `seed` paths.
   * @default the repository's `models/`
   */
  readonly modelsDir?: string;
  /**
   * `'api-key'`: every method requires an `x-api-key` header; a key and a usage plan are created.
   * `'iam'`: every method requires SigV4-signed requests (`execute-api:Invoke`); no key is created.
   * @default 'api-key'
   */
  readonly authorization?: ApiAuthorization;
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
   * Architecture of the shared `register` and `control` functions.
   * @default 'arm64'
   */
  readonly sharedArchitecture?: Architecture;
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
   * Where every alarm notifies (e.g. `new SnsAction(topic)`).
   * @default none
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * Directory the onnxruntime layers are built in, one sub-directory per architecture.
   * @default `layers/onnxruntime/build`
   */
  readonly layerBuildDir?: string;
}

const DEFAULT_THROTTLE: ThrottleSettings = { rateLimit: 50, burstLimit: 100 };

// Feature flags this stack relies on, set on the stack so `cdk synth` and tests behave alike without cdk.json.
const FEATURE_FLAGS = {
  // Access-log delivery by bucket policy: the log bucket can keep ACLs disabled (BucketOwnerEnforced).
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  // A new layer version (new onnxruntime) publishes a new function version for the provisioned alias.
  '@aws-cdk/aws-lambda:recognizeLayerVersion': true,
  '@aws-cdk/aws-apigateway:usagePlanKeyOrderInsensitiveId': true,
} as const;

/** The onnx-serverless service. */
export class OnnxServerlessStack extends Stack {
  /** The model repository. */
  public readonly bucket: s3.Bucket;
  /** Receives the model bucket's server access logs. */
  public readonly accessLogBucket: s3.Bucket;
  /** The REST API with every route. */
  public readonly api: apigw.RestApi;
  /** One endpoint per served model, by model name. */
  public readonly endpoints: ReadonlyMap<string, ModelEndpoint>;
  /** The onnxruntime layers, by architecture (only those some function uses). */
  public readonly layers: ReadonlyMap<Architecture, OnnxruntimeLayer>;
  /** Health, server metadata and repository index. */
  public readonly controlFunction: ServiceFunction;
  /** Validates and registers uploads. */
  public readonly registerFunction: ServiceFunction;
  /** The API key callers send as `x-api-key`, with `authorization: 'api-key'`. */
  public readonly apiKey?: apigw.IApiKey;
  /** The usage plan throttling that key, with `authorization: 'api-key'`. */
  public readonly usagePlan?: apigw.UsagePlan;

  constructor(scope: Construct, id: string, props: OnnxServerlessStackProps = {}) {
    super(scope, id, props);
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);

    const authorization = props.authorization ?? 'api-key';
    const throttle = props.throttle ?? DEFAULT_THROTTLE;
    const modelsDir = props.modelsDir ?? DEFAULT_MODELS_DIR;
    const models = props.models ?? loadCatalog(modelsDir);
    const sharedArchitecture = props.sharedArchitecture ?? 'arm64';
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const manifestTtlSeconds = props.manifestTtlSeconds ?? 15;
    const executionLogging = props.executionLogging ?? true;
    validateStackProps(this.node.path, { authorization, throttle, models, stageName: props.stageName, registerMemoryMb: props.registerMemoryMb });

    ({ bucket: this.bucket, accessLogBucket: this.accessLogBucket } = this.createBuckets(
      props.bucketRemovalPolicy ?? RemovalPolicy.RETAIN,
    ));

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

    const methodOptions: apigw.MethodOptions = {
      apiKeyRequired: authorization === 'api-key',
      authorizationType: authorization === 'iam' ? apigw.AuthorizationType.IAM : apigw.AuthorizationType.NONE,
    };
    this.api = this.createApi({ authorization, throttle, logRetention, executionLogging, stageName: props.stageName ?? 'prod', methodOptions });
    const validator = new apigw.RequestValidator(this, 'PathParameterValidator', {
      restApi: this.api,
      validateRequestParameters: true,
      validateRequestBody: false,
    });
    const routeOptions: apigw.MethodOptions = { ...methodOptions, requestValidator: validator };

    // control's bundle imports onnxruntime-node (shared handler runtime), so it gets the layer too.
    this.controlFunction = this.createControl(
      sharedArchitecture,
      layers.get(sharedArchitecture) as OnnxruntimeLayer,
      logRetention,
      manifestTtlSeconds,
      routeOptions,
    );
    this.registerFunction = this.createRegister({
      architecture: sharedArchitecture,
      layer: layers.get(sharedArchitecture) as OnnxruntimeLayer,
      logRetention,
      memoryMb: props.registerMemoryMb ?? 3008,
      timeout: props.registerTimeout ?? Duration.minutes(5),
    });
    for (const fn of [this.controlFunction, this.registerFunction]) {
      new cloudwatch.Alarm(fn, 'ErrorsAlarm', {
        alarmDescription: `${fn.node.id.toLowerCase()}: function errors`,
        metric: fn.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(...(props.alarmAction === undefined ? [] : [props.alarmAction]));
    }

    const modelsResource = this.api.root.getResource(V2_ROOT)?.addResource('models');
    if (modelsResource === undefined) throw new Error('unreachable: /v2 is created with the control routes');
    const endpoints = new Map<string, ModelEndpoint>();
    for (const model of models) {
      endpoints.set(
        model.name,
        new ModelEndpoint(this, `Model-${model.name}`, {
          model,
          modelsResource,
          bucket: this.bucket,
          layer: layers.get(model.architecture) as OnnxruntimeLayer,
          methodOptions: routeOptions,
          manifestTtlSeconds,
          logRetention,
          modelsDir,
          // The bucket construct holds the notification resource: seeds go up once register would see them.
          seedAfter: [this.bucket, this.registerFunction],
          ...(props.alarmAction === undefined ? {} : { alarmAction: props.alarmAction }),
        }),
      );
    }
    this.endpoints = endpoints;

    if (authorization === 'api-key') {
      this.apiKey = this.api.addApiKey('ApiKey', { description: `Key for ${this.stackName}'s inference API` });
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: `Default throttling of ${this.stackName}'s API key`,
        throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
        apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
      });
      this.usagePlan.addApiKey(this.apiKey);
      new CfnOutput(this, 'ApiKeyId', {
        value: this.apiKey.keyId,
        description: 'aws apigateway get-api-key --include-value --query value --output text --api-key <this id>',
      });
    }
    new CfnOutput(this, 'BucketName', {
      value: this.bucket.bucketName,
      description: `Upload models with: aws s3 cp model.onnx s3://<bucket>/${REPOSITORY_PREFIXES.uploads}<model-name>/`,
    });
    new CfnOutput(this, 'InferenceUrl', {
      value: `${this.api.url}${V2_ROOT}`,
      description: 'KServe V2 root; models are under /models/<name>',
    });

    const functions = [this.controlFunction, this.registerFunction, ...[...this.endpoints.values()].map((e) => e.inferFunction)];
    for (const serviceFunction of functions) {
      serviceFunction.function.addEnvironment(ENV.traceEnabled, String(props.powertoolsTracer ?? false));
      if (props.sourceMapStackTraces ?? false) serviceFunction.function.addEnvironment(ENV.nodeOptions, '--enable-source-maps');
    }

    this.suppressNagFindings(authorization, executionLogging);
  }

  private createBuckets(removalPolicy: RemovalPolicy): { bucket: s3.Bucket; accessLogBucket: s3.Bucket } {
    const destroy = removalPolicy === RemovalPolicy.DESTROY;
    const accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
      autoDeleteObjects: destroy,
    });
    const bucket = new s3.Bucket(this, 'ModelBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Versioning keeps overwritten manifests and deleted versions recoverable; the rules bound what that costs.
      versioned: true,
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(30) },
        { abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      serverAccessLogsBucket: accessLogBucket,
      serverAccessLogsPrefix: 'model-bucket/',
      removalPolicy,
      autoDeleteObjects: destroy,
    });
    return { bucket, accessLogBucket };
  }

  private createApi(options: {
    authorization: ApiAuthorization;
    throttle: ThrottleSettings;
    logRetention: logs.RetentionDays;
    executionLogging: boolean;
    stageName: string;
    methodOptions: apigw.MethodOptions;
  }): apigw.RestApi {
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: options.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const api = new apigw.RestApi(this, 'Api', {
      description: 'KServe V2 inference endpoints (onnx-serverless)',
      binaryMediaTypes: [...BINARY_MEDIA_TYPES],
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      cloudWatchRole: options.executionLogging,
      defaultMethodOptions: options.methodOptions,
      deployOptions: {
        stageName: options.stageName,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        loggingLevel: options.executionLogging ? apigw.MethodLoggingLevel.ERROR : apigw.MethodLoggingLevel.OFF,
        // Request and response bodies are tensors: never write them to logs.
        dataTraceEnabled: false,
        tracingEnabled: true,
        throttlingRateLimit: options.throttle.rateLimit,
        throttlingBurstLimit: options.throttle.burstLimit,
      },
    });
    // Gateway-made errors get the same {"error": ...} shape as the handlers' errors.
    const errorBody = { 'application/json': '{"error": $context.error.messageString}' };
    api.addGatewayResponse('Default4xx', { type: apigw.ResponseType.DEFAULT_4XX, templates: errorBody });
    api.addGatewayResponse('Default5xx', { type: apigw.ResponseType.DEFAULT_5XX, templates: errorBody });
    // API Gateway answers an unknown path or method with "Missing Authentication Token"; say what it means.
    api.addGatewayResponse('UnknownRoute', {
      type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
      ...(options.authorization === 'api-key'
        ? {
            statusCode: '404',
            templates: {
              'application/json': JSON.stringify({
                error:
                  'No such route or method. Models are served under /v2/models/<name> (GET, GET /ready, ' +
                  'POST /infer, optionally after /versions/<v>); POST /v2/repository/index lists them.',
              }),
            },
          }
        : {
            templates: {
              'application/json': JSON.stringify({
                error:
                  'Request not signed or no such route: sign requests with SigV4 for execute-api, and check the ' +
                  'method and path (/v2/models/<name>/infer, POST /v2/repository/index lists the models).',
              }),
            },
          }),
    });
    return api;
  }

  private createControl(
    architecture: Architecture,
    layer: OnnxruntimeLayer,
    logRetention: logs.RetentionDays,
    manifestTtlSeconds: number,
    routeOptions: apigw.MethodOptions,
  ): ServiceFunction {
    const control = new ServiceFunction(this, 'Control', {
      handler: 'control',
      architecture,
      layer,
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
    grantObjects(
      control.role,
      this.bucket,
      ['s3:GetObject'],
      [`${REPOSITORY_PREFIXES.models}*/manifest.json`, `${REPOSITORY_PREFIXES.models}*/*/metadata.json`, `${REPOSITORY_PREFIXES.rejected}*`],
      'Read-only: the repository index reads manifests, version metadata and rejection records of every model.',
    );
    grantListUnder(control.role, this.bucket, [REPOSITORY_PREFIXES.models, REPOSITORY_PREFIXES.rejected]);

    const integration = new apigw.LambdaIntegration(control.function, { proxy: true, allowTestInvoke: false });
    const v2 = this.api.root.addResource(V2_ROOT);
    v2.addMethod('GET', integration, routeOptions);
    const health = v2.addResource('health');
    health.addResource('live').addMethod('GET', integration, routeOptions);
    health.addResource('ready').addMethod('GET', integration, routeOptions);
    v2.addResource('repository').addResource('index').addMethod('POST', integration, routeOptions);
    return control;
  }

  private createRegister(options: {
    architecture: Architecture;
    layer: OnnxruntimeLayer;
    logRetention: logs.RetentionDays;
    memoryMb: number;
    timeout: Duration;
  }): ServiceFunction {
    const register = new ServiceFunction(this, 'Register', {
      handler: 'register',
      architecture: options.architecture,
      layer: options.layer,
      memoryMb: options.memoryMb,
      timeout: options.timeout,
      logRetention: options.logRetention,
      serviceName: 'register',
      description: 'Validates uploads/<model>/*.onnx and *.zip and registers them as new versions (onnx-serverless)',
      // A .zip upload and its unpacked files sit in /tmp together while it registers.
      ephemeralStorageMb: registerScratchMbFor(DEFAULT_MAX_MODEL_BYTES),
      environment: { [ENV.modelBucket]: this.bucket.bucketName },
    });
    const uploads = `${REPOSITORY_PREFIXES.uploads}*`;
    const models = `${REPOSITORY_PREFIXES.models}*`;
    const rejected = `${REPOSITORY_PREFIXES.rejected}*`;
    grantObjects(
      register.role,
      this.bucket,
      ['s3:GetObject'],
      [uploads, models],
      'Register reads any upload, and the manifests and versions of any model (it registers them all).',
    );
    grantObjects(
      register.role,
      this.bucket,
      ['s3:PutObject'],
      [models, rejected],
      'Register writes versions and manifests of any model, and rejection records (it registers them all).',
    );
    grantListUnder(register.role, this.bucket, [REPOSITORY_PREFIXES.uploads, REPOSITORY_PREFIXES.models, REPOSITORY_PREFIXES.rejected]);

    // S3 takes one suffix per filter: one notification per suffix that starts a registration.
    for (const suffix of UPLOAD_SUFFIXES) {
      this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(register.function), {
        prefix: REPOSITORY_PREFIXES.uploads,
        suffix,
      });
    }
    return register;
  }

  private suppressNagFindings(authorization: ApiAuthorization, executionLogging: boolean): void {
    acknowledge(this.accessLogBucket, ['S1'], 'This is the access-log bucket itself; logging it into itself would loop.');
    acknowledge(
      this.api,
      ['APIG2'],
      'Path parameters are validated by API Gateway; bodies (V2 JSON or the binary tensor extension, which no JSON ' +
        'schema can describe) are validated by the handler against the catalog limits, with messages a client can act on.',
    );
    acknowledge(
      this.api,
      ['APIG3'],
      'WAF is left to the operator (its cost and rules depend on the traffic); API keys or IAM plus throttling apply.',
    );
    acknowledge(
      this.api,
      ['COG4'],
      'Machine-to-machine inference API: API keys with a usage plan by default, SigV4 IAM as the option; no user pool.',
    );
    if (authorization === 'api-key') {
      acknowledge(
        this.api,
        ['APIG4'],
        'Every method requires an API key bound to a throttled usage plan (the default); deploy with authorization ' +
          '"iam" for SigV4 authorization.',
      );
    }
    if (executionLogging) {
      acknowledge(
        this.api,
        [managedPolicyFinding('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
        'The AWS-maintained policy of the account-level role that API Gateway execution logging requires.',
      );
    } else {
      acknowledge(this.api, ['APIG6'], 'Execution logging disabled by the operator; access logs stay on.');
    }
    this.acknowledgeCdkProviders();
  }

  /**
   * CDK's own singleton functions: the S3 notification handler (behind `addEventNotification`) and the
   * BucketDeployment handler (seed uploads). Their code, runtime and policies belong to aws-cdk-lib; the
   * findings are listed one by one so a new one (say, after a CDK upgrade) still fails the checks.
   */
  private acknowledgeCdkProviders(): void {
    const basicRole = managedPolicyFinding('service-role/AWSLambdaBasicExecutionRole');
    const qualifier = String(this.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER);
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

function validateStackProps(
  path: string,
  props: {
    authorization: string;
    throttle: ThrottleSettings;
    models: readonly CatalogEntry[];
    stageName: string | undefined;
    registerMemoryMb: number | undefined;
  },
): void {
  if (props.authorization !== 'api-key' && props.authorization !== 'iam') {
    throw new Error(`${path}: authorization must be "api-key" or "iam", got "${props.authorization}"`);
  }
  const { rateLimit, burstLimit } = props.throttle;
  if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) {
    throw new Error(
      `${path}: throttle needs rateLimit > 0 and an integer burstLimit >= 1, got ${JSON.stringify(props.throttle)}`,
    );
  }
  if (burstLimit < rateLimit) {
    throw new Error(`${path}: throttle.burstLimit (${burstLimit}) must be at least rateLimit (${rateLimit})`);
  }
  const seen = new Set<string>();
  for (const model of props.models) {
    if (seen.has(model.name)) throw new Error(`${path}: model "${model.name}" is declared twice; names must be unique`);
    seen.add(model.name);
  }
  if (props.stageName !== undefined && !/^[A-Za-z0-9_]{1,128}$/.test(props.stageName)) {
    throw new Error(`${path}: stageName "${props.stageName}" may only hold letters, digits and underscores`);
  }
  const memory = props.registerMemoryMb;
  if (memory !== undefined && (!Number.isInteger(memory) || memory < 128 || memory > 10240)) {
    throw new Error(`${path}: registerMemoryMb must be an integer from 128 to 10240, got ${memory}`);
  }
}
