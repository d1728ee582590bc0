/**
 * The HTTP API front (`-c api=http`): the same KServe V2 routes as the REST API on an API Gateway HTTP API, which
 * costs less than a third of REST per request. Payload format 2.0 events, one `$default` stage with throttling and
 * access logs, and IAM (SigV4) or JWT authorization on every route. HTTP APIs have no API keys, usage plans, caching
 * or WAF; see docs/fronts.md.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { RouteSpec } from './front-routes.js';
import { accessLogFormat, DEFAULT_THROTTLE, type ThrottleSettings } from './inference-api.js';
import { acknowledge } from './nag.js';

/** The JWT issuer and audiences an HTTP API's authorizer accepts. */
export interface JwtSettings {
  /** The issuer URL (`iss`), e.g. `https://cognito-idp.<region>.amazonaws.com/<pool-id>`; its JWKS is fetched from it. */
  readonly issuer: string;
  /** Accepted `aud` (or `client_id`) values. */
  readonly audience: readonly string[];
}

/** Props of {@link HttpApiFront}. */
export interface HttpApiFrontProps {
  /** `'iam'`: SigV4 on every route; `'jwt'`: a bearer JWT of `jwt`; `'none'`: no authentication (asked for). */
  readonly authorization: 'iam' | 'jwt' | 'none';
  /** Required with `authorization: 'jwt'`. */
  readonly jwt?: JwtSettings;
  /** Throttling of every route of the stage. @default { rateLimit: 50, burstLimit: 100 } */
  readonly throttle?: ThrottleSettings;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** An HTTP API with the KServe V2 routes its endpoints add. */
export class HttpApiFront extends Construct {
  /** The HTTP API. */
  public readonly api: apigwv2.HttpApi;
  /** The `$default` stage: throttling and access logs. */
  public readonly stage: apigwv2.HttpStage;
  private readonly authorizer: apigwv2.IHttpRouteAuthorizer;

  constructor(scope: Construct, id: string, props: HttpApiFrontProps) {
    super(scope, id);
    if (props.authorization === 'jwt' && props.jwt === undefined) {
      throw new Error(`${this.node.path}: authorization "jwt" needs jwt.issuer and jwt.audience`);
    }
    if (props.authorization !== 'jwt' && props.jwt !== undefined) {
      throw new Error(`${this.node.path}: jwt settings apply only with authorization "jwt"`);
    }
    const throttle = props.throttle ?? DEFAULT_THROTTLE;
    this.authorizer =
      props.authorization === 'iam'
        ? new HttpIamAuthorizer()
        : props.authorization === 'jwt' && props.jwt !== undefined
          ? new HttpJwtAuthorizer('JwtAuthorizer', props.jwt.issuer, { jwtAudience: [...props.jwt.audience] })
          : new apigwv2.HttpNoneAuthorizer();
    this.api = new apigwv2.HttpApi(this, 'HttpApi', {
      description: 'KServe V2 inference endpoints (onnx-serverless, HTTP API)',
      createDefaultStage: false,
      defaultAuthorizer: this.authorizer,
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: accessLogFormat(),
      },
    });
    if (props.authorization === 'none') {
      acknowledge(
        this.api,
        ['APIG4'],
        'No authorization: the operator deployed with -c auth=none (a synth warning says so).',
      );
    }
  }

  /** The URL of `/v2` on the `$default` stage. */
  public get v2Url(): string {
    return `${this.api.apiEndpoint}/v2`;
  }

  /** Routes `routes` to `target` (a function or an alias) with the API's authorization. */
  public addRoutes(id: string, routes: readonly RouteSpec[], target: lambda.IFunction): void {
    // No timeout set: an HTTP API's default is its maximum, 30 s (CDK itself refuses more than 29 s).
    const integration = new HttpLambdaIntegration(`${id}Integration`, target, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    for (const route of routes) {
      this.api.addRoutes({
        path: route.path,
        methods: [route.method === 'GET' ? apigwv2.HttpMethod.GET : apigwv2.HttpMethod.POST],
        integration,
        authorizer: this.authorizer,
      });
    }
  }
}
