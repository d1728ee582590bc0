/**
 * The REST API every route lives on: KServe V2 under `/v2` of one stage, binary bodies, access logs, gateway
 * errors in the handlers' `{"error": ...}` shape, authorization (API keys with a usage plan, or SigV4) and
 * throttling. Model endpoints add their routes under {@link InferenceApi.modelsResource}.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { addTableRoutes } from './api-routes.js';
import { BINARY_MEDIA_TYPES, V2_ROOT } from './constants.js';
import { acknowledge, managedPolicyFinding } from './nag.js';

/** How callers authenticate to the REST API; `'none'` only when the operator asks for it (`-c auth=none`). */
export type ApiAuthorization = 'api-key' | 'iam' | 'none';

/** Steady-state requests per second and burst, per method of the stage and for the usage plan. */
export interface ThrottleSettings {
  /** Requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst. */
  readonly burstLimit: number;
}

/** Throttling when none is given. */
export const DEFAULT_THROTTLE: ThrottleSettings = { rateLimit: 50, burstLimit: 100 };

/** The access-log line of every front's stage: the standard fields, as JSON (never bodies). */
export function accessLogFormat(): apigw.AccessLogFormat {
  return apigw.AccessLogFormat.jsonWithStandardFields({
    caller: true,
    httpMethod: true,
    ip: true,
    protocol: true,
    requestTime: true,
    resourcePath: true,
    responseLength: true,
    status: true,
    user: true,
  });
}

/** Props of {@link InferenceApi}. */
export interface InferenceApiProps {
  /**
   * `'api-key'`: every method requires an `x-api-key` header; a key and a usage plan are created.
   * `'iam'`: every method requires SigV4-signed requests (`execute-api:Invoke`); no key is created.
   * `'none'`: no authentication at all (throttling still applies).
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
   * CloudWatch role, which is then created (`AWS::ApiGateway::Account`).
   * @default true
   */
  readonly executionLogging?: boolean;
  /**
   * Retention of the access logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Names the API key and usage plan in their descriptions.
   * @default 'onnx-serverless'
   */
  readonly serviceName?: string;
}

/** The REST API, its `/v2` and `/v2/models` resources, and its key and usage plan. */
export class InferenceApi extends Construct {
  /** The REST API. */
  public readonly api: apigw.RestApi;
  /** `/v2`. */
  public readonly v2Resource: apigw.Resource;
  /** `/v2/models`: model endpoints add `<name>` under it. */
  public readonly modelsResource: apigw.Resource;
  /** Options every route uses: the authorization and the path-parameter validator. */
  public readonly routeOptions: apigw.MethodOptions;
  /** How callers authenticate. */
  public readonly authorization: ApiAuthorization;
  /** The API key callers send as `x-api-key`, with `authorization: 'api-key'`. */
  public readonly apiKey?: apigw.IApiKey;
  /** The usage plan throttling that key, with `authorization: 'api-key'`. */
  public readonly usagePlan?: apigw.UsagePlan;

  constructor(scope: Construct, id: string, props: InferenceApiProps = {}) {
    super(scope, id);
    const authorization = props.authorization ?? 'api-key';
    const throttle = props.throttle ?? DEFAULT_THROTTLE;
    const executionLogging = props.executionLogging ?? true;
    const stageName = props.stageName ?? 'prod';
    this.validate(authorization, throttle, stageName);
    this.authorization = authorization;
    // The usage-plan key's logical id must not depend on the order keys were added in (set before it exists).
    this.node.setContext('@aws-cdk/aws-apigateway:usagePlanKeyOrderInsensitiveId', true);

    const methodOptions: apigw.MethodOptions = {
      apiKeyRequired: authorization === 'api-key',
      authorizationType: authorization === 'iam' ? apigw.AuthorizationType.IAM : apigw.AuthorizationType.NONE,
    };
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new apigw.RestApi(this, 'Api', {
      description: 'KServe V2 inference endpoints (onnx-serverless)',
      binaryMediaTypes: [...BINARY_MEDIA_TYPES],
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      cloudWatchRole: executionLogging,
      defaultMethodOptions: methodOptions,
      deployOptions: {
        stageName,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: accessLogFormat(),
        loggingLevel: executionLogging ? apigw.MethodLoggingLevel.ERROR : apigw.MethodLoggingLevel.OFF,
        // Request and response bodies are tensors: never write them to logs.
        dataTraceEnabled: false,
        tracingEnabled: true,
        throttlingRateLimit: throttle.rateLimit,
        throttlingBurstLimit: throttle.burstLimit,
      },
    });
    this.addGatewayResponses(authorization);
    const validator = new apigw.RequestValidator(this, 'PathParameterValidator', {
      restApi: this.api,
      validateRequestParameters: true,
      validateRequestBody: false,
    });
    this.routeOptions = { ...methodOptions, requestValidator: validator };
    this.v2Resource = this.api.root.addResource(V2_ROOT);
    this.modelsResource = this.v2Resource.addResource('models');

    if (authorization === 'api-key') {
      const service = props.serviceName ?? 'onnx-serverless';
      this.apiKey = this.api.addApiKey('ApiKey', { description: `Key for ${service}'s inference API` });
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: `Default throttling of ${service}'s API key`,
        throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
        apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
      });
      this.usagePlan.addApiKey(this.apiKey);
    }
    this.acknowledgeFindings(authorization, executionLogging);
  }

  /** The URL of `/v2` on the deployed stage. */
  public get v2Url(): string {
    return `${this.api.url}${V2_ROOT}`;
  }

  /**
   * Routes the control function's routes of the route table: the console at the API's root, `GET /v2`, the
   * OpenAPI document, health, the repository index, and Triton's load/unload (answered with a 400 saying how
   * versions are made here, not a bare 404 from the gateway).
   */
  public addControlRoutes(handler: lambda.IFunction): void {
    const integration = new apigw.LambdaIntegration(handler, { proxy: true, allowTestInvoke: false });
    addTableRoutes({ function: 'control', root: this.api.root }, integration, this.routeOptions);
  }

  private validate(authorization: string, throttle: ThrottleSettings, stageName: string): void {
    const path = this.node.path;
    if (authorization !== 'api-key' && authorization !== 'iam' && authorization !== 'none') {
      throw new Error(`${path}: authorization must be "api-key", "iam" or "none", got "${authorization}"`);
    }
    const { rateLimit, burstLimit } = throttle;
    if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) {
      throw new Error(
        `${path}: throttle needs rateLimit > 0 and an integer burstLimit >= 1, got ${JSON.stringify(throttle)}`,
      );
    }
    if (burstLimit < rateLimit) {
      throw new Error(`${path}: throttle.burstLimit (${burstLimit}) must be at least rateLimit (${rateLimit})`);
    }
    if (!/^[A-Za-z0-9_]{1,128}$/.test(stageName)) {
      throw new Error(`${path}: stageName "${stageName}" may only hold letters, digits and underscores`);
    }
  }

  private addGatewayResponses(authorization: ApiAuthorization): void {
    // Gateway-made errors get the same {"error": ...} shape as the handlers' errors.
    const errorBody = { 'application/json': '{"error": $context.error.messageString}' };
    this.api.addGatewayResponse('Default4xx', { type: apigw.ResponseType.DEFAULT_4XX, templates: errorBody });
    this.api.addGatewayResponse('Default5xx', { type: apigw.ResponseType.DEFAULT_5XX, templates: errorBody });
    // API Gateway answers an unknown path or method with "Missing Authentication Token"; say what it means.
    this.api.addGatewayResponse('UnknownRoute', {
      type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
      ...(authorization !== 'iam'
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
  }

  private acknowledgeFindings(authorization: ApiAuthorization, executionLogging: boolean): void {
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
    if (authorization === 'none') {
      acknowledge(
        this.api,
        ['APIG4'],
        'No authorization: the operator deployed with -c auth=none (a synth warning says so); throttling applies.',
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
  }
}
