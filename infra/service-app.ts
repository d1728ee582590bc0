/**
 * The CDK app of the service, as `cdk synth`/`cdk deploy` build it (`app.ts` calls these): the App with validation
 * that fails on any CloudFormation finding, and the stack configured from context (`-c key=value`), with every
 * option parsed and checked here, in one place. Tests build the same app to lint every documented variant.
 */
import { App, RemovalPolicy, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEFAULT_MODELS_DIR, loadCatalog } from './catalog-loader.js';
import { NODE_RUNTIMES, type NodeRuntime } from './lambda-runtime.js';
import {
  OnnxServerlessStack,
  type ApiFront,
  type FrontAuthorization,
  type OnnxServerlessStackProps,
} from './onnx-serverless-stack.js';

/**
 * CDK's own CloudFormation validation (on every synth) reports its findings as warnings unless told otherwise, and
 * a warning lets the synth succeed: a role IAM would refuse (F3031) went through that way. Both flags make every
 * finding, error or warning, fail the synth. Acknowledge a finding you accept with
 * `Validations.of(scope).acknowledge({ id: 'CloudFormation-Validate::<rule>', reason })`.
 */
export const STRICT_VALIDATION_CONTEXT = {
  '@aws-cdk/core:validateAgainstDefaultRules': true,
  '@aws-cdk/core:strictCfnValidateErrors': true,
} as const;

/** The context options of the app (`-c key=value`), each with what it sets; the README's table lists the same. */
export const CONTEXT_OPTIONS = {
  stackName: 'the stack name (default OnnxServerless)',
  api: 'the front door: rest (default), http (HTTP API) or url (Lambda function URLs); see docs/fronts.md',
  authorization:
    "how callers authenticate: api-key (rest's default), iam (http's and url's default) or jwt (http, with jwtIssuer)",
  auth: 'none deploys the front without authentication (a synth warning says so); the only value',
  jwtIssuer: "api=http: the JWT issuer URL (iss) callers' bearer tokens must come from; implies authorization=jwt",
  jwtAudience: 'api=http: comma-separated audiences (aud or client_id) accepted with jwtIssuer',
  cloudfront:
    'api=url: true puts one CloudFront distribution with origin access control before the URLs (default false; needs auth=none)',
  runtime: `the Node.js runtime of every function: ${NODE_RUNTIMES.join(' or ')} (default ${NODE_RUNTIMES[0]})`,
  alarmEmail: 'every alarm notifies a new SNS topic with this address subscribed',
  alarmTopicArn: 'every alarm notifies this existing SNS topic',
  subnetIds: 'comma-separated subnets of the Managed Instances (with securityGroupIds)',
  securityGroupIds: 'comma-separated security groups of the Managed Instances (with subnetIds)',
  powertoolsTracer: 'true loads the Powertools Tracer in every function (default false)',
  sourceMapStackTraces: 'true sets NODE_OPTIONS=--enable-source-maps (default false)',
  bucketRemovalPolicy: 'retain (default) keeps the model buckets on stack deletion; destroy empties and deletes them',
  streaming:
    'true streams answers from the infer functions (REST responseTransferMode STREAM): past 6 MB up to 200 MB ' +
    'instead of a 413 (default false)',
  executionLogging:
    'false turns API Gateway execution logs off, and with them the account-wide CloudWatch role (default true)',
  captureSamplingPercent:
    'percent (0-100) of requests and answers data capture writes to capture/<model>/ for models whose entry sets none (default 0)',
  batchMaxConcurrency: 'batch jobs: children in flight at once, never above batchReservedConcurrency (default 10)',
  batchReservedConcurrency: 'batch jobs: reserved concurrency of the batch function (default 10)',
  batchToleratedFailurePercentage: 'batch jobs: share of failed children a job tolerates, 0 to 100 (default 10)',
} as const;

/** A context option's name. */
export type ContextOption = keyof typeof CONTEXT_OPTIONS;

/** The App of the service: strict validation ({@link STRICT_VALIDATION_CONTEXT}) under the given context. */
export function createServiceApp(props: AppProps = {}): App {
  return new App({ ...props, context: { ...STRICT_VALIDATION_CONTEXT, ...props.context } });
}

/** Where the stack's parts come from when not from the app's defaults. */
export interface ServiceStackOptions {
  /** The catalog directory. @default the repository's `models/` */
  readonly modelsDir?: string;
  /** The onnxruntime layers' build directory. @default `layers/onnxruntime/build` */
  readonly layerBuildDir?: string;
}

/**
 * Adds the service's stack to `app`, configured from the app's context, and cdk-nag's AwsSolutions checks (an
 * unacknowledged error fails the synth). Throws naming the option for a value it cannot use.
 * @example addServiceStack(createServiceApp({ context: { authorization: 'iam' } }))
 */
export function addServiceStack(app: App, options: ServiceStackOptions = {}): OnnxServerlessStack {
  const modelsDir = options.modelsDir ?? DEFAULT_MODELS_DIR;
  const account = process.env['CDK_DEFAULT_ACCOUNT'];
  const region = process.env['CDK_DEFAULT_REGION'];
  const stack = new OnnxServerlessStack(app, contextString(app, 'stackName') ?? 'OnnxServerless', {
    ...(account === undefined && region === undefined ? {} : { env: { account, region } }),
    // The catalog is read here, once: the stack and its constructs take parsed entries.
    models: loadCatalog(modelsDir),
    modelsDir,
    ...(options.layerBuildDir === undefined ? {} : { layerBuildDir: options.layerBuildDir }),
    description: 'onnx-serverless: ONNX models as KServe V2 inference endpoints on AWS Lambda',
    ...stackPropsFromContext(app),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}

/** The stack props the context options set (see {@link CONTEXT_OPTIONS}); options not given are left out. */
export function stackPropsFromContext(app: App): Partial<OnnxServerlessStackProps> {
  const props: { -readonly [K in keyof OnnxServerlessStackProps]?: OnnxServerlessStackProps[K] } = {};
  const api = contextString(app, 'api');
  // The stack checks the front and its authentication together, naming what to change.
  if (api !== undefined) props.api = api as ApiFront;
  const authorization = contextString(app, 'authorization');
  if (authorization !== undefined) props.authorization = authorization as FrontAuthorization;
  const auth = contextString(app, 'auth');
  if (auth !== undefined) {
    if (auth !== 'none')
      throw new Error(`-c auth=${auth}: the only value is none; choose a method with -c authorization`);
    if (authorization !== undefined) {
      throw new Error(`-c auth=none and -c authorization=${authorization} contradict each other: give one`);
    }
    props.authorization = 'none';
  }
  const jwtIssuer = contextString(app, 'jwtIssuer');
  const jwtAudience = contextList(app, 'jwtAudience');
  if ((jwtIssuer === undefined) !== (jwtAudience === undefined || jwtAudience.length === 0)) {
    throw new Error('-c jwtIssuer and -c jwtAudience go together: give both (the issuer URL and its audiences)');
  }
  if (jwtIssuer !== undefined && jwtAudience !== undefined) {
    if (!/^https:\/\/[^\s]+$/.test(jwtIssuer)) {
      throw new Error(`-c jwtIssuer=${jwtIssuer}: an https:// URL, as API Gateway fetches its JWKS from it`);
    }
    props.jwt = { issuer: jwtIssuer, audience: jwtAudience };
  }
  const cloudfront = contextBoolean(app, 'cloudfront');
  if (cloudfront !== undefined) props.cloudfront = cloudfront;
  const runtime = contextString(app, 'runtime');
  if (runtime !== undefined) props.runtime = runtime as NodeRuntime;
  const alarmEmail = contextString(app, 'alarmEmail');
  if (alarmEmail !== undefined) props.alarmEmail = alarmEmail;
  const alarmTopicArn = contextString(app, 'alarmTopicArn');
  if (alarmTopicArn !== undefined) props.alarmTopicArn = alarmTopicArn;
  const subnetIds = contextList(app, 'subnetIds');
  if (subnetIds !== undefined) props.managedInstancesSubnetIds = subnetIds;
  const securityGroupIds = contextList(app, 'securityGroupIds');
  if (securityGroupIds !== undefined) props.managedInstancesSecurityGroupIds = securityGroupIds;
  const tracer = contextBoolean(app, 'powertoolsTracer');
  if (tracer !== undefined) props.powertoolsTracer = tracer;
  const sourceMaps = contextBoolean(app, 'sourceMapStackTraces');
  if (sourceMaps !== undefined) props.sourceMapStackTraces = sourceMaps;
  // The stack decides with the front whether it streams (infra/response-streaming.ts); unset, the front's default.
  const streaming = contextBoolean(app, 'streaming');
  if (streaming !== undefined) props.responseStreaming = streaming;
  const executionLogging = contextBoolean(app, 'executionLogging');
  if (executionLogging !== undefined) props.executionLogging = executionLogging;
  const capturePercent = contextString(app, 'captureSamplingPercent');
  if (capturePercent !== undefined) {
    const percent = capturePercent.trim() === '' ? Number.NaN : Number(capturePercent);
    if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
      throw new Error(`-c captureSamplingPercent=${capturePercent}: use a percent of requests from 0 to 100`);
    }
    props.captureSamplingPercent = percent;
  }
  const batchMax = contextNumber(app, 'batchMaxConcurrency');
  if (batchMax !== undefined) props.batchMaxConcurrency = batchMax;
  const batchReserved = contextNumber(app, 'batchReservedConcurrency');
  if (batchReserved !== undefined) props.batchReservedConcurrency = batchReserved;
  const tolerated = contextNumber(app, 'batchToleratedFailurePercentage');
  if (tolerated !== undefined) props.batchToleratedFailurePercentage = tolerated;
  const removal = contextString(app, 'bucketRemovalPolicy');
  if (removal !== undefined) {
    if (removal !== 'retain' && removal !== 'destroy') {
      throw new Error(`-c bucketRemovalPolicy=${removal}: use retain (the default) or destroy`);
    }
    props.bucketRemovalPolicy = removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
  }
  return props;
}

/** A context value as a string (`-c key=value` gives strings; cdk.json may give other JSON). */
function contextString(app: App, key: ContextOption): string | undefined {
  const value = app.node.tryGetContext(key) as unknown;
  return value === undefined ? undefined : String(value);
}

/** A comma-separated context value as a list, blanks dropped. */
function contextList(app: App, key: ContextOption): string[] | undefined {
  return contextString(app, key)
    ?.split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** A numeric context value; anything but a number is refused naming the option. */
function contextNumber(app: App, key: ContextOption): number | undefined {
  const value = contextString(app, key);
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) throw new Error(`-c ${key}=${value}: use a number`);
  return number;
}

function contextBoolean(app: App, key: ContextOption): boolean | undefined {
  const value = contextString(app, key);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new Error(`-c ${key}=${value}: use true or false`);
  return value === 'true';
}
