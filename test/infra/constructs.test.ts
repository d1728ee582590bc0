/**
 * The stack's building blocks on their own, each in a bare stack: the model bucket, the inference API and the
 * registrar, with their props and misuse; and the composed stack keeps the logical ids of its stateful resources
 * (bucket, API, key), so that updating a deployed stack replaces none of them. Template only (no bundling).
 */
import { App, Duration, RemovalPolicy, Stack, type CfnElement } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { InferenceApi } from '../../infra/inference-api.js';
import { ModelBucket } from '../../infra/model-bucket.js';
import { OnnxruntimeLayer } from '../../infra/onnxruntime-layer.js';
import { Registrar } from '../../infra/registrar.js';
import { removeTempDirs, resources, roleStatements, routes, synthesize, tempDir } from './fixture.js';

afterAll(removeTempDirs);

const bareStack = (id: string): Stack => new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), id);
const logicalId = (construct: IConstruct): string => {
  const stack = Stack.of(construct);
  return stack.resolve(stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement)) as string;
};

describe('ModelBucket', () => {
  it('is versioned, encrypted, TLS-only, private and access-logged, retained by default', () => {
    const stack = bareStack('Bucket');
    const repo = new ModelBucket(stack, 'Repo', { noncurrentVersionDays: 7 });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 2);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true, RestrictPublicBuckets: true }),
        LoggingConfiguration: {
          DestinationBucketName: { Ref: logicalId(repo.accessLogBucket) },
          LogFilePrefix: 'model-bucket/',
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } })]),
        },
      }),
    });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('empties and deletes both buckets with RemovalPolicy.DESTROY, and refuses nonsense retention', () => {
    const stack = bareStack('Destroy');
    new ModelBucket(stack, 'Repo', { removalPolicy: RemovalPolicy.DESTROY });
    Template.fromStack(stack).resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    expect(() => new ModelBucket(stack, 'Bad', { accessLogDays: 0 })).toThrow(
      /accessLogDays must be a positive integer, got 0/,
    );
  });
});

describe('InferenceApi', () => {
  it('creates /v2 and /v2/models, control routes on request, and a key bound to a throttled usage plan', () => {
    const stack = bareStack('Api');
    const api = new InferenceApi(stack, 'Api', { throttle: { rateLimit: 7, burstLimit: 9 }, stageName: 'v1' });
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('export const handler = async () => ({})'),
    });
    api.addControlRoutes(fn);
    const template = Template.fromStack(stack);
    expect([...routes(template).keys()].sort()).toEqual([
      'GET /',
      'GET /v2',
      'GET /v2/health/live',
      'GET /v2/health/ready',
      'GET /v2/openapi.json',
      'POST /v2/repository/index',
      'POST /v2/repository/models/{model}/load',
      'POST /v2/repository/models/{model}/unload',
    ]);
    expect(api.modelsResource.path).toBe('/v2/models');
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', { Throttle: { RateLimit: 7, BurstLimit: 9 } });
    template.hasResourceProperties('AWS::ApiGateway::Stage', { StageName: 'v1' });
    template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
    for (const method of Object.values(resources(template)).filter((r) => r.Type === 'AWS::ApiGateway::Method')) {
      expect(method.Properties).toMatchObject({ ApiKeyRequired: true, RequestValidatorId: expect.anything() });
    }
  });

  it('signs with IAM and has no key when asked, and refuses props that cannot work', () => {
    const stack = bareStack('Iam');
    const api = new InferenceApi(stack, 'Api', { authorization: 'iam', executionLogging: false });
    api.modelsResource.addMethod('GET', new apigw.MockIntegration(), api.routeOptions);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    template.hasResourceProperties('AWS::ApiGateway::Method', { AuthorizationType: 'AWS_IAM' });
    expect(api.apiKey).toBeUndefined();
    expect(() => new InferenceApi(stack, 'A', { authorization: 'basic' as 'iam' })).toThrow(
      /authorization must be "api-key", "iam" or "none"/,
    );
    expect(() => new InferenceApi(stack, 'B', { throttle: { rateLimit: 0, burstLimit: 1 } })).toThrow(/rateLimit > 0/);
    expect(() => new InferenceApi(stack, 'C', { stageName: 'a/b' })).toThrow(/stageName "a\/b"/);
  });
});

describe('Registrar', () => {
  let stack: Stack;
  let layer: OnnxruntimeLayer;
  beforeAll(() => {
    stack = bareStack('Registrar');
    layer = new OnnxruntimeLayer(stack, 'Layer', {
      architecture: 'x86_64',
      buildDir: join(tempDir('layers'), 'x86_64'),
    });
  }, 60_000);

  it('subscribes register to uploads/**.onnx and uploads/**.zip, with the layer, its rights and an errors alarm', () => {
    const bucket = new s3.Bucket(stack, 'Bucket');
    const registrar = new Registrar(stack, 'Registration', {
      bucket,
      layer,
      memoryMb: 1024,
      timeout: Duration.minutes(2),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024,
      Timeout: 120,
      Architectures: ['x86_64'],
      Layers: [{ Ref: logicalId(layer.layerVersion) }],
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          Match.objectLike({
            Filter: {
              Key: {
                FilterRules: [
                  { Name: 'suffix', Value: '.onnx' },
                  { Name: 'prefix', Value: 'uploads/' },
                ],
              },
            },
          }),
          Match.objectLike({
            Filter: {
              Key: {
                FilterRules: [
                  { Name: 'suffix', Value: '.zip' },
                  { Name: 'prefix', Value: 'uploads/' },
                ],
              },
            },
          }),
        ],
      },
    });
    const actions = roleStatements(template, logicalId(registrar.registerFunction.role)).flatMap((s) =>
      [s.Action].flat(),
    );
    expect(actions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:PutObject', 's3:ListBucket']));
    expect(actions.filter((a) => a.startsWith('s3:') && a.includes('Delete'))).toEqual([]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Threshold: 1 });
    expect(() => new Registrar(stack, 'Big', { bucket, layer, memoryMb: 20_000 })).toThrow(
      /registerMemoryMb must be an integer from 128 to 10240/,
    );
  });
});

describe('OnnxServerlessStack', () => {
  it('keeps the logical ids of the single-construct layout for the bucket, the API, its key and the functions', () => {
    const { stack } = synthesize({ models: [parseCatalogEntry('a', {})] }, { bundling: false, id: 'S' });
    // Ids of the stack as it was before it was split into constructs: changing one would replace the resource.
    expect(logicalId(stack.bucket)).toBe('ModelBucketB33D855B');
    expect(logicalId(stack.accessLogBucket)).toBe('AccessLogBucketDA470295');
    expect(logicalId(stack.api!)).toBe('ApiF70053CD');
    expect(logicalId(stack.apiKey!)).toBe('ApiApiKey8A01341B');
    expect(logicalId(stack.api!.deploymentStage)).toBe('ApiDeploymentStageprod3EB9684E');
    expect(logicalId(stack.registerFunction.function)).toBe('RegisterFunction3F4C4225');
    expect(logicalId(stack.controlFunction.function)).toBe('ControlFunction8A0764F3');
    expect(logicalId(stack.endpoints.get('a')!.inferFunction.function)).toBe('ModelaInferFunction5CAA9662');
    const usagePlanKeys = Object.keys(resources(Template.fromStack(stack))).filter((id) =>
      id.includes('UsagePlanKeyResource'),
    );
    // A usage-plan key under a new id would be created beside the old one, and API Gateway refuses the duplicate.
    expect(usagePlanKeys).toEqual(['ApiUsagePlanUsagePlanKeyResourceSApiApiKeyD9934843E8BA77A8']);
  });
});

describe('catalog image preprocessing', () => {
  const letterbox = { images: { images: { size: [640, 640] } } };

  it('reaches register as CATALOG_PREPROCESS, defaults applied, only for the entries that declare it', () => {
    // Prepare
    const models = [
      parseCatalogEntry('det', { preprocess: letterbox }),
      parseCatalogEntry('plain', {}),
      parseCatalogEntry('ocr', {
        preprocess: { images: { x: { size: { multiple_of: 32 }, resize: 'stretch', channel_order: 'BGR' } } },
      }),
    ];

    // Act
    const { stack } = synthesize({ models }, { bundling: false, id: 'Pre' });

    // Assess
    const environment = resources(Template.fromStack(stack))[logicalId(stack.registerFunction.function)]?.Properties?.[
      'Environment'
    ] as { Variables: Record<string, unknown> };
    const declared = JSON.parse(environment.Variables['CATALOG_PREPROCESS'] as string);
    expect(Object.keys(declared)).toEqual(['det', 'ocr']);
    expect(declared.det.images.images).toEqual({
      layout: 'NCHW',
      size: [640, 640],
      resize: 'letterbox',
      pad: 114,
      channel_order: 'RGB',
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    expect(declared.ocr.images.x.size).toEqual({ multiple_of: 32, max_side: 960 });
    // The infer functions do not need it: the declaration is stored in each version's metadata.
    const infer = resources(Template.fromStack(stack))[logicalId(stack.endpoints.get('det')!.inferFunction.function)];
    expect(infer?.Properties?.['Environment']).not.toHaveProperty('Variables.CATALOG_PREPROCESS');
  });

  it('is absent from register without declarations, and refused at synth past what the 4 KB environment allows', () => {
    const { stack } = synthesize({ models: [parseCatalogEntry('a', {})] }, { bundling: false, id: 'NoPre' });
    const register = resources(Template.fromStack(stack))[logicalId(stack.registerFunction.function)];
    expect(register?.Properties?.['Environment']).not.toHaveProperty('Variables.CATALOG_PREPROCESS');

    const many = Array.from({ length: 20 }, (_, i) => parseCatalogEntry(`detector-${i}`, { preprocess: letterbox }));
    expect(() => synthesize({ models: many }, { bundling: false, id: 'TooMany' })).toThrow(
      /the image preprocessing declared in the catalog \(models\/\*\.json "preprocess"\) takes \d+ bytes of register's environment \(CATALOG_PREPROCESS, with CATALOG_ROLLOUT\), over the 3072/,
    );
  });

  it('an entry whose declaration is invalid is refused naming the field', () => {
    expect(() => parseCatalogEntry('det', { preprocess: { images: { images: { size: [640] } } } })).toThrow(
      /models\/det\.json is invalid: preprocess\.images\.images\.size/,
    );
  });
});
