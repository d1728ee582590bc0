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
import { DEFAULT_LIMITS, SHARED_FUNCTION_DEFAULTS, sessionBudgetMbFor } from '../functions/core/catalog.js';
import { functionErrorsAlarm } from './alarms.js';
import { grantBucketAccess } from './bucket-grants.js';
import { SHARED_INFER_ACCESS } from './function-grants.js';
import { ENV } from './constants.js';
import type { HostedFunctionProps } from './function-props.js';
import { ServiceFunction } from './service-function.js';

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
  /** @default 15 */
  readonly manifestTtlSeconds?: number;
}

/** The shared infer function and the catch-all model routes. */
export class SharedModelEndpoint extends Construct {
  /** The shared `infer` function (no `MODEL_NAME`). */
  public readonly inferFunction: ServiceFunction;
  /** `/v2/models/{model}`, when the endpoint is on the REST API. */
  public readonly resource?: apigw.Resource;
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
      },
    });
    const role = this.inferFunction.role;
    grantBucketAccess(role, props.bucket, SHARED_INFER_ACCESS);
    if (props.modelsResource !== undefined)
      this.resource = this.addRoutes(props.modelsResource, props.methodOptions ?? {});
    this.errorsAlarm = functionErrorsAlarm(this.inferFunction, props.alarmAction);
  }

  private addRoutes(models: apigw.IResource, options: apigw.MethodOptions): apigw.Resource {
    const integration = new apigw.LambdaIntegration(this.inferFunction.function, {
      proxy: true,
      allowTestInvoke: false,
    });
    const withParams = (...names: string[]): apigw.MethodOptions => ({
      ...options,
      requestParameters: {
        ...options.requestParameters,
        ...Object.fromEntries(names.map((n) => [`method.request.path.${n}`, true])),
      },
    });
    const model = models.addResource('{model}');
    model.addMethod('GET', integration, withParams('model'));
    model.addResource('ready').addMethod('GET', integration, withParams('model'));
    model.addResource('infer').addMethod('POST', integration, withParams('model'));
    model.addResource('config').addMethod('GET', integration, withParams('model'));
    const version = model.addResource('versions').addResource('{v}');
    version.addMethod('GET', integration, withParams('model', 'v'));
    version.addResource('ready').addMethod('GET', integration, withParams('model', 'v'));
    version.addResource('infer').addMethod('POST', integration, withParams('model', 'v'));
    version.addResource('config').addMethod('GET', integration, withParams('model', 'v'));
    return model;
  }
}
