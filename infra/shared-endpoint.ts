/**
 * The endpoint of every model without a catalog entry: one `infer` function with no `MODEL_NAME`, behind the
 * catch-all routes `/v2/models/{model}/...`. API Gateway prefers a static path segment over a path parameter, so a
 * catalog model's own routes (and function, warmer, provisioned concurrency) still win; everything else uploaded to
 * the bucket is served here, exactly as `npm start` serves every registered model.
 */
import { Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { captureEnvironment } from '../functions/core/capture.js';
import { AsyncInvocation } from './async-invocation.js';
import { DEFAULT_LIMITS, SHARED_FUNCTION_DEFAULTS, sessionBudgetMbFor } from '../functions/core/catalog.js';
import { functionErrorsAlarm } from './alarms.js';
import { addTableRoutes } from './api-routes.js';
import { grantBucketAccess } from './bucket-grants.js';
import { SHARED_INFER_ACCESS } from './function-grants.js';
import { ENV } from './constants.js';
import type { HostedFunctionProps } from './function-props.js';
import { ServiceFunction } from './service-function.js';
import { restIntegrationOptions, streamingEnvironment } from './response-streaming.js';

/** Props of {@link SharedModelEndpoint}. */
export interface SharedModelEndpointProps extends HostedFunctionProps {
  /**
   * The `/v2/models` resource of the REST API; `{model}` and its sub-routes are added under it.
   * @default no REST routes: another front routes to {@link SharedModelEndpoint.inferFunction}
   */
  readonly modelsResource?: apigw.IResource;
  /** Options of every method (authorization, API key, request validator). @default none */
  readonly methodOptions?: apigw.MethodOptions;
  /**
   * Memory of the function. A quarter of it is the budget of model-file bytes kept loaded across models
   * (`SESSION_BUDGET_MB`): onnxruntime holds about twice a model's file size, and requests need room too.
   * @default 3008
   */
  readonly memoryMb?: number;
  /**
   * The front streams answers (see `infra/response-streaming.ts`): the infer function gets `RESPONSE_STREAMING=true`
   * and its REST integration `responseTransferMode: STREAM` (InvokeWithResponseStream), so answers past Lambda's
   * 6 MB buffered limit are streamed, up to 200 MB.
   * @default false
   */
  readonly responseStreaming?: boolean;
  /** @default 15 */
  readonly manifestTtlSeconds?: number;
  /**
   * Percent of requests captured (docs/capture.md); the models served here have no catalog entry of their own.
   * @default 0: nothing is captured
   */
  readonly captureSamplingPercent?: number;
}

/** The shared infer function and the catch-all model routes. */
export class SharedModelEndpoint extends Construct {
  /** The shared `infer` function (no `MODEL_NAME`). */
  public readonly inferFunction: ServiceFunction;
  /** Whether the front streams this function's answers (`responseStreaming`). */
  public readonly responseStreaming: boolean;
  /** `/v2/models/{model}`, when the endpoint is on the REST API. */
  public readonly resource?: apigw.Resource;
  /** The `async` alias that async requests are queued on, with its destinations (docs/async.md). */
  public readonly asyncInvocation: AsyncInvocation;
  /** Fires on any error of the function in five minutes. */
  public readonly errorsAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: SharedModelEndpointProps) {
    super(scope, id);
    const memoryMb = props.memoryMb ?? SHARED_FUNCTION_DEFAULTS.memoryMb;
    if (!Number.isInteger(memoryMb) || memoryMb < 512 || memoryMb > 10240) {
      throw new Error(
        `${this.node.path}: memoryMb of the shared infer function must be an integer from 512 to 10240, got ${memoryMb}`,
      );
    }
    const capture = captureEnvironment(undefined, props.captureSamplingPercent ?? 0);
    this.responseStreaming = props.responseStreaming ?? false;
    this.inferFunction = new ServiceFunction(this, 'Infer', {
      handler: 'infer',
      architecture: props.layer.architecture,
      layer: props.layer,
      ...(props.runtime === undefined ? {} : { runtime: props.runtime }),
      memoryMb,
      timeout: Duration.seconds(29),
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      serviceName: 'infer-shared',
      description: 'infer (onnx-serverless): every model without a catalog entry, behind /v2/models/{model}',
      environment: {
        [ENV.modelBucket]: props.bucket.bucketName,
        [ENV.manifestTtlSeconds]: String(props.manifestTtlSeconds ?? 15),
        [ENV.modelLimits]: JSON.stringify(DEFAULT_LIMITS),
        [ENV.sessionBudgetMb]: String(sessionBudgetMbFor(memoryMb)),
        ...(capture === undefined ? {} : { [ENV.dataCapture]: capture }),
        ...streamingEnvironment(this.responseStreaming),
      },
    });
    const role = this.inferFunction.role;
    grantBucketAccess(role, props.bucket, SHARED_INFER_ACCESS);
    this.asyncInvocation = new AsyncInvocation(this, 'Async', { function: this.inferFunction.function, role });
    if (props.modelsResource !== undefined)
      this.resource = this.addRoutes(props.modelsResource, props.methodOptions ?? {});
    this.errorsAlarm = functionErrorsAlarm(this.inferFunction, props.alarmAction);
  }

  private addRoutes(models: apigw.IResource, options: apigw.MethodOptions): apigw.Resource {
    const integration = new apigw.LambdaIntegration(this.inferFunction.function, {
      proxy: true,
      allowTestInvoke: false,
      ...restIntegrationOptions(this.responseStreaming),
    });
    addTableRoutes({ function: 'model', models, model: '{model}' }, integration, options);
    return models.resourceForPath('{model}');
  }
}
