/**
 * One Lambda function of the service, built the same way for infer, register and control: esbuild ESM bundle of a
 * handler in `functions/handlers/`, its own role with no managed policy, its own log group, X-Ray and Powertools.
 */
import { type Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, METRICS_NAMESPACE } from './constants.js';
import { DESCRIPTION_RULES, fitDescription } from './descriptions.js';
import {
  BUNDLE_TARGET,
  DEFAULT_NODE_RUNTIME,
  lambdaArchitecture,
  lambdaRuntime,
  type Architecture,
  type NodeRuntime,
} from './lambda-runtime.js';
import { acknowledge } from './nag.js';
import type { OnnxruntimeLayer } from './onnxruntime-layer.js';

/** The repository root: where `package-lock.json` and `functions/` are. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The handler files of `functions/handlers/`. */
export type HandlerName = 'infer' | 'register' | 'control' | 'rollout' | 'batch';

/**
 * Packages that must not be bundled. `onnxruntime-node` loads native code relative to its own files and comes from
 * the layer; `onnxruntime-common` is left to the layer too so the handler and onnxruntime-node share one copy
 * (a second bundled copy would make `instanceof Tensor` checks fail across the two). Everything else, the AWS SDK
 * included, is bundled: the versions the tests ran are the versions that ship, instead of whatever SDK the
 * runtime happens to carry that day, and one minified file loads without a node_modules walk.
 */
export const EXTERNAL_MODULES = ['onnxruntime-node', 'onnxruntime-common', 'sharp'] as const;

/**
 * Construct context key (set by the stack from its `powertoolsTracer` prop) that says whether the functions load the
 * Powertools Tracer. When they do not, the Tracer and its X-Ray SDK (about 120 KB) stay out of the bundles: imported
 * only when enabled, they would still be compiled at every cold start.
 */
export const TRACER_CONTEXT = 'onnx-serverless:powertoolsTracer';

/** What {@link TRACER_CONTEXT} `false` leaves out of the bundles. */
export const TRACER_MODULES = ['@aws-lambda-powertools/tracer'] as const;

/**
 * ESM bundles have no `require`; bundled CommonJS dependencies (the AWS SDK's and X-Ray's internals) need one.
 * The aliased import keeps the banner's names clear of the bundle's own.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __onnxServerlessCreateRequire } from 'node:module';" +
  'const require = __onnxServerlessCreateRequire(import.meta.url);';

/** Props of {@link ServiceFunction}. */
export interface ServiceFunctionProps {
  /** Which `functions/handlers/<handler>.ts` to bundle. */
  readonly handler: HandlerName;
  /** CPU architecture; must match the layer's when a layer is given. */
  readonly architecture: Architecture;
  /** Memory in MB. */
  readonly memoryMb: number;
  /** Timeout. */
  readonly timeout: Duration;
  /** Function-specific environment, merged over the shared Powertools and Node settings. */
  readonly environment: Readonly<Record<string, string>>;
  /** `POWERTOOLS_SERVICE_NAME`: the service dimension of metrics and the `service` field of logs. */
  readonly serviceName: string;
  /** The onnxruntime layer, for functions that create sessions. @default none */
  readonly layer?: OnnxruntimeLayer;
  /** Retention of the function's log group. */
  readonly logRetention: logs.RetentionDays;
  /** Powertools log level. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Shown in the Lambda console; any text (fitted to Lambda's and IAM's rules, see `descriptions.ts`). */
  readonly description: string;
  /** Ephemeral storage (`/tmp`) in MB. @default 512 (Lambda's default) */
  readonly ephemeralStorageMb?: number;
  /** The Node.js runtime. @default 'nodejs24.x' */
  readonly runtime?: NodeRuntime;
  /** Retries of asynchronous invocations (S3 events, EventBridge). @default 2 (Lambda's default) */
  readonly retryAttempts?: number;
  /** Reserved concurrency: at most this many instances, and never fewer available. @default none (unreserved) */
  readonly reservedConcurrency?: number;
}

/** A handler of `functions/handlers/` as a Lambda function, with its role and log group. */
export class ServiceFunction extends Construct {
  /** The function. */
  public readonly function: NodejsFunction;
  /** Its execution role: logs and X-Ray only; callers add exactly the S3 and Lambda rights it needs. */
  public readonly role: iam.Role;
  /** Its log group, with the configured retention. */
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    if (props.layer !== undefined && props.layer.architecture !== props.architecture) {
      throw new Error(
        `${this.node.path}: the function is ${props.architecture} but the onnxruntime layer given is ` +
          `${props.layer.architecture}; pass the layer built for ${props.architecture}`,
      );
    }
    const entry = join(REPO_ROOT, 'functions', 'handlers', `${props.handler}.ts`);
    if (!existsSync(entry)) {
      throw new Error(`${this.node.path}: handler file ${entry} is missing; it must export \`handler\``);
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs outlive a stack deletion only by choice; the bucket holds what matters.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // An explicit role instead of AWSLambdaBasicExecutionRole, whose logs:* rights reach every log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: fitDescription(`Execution role of ${props.description}`, DESCRIPTION_RULES.iamRole),
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      runtime: lambdaRuntime(props.runtime ?? DEFAULT_NODE_RUNTIME),
      architecture: lambdaArchitecture(props.architecture),
      memorySize: props.memoryMb,
      ...(props.ephemeralStorageMb === undefined
        ? {}
        : { ephemeralStorageSize: Size.mebibytes(props.ephemeralStorageMb) }),
      timeout: props.timeout,
      description: fitDescription(props.description, DESCRIPTION_RULES.lambda),
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      layers: props.layer === undefined ? [] : [props.layer.layerVersion],
      retryAttempts: props.retryAttempts,
      ...(props.reservedConcurrency === undefined ? {} : { reservedConcurrentExecutions: props.reservedConcurrency }),
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      environment: {
        [ENV.serviceName]: props.serviceName,
        [ENV.metricsNamespace]: METRICS_NAMESPACE,
        [ENV.logLevel]: props.logLevel ?? 'INFO',
        // Responses are tensors: capturing them would blow X-Ray's 64 KB segment limit and leak data into traces.
        [ENV.tracerCaptureResponse]: 'false',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: BUNDLE_TARGET,
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        // Stack traces need file:line, not the sources: keeps the bundle small.
        sourcesContent: false,
        mainFields: ['module', 'main'],
        externalModules: [
          ...EXTERNAL_MODULES,
          ...(this.node.tryGetContext(TRACER_CONTEXT) === true ? [] : TRACER_MODULES),
        ],
        banner: ESM_REQUIRE_BANNER,
        forceDockerBundling: false,
        logLevel: LogLevel.ERROR,
      },
    });

    acknowledge(
      this.role,
      ['IAM5[Resource::*]'],
      'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions ("*" is their only ' +
        'resource); added by Tracing.ACTIVE.',
    );
    acknowledge(
      this.function,
      ['L1'],
      'The runtime is chosen among the Node majors the artifact test runs the bundles and layer on ' +
        '(NODE_RUNTIMES, nodejs24.x by default); a newer one is added there once tested.',
    );
  }
}
