/**
 * The three fronts (`-c api=rest|http|url`) as synthesized: the same routes on each, the authentication each one
 * enforces on every route (none only with `auth=none`, and then a synth warning), the function URLs' invoke mode,
 * CloudFront with origin access control, cdk-nag, and every impossible combination refused at synth with its
 * reason. Built as `cdk synth -c ...` builds them (createServiceApp + addServiceStack); bundling skipped.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from 'aws-cdk-lib';
import { addServiceStack, createServiceApp } from '../../infra/service-app.js';
import type { OnnxServerlessStack } from '../../infra/onnx-serverless-stack.js';
import { nagFindings, removeTempDirs, resources, routes, tempDir, writeCatalog } from './fixture.js';

afterAll(removeTempDirs);

/** Two catalog models, one with provisioned concurrency (its routes go to the `live` alias). */
const CATALOG = {
  iris: { warmer: false },
  'resnet.v1': { provisionedConcurrency: 1, preload: true, warmer: false },
};

interface Built {
  readonly app: App;
  readonly stack: OnnxServerlessStack;
  readonly template: Template;
}

const layerBuildDir = tempDir('fronts-layers');
let modelsDir: string;

function build(context: Record<string, string>): Built {
  const app = createServiceApp({
    outdir: tempDir('fronts-out'),
    context: { 'aws:cdk:bundling-stacks': [], ...context },
  });
  const stack = addServiceStack(app, { modelsDir, layerBuildDir });
  app.synth();
  return { app, stack, template: Template.fromStack(stack) };
}

const ofType = (template: Template, type: string) =>
  Object.entries(resources(template)).filter(([, r]) => r.Type === type);

/** `"GET /v2/models/{model}"`-style keys of the HTTP API's routes, with their authorization type. */
const httpRoutes = (template: Template): Map<string, string> =>
  new Map(
    ofType(template, 'AWS::ApiGatewayV2::Route').map(([, r]) => [
      String(r.Properties?.['RouteKey']),
      String(r.Properties?.['AuthorizationType']),
    ]),
  );

const warnings = (built: Built): string[] =>
  Annotations.fromStack(built.stack)
    .findWarning('*', Match.anyValue())
    .map((w) => String(w.entry.data));

let rest: Built;
beforeAll(() => {
  modelsDir = writeCatalog(CATALOG);
  rest = build({});
}, 120_000);

describe('api=http', () => {
  let iam: Built;
  let jwt: Built;
  beforeAll(() => {
    iam = build({ api: 'http' });
    jwt = build({ api: 'http', jwtIssuer: 'https://issuer.example.com/pool', jwtAudience: 'client-a,client-b' });
  }, 120_000);

  it('serves exactly the REST API routes, each signed with IAM by default; no REST API, no API key', () => {
    const keys = httpRoutes(iam.template);
    expect([...keys.keys()].sort()).toEqual([...routes(rest.template).keys()].sort());
    // control 8 (the console and OpenAPI document among them), 11 per model function (2 models and the shared one)
    expect(keys.size).toBe(8 + 11 * 3);
    expect(new Set(keys.values())).toEqual(new Set(['AWS_IAM']));
    iam.template.resourceCountIs('AWS::ApiGateway::RestApi', 0);
    iam.template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    iam.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      PayloadFormatVersion: '2.0',
      // The HTTP API's default and maximum, 30 s.
      TimeoutInMillis: Match.absent(),
    });
    iam.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
    expect(iam.stack.front).toEqual({ api: 'http', authorization: 'iam' });
  });

  it('routes a catalog model to its own function (its alias with provisioned concurrency)', () => {
    const integrations = ofType(iam.template, 'AWS::ApiGatewayV2::Integration').map(([, r]) =>
      JSON.stringify(r.Properties?.['IntegrationUri']),
    );
    expect(integrations.some((uri) => uri.includes('Modelresnetv1Live'))).toBe(true);
    expect(integrations).toHaveLength(4); // control, iris, resnet.v1's alias, shared
  });

  it('with jwtIssuer and jwtAudience: a JWT authorizer on every route', () => {
    jwt.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com/pool', Audience: ['client-a', 'client-b'] },
    });
    const keys = httpRoutes(jwt.template);
    expect(keys.size).toBe(8 + 11 * 3);
    expect(new Set(keys.values())).toEqual(new Set(['JWT']));
    expect(jwt.stack.front.authorization).toBe('jwt');
  });

  it('passes the AWS Solutions checks', () => {
    expect(nagFindings(iam.app).filter((f) => f.startsWith('error'))).toEqual([]);
    expect(nagFindings(jwt.app).filter((f) => f.startsWith('error'))).toEqual([]);
    expect(warnings(iam)).toEqual([]);
  });
});

describe('api=url', () => {
  let iam: Built;
  let cdn: Built;
  beforeAll(() => {
    iam = build({ api: 'url' });
    cdn = build({ api: 'url', cloudfront: 'true', auth: 'none' });
  }, 120_000);

  it('gives every function an IAM-only URL, streaming the infer functions, and no API Gateway at all', () => {
    const urls = ofType(iam.template, 'AWS::Lambda::Url');
    expect(urls).toHaveLength(4); // control, iris, resnet.v1 (alias), shared
    for (const [, url] of urls) expect(url.Properties?.['AuthType']).toBe('AWS_IAM');
    // A function URL streams the infer functions' answers by default (infra/response-streaming.ts); control buffers.
    expect(urls.map(([, url]) => url.Properties?.['InvokeMode']).sort()).toEqual([
      'BUFFERED',
      'RESPONSE_STREAM',
      'RESPONSE_STREAM',
      'RESPONSE_STREAM',
    ]);
    expect(urls.some(([, u]) => u.Properties?.['Qualifier'] !== undefined)).toBe(true);
    iam.template.resourceCountIs('AWS::ApiGateway::RestApi', 0);
    iam.template.resourceCountIs('AWS::ApiGatewayV2::Api', 0);
    iam.template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    // No public invoke permission: without auth=none nobody unsigned gets in.
    for (const [, permission] of ofType(iam.template, 'AWS::Lambda::Permission')) {
      expect(permission.Properties?.['FunctionUrlAuthType']).not.toBe('NONE');
    }
    expect(Object.keys(iam.template.toJSON().Outputs)).not.toContain('InferenceUrl');
  });

  it('with cloudfront: one distribution, origin access control, URLs still IAM-only, model paths first', () => {
    for (const [, url] of ofType(cdn.template, 'AWS::Lambda::Url')) {
      expect(url.Properties?.['AuthType']).toBe('AWS_IAM');
    }
    cdn.template.resourceCountIs('AWS::CloudFront::Distribution', 1);
    cdn.template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: Match.objectLike({
        OriginAccessControlOriginType: 'lambda',
        SigningBehavior: 'always',
      }),
    });
    const [distribution] = ofType(cdn.template, 'AWS::CloudFront::Distribution').map(([, r]) => r.Properties);
    const config = (distribution as { DistributionConfig: { CacheBehaviors: { PathPattern: string }[] } })
      .DistributionConfig;
    expect(config.CacheBehaviors.map((b) => b.PathPattern)).toEqual([
      '/v2/models/iris',
      '/v2/models/iris/*',
      '/v2/models/resnet.v1',
      '/v2/models/resnet.v1/*',
      '/v2/models/*',
    ]);
    cdn.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunctionUrl',
      Principal: 'cloudfront.amazonaws.com',
    });
    expect(warnings(cdn).join('\n')).toMatch(/auth=none: the url front accepts requests from anyone.*WAF/);
    expect(Object.keys(cdn.template.toJSON().Outputs)).toContain('InferenceUrl');
  });

  it('passes the AWS Solutions checks', () => {
    expect(nagFindings(iam.app).filter((f) => f.startsWith('error'))).toEqual([]);
    expect(nagFindings(cdn.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });
});

describe('auth=none', () => {
  it('REST: no key, no IAM, a warning; the HTTP API: NONE routes, a warning; a URL: NONE auth type', () => {
    const open = build({ auth: 'none' });
    for (const [, method] of ofType(open.template, 'AWS::ApiGateway::Method')) {
      expect(method.Properties?.['AuthorizationType']).toBe('NONE');
      expect(method.Properties?.['ApiKeyRequired']).toBe(false);
    }
    open.template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    expect(warnings(open).join('\n')).toMatch(/auth=none: the rest front accepts requests from anyone/);
    expect(nagFindings(open.app).filter((f) => f.startsWith('error'))).toEqual([]);

    const http = build({ api: 'http', auth: 'none' });
    expect(new Set(httpRoutes(http.template).values())).toEqual(new Set(['NONE']));
    expect(warnings(http).join('\n')).toMatch(/auth=none: the http front/);

    const url = build({ api: 'url', auth: 'none' });
    for (const [, u] of ofType(url.template, 'AWS::Lambda::Url')) expect(u.Properties?.['AuthType']).toBe('NONE');
    expect(warnings(url).join('\n')).toMatch(/auth=none: the url front/);
  }, 180_000);

  it('no other variant has an unauthenticated route', () => {
    for (const [, method] of ofType(rest.template, 'AWS::ApiGateway::Method')) {
      expect(method.Properties?.['ApiKeyRequired']).toBe(true);
    }
    expect(warnings(rest)).toEqual([]);
  });
});

describe("catalog warnings follow the front's limits", () => {
  it('a 120 s model: a 504 warning behind the HTTP API (30 s), none behind a function URL (15 min)', () => {
    modelsDir = writeCatalog({ slow: { timeoutSeconds: 120, warmer: false } });
    try {
      expect(warnings(build({ api: 'http' })).join('\n')).toMatch(
        /timeoutSeconds 120 exceeds the API Gateway HTTP API's 30 s: clients get a 504 after 30 s/,
      );
      expect(warnings(build({ api: 'url' }))).toEqual([]);
    } finally {
      modelsDir = writeCatalog(CATALOG);
    }
  }, 120_000);
});

describe('impossible combinations fail the synth with the reason', () => {
  const refused = (context: Record<string, string>): string => {
    try {
      build(context);
    } catch (error) {
      return (error as Error).message;
    }
    return 'synthesized';
  };

  it.each([
    [
      { api: 'http', authorization: 'api-key' },
      /api=http cannot use authorization=api-key: HTTP APIs have no API keys/,
    ],
    [{ api: 'url', authorization: 'jwt' }, /api=url cannot use authorization=jwt: function URLs authenticate with IAM/],
    [
      { api: 'url', authorization: 'api-key' },
      /api=url cannot use authorization=api-key: function URLs have no API keys/,
    ],
    [
      { jwtIssuer: 'https://issuer.example.com', jwtAudience: 'a' },
      /api=rest cannot use authorization=jwt: JWT authorizers belong to HTTP APIs: use -c api=http/,
    ],
    [{ api: 'http', jwtIssuer: 'https://issuer.example.com' }, /jwtIssuer and -c jwtAudience go together/],
    [{ api: 'http', authorization: 'jwt' }, /authorization=jwt needs the issuer and audience/],
    [{ api: 'http', jwtIssuer: 'http://insecure', jwtAudience: 'a' }, /an https:\/\/ URL/],
    [
      { api: 'http', authorization: 'iam', jwtIssuer: 'https://i.example', jwtAudience: 'a' },
      /apply only with authorization=jwt/,
    ],
    [{ api: 'url', cloudfront: 'true' }, /cloudfront makes the endpoint public.*-c auth=none/],
    [
      { cloudfront: 'true', auth: 'none' },
      /cloudfront=true puts CloudFront before function URLs: use it with -c api=url/,
    ],
    [{ auth: 'none', authorization: 'iam' }, /-c auth=none and -c authorization=iam contradict each other/],
    [{ auth: 'off' }, /-c auth=off: the only value is none/],
    [{ api: 'graphql' }, /api "graphql" is not a front: use rest, http, url/],
    [{ api: 'http', executionLogging: 'false' }, /executionLogging apply to api=rest only/],
  ])('%o', (context, message) => {
    expect(refused(context)).toMatch(message);
  });
});
