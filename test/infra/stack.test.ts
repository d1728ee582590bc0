/**
 * The synthesized template of a two-model catalog, bundled for real: routes, functions, layers, warmers,
 * provisioned concurrency, alarms, least-privilege policies, bucket settings, seeds, cdk-nag, and the bundles.
 * One synthesis for the whole file (bundling is the slow part).
 */
import { CfnResource, Stack, type CfnElement } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { EXTERNAL_MODULES, TRACER_MODULES } from '../../infra/service-function.js';
import {
  bucketArn,
  BATCH_FUNCTION_ACCESS,
  bucketStatements,
  CONTROL_ACCESS,
  inferAccess,
  REGISTER_ACCESS,
  ROLLOUT_ACCESS,
} from '../../infra/function-grants.js';
import {
  findCycle,
  nagFindings,
  removeTempDirs,
  resources,
  roleStatements,
  routes,
  s3PolicyOf,
  squareModel,
  synthesize,
  writeCatalog,
  type Synthesized,
} from './fixture.js';

afterAll(removeTempDirs);

let synth: Synthesized;

const logicalId = (construct: IConstruct): string => {
  const stack = Stack.of(construct);
  const element = (CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild) as CfnElement;
  return stack.resolve(stack.getLogicalId(element)) as string;
};

beforeAll(() => {
  // Prepare: an arm64 model with a seed, a sample and a 2-instance warmer; an x86_64 model with provisioned
  // concurrency and no warmer.
  const modelsDir = writeCatalog(
    {
      iris: {
        seed: 'iris.onnx',
        warmer: { schedule: 'rate(5 minutes)', concurrency: 2 },
        limits: { maxBodyBytes: 1048576 },
      },
      'resnet.v1': {
        architecture: 'x86_64',
        memoryMb: 4096,
        timeoutSeconds: 20,
        provisionedConcurrency: 2,
        preload: true,
        warmer: false,
      },
    },
    { 'iris.onnx': squareModel(), 'iris.onnx.json': JSON.stringify({ inputs: [] }) },
  );
  synth = synthesize({ modelsDir }, { bundling: true });
}, 240_000);

describe('functions', () => {
  it('creates one infer function per model, sized and wired from its catalog entry', () => {
    const iris = synth.stack.endpoints.get('iris');
    const resnet = synth.stack.endpoints.get('resnet.v1');
    expect([...synth.stack.endpoints.keys()]).toEqual(['iris', 'resnet.v1']);

    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Architectures: ['arm64'],
      MemorySize: 2048,
      Timeout: 29,
      TracingConfig: { Mode: 'Active' },
      Layers: [{ Ref: logicalId(synth.stack.layers.get('arm64')!.layerVersion) }],
      Environment: {
        Variables: {
          MODEL_BUCKET: { Ref: logicalId(synth.stack.bucket) },
          MODEL_NAME: 'iris',
          MANIFEST_TTL_SECONDS: '15',
          MODEL_LIMITS: JSON.stringify({ ...DEFAULT_LIMITS, maxBodyBytes: 1048576 }),
          PRELOAD: 'false',
          POWERTOOLS_SERVICE_NAME: 'infer-iris',
          POWERTOOLS_METRICS_NAMESPACE: 'OnnxServerless',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
          POWERTOOLS_TRACE_ENABLED: 'false',
        },
      },
    });
    const resnetFn = resources(synth.template)[logicalId(resnet!.inferFunction.function)];
    expect(resnetFn?.Properties).toMatchObject({
      Architectures: ['x86_64'],
      MemorySize: 4096,
      Timeout: 20,
      Layers: [{ Ref: logicalId(synth.stack.layers.get('x86_64')!.layerVersion) }],
      Environment: {
        // The inference deadline follows the function's 20 s timeout: 2 s less.
        Variables: {
          MODEL_NAME: 'resnet.v1',
          PRELOAD: 'true',
          MODEL_LIMITS: JSON.stringify({ ...DEFAULT_LIMITS, timeoutMs: 18_000 }),
        },
      },
    });
    expect(iris?.alias).toBeUndefined();
  });

  it('gives register the layer, more memory and a longer timeout, and control the metadata settings', () => {
    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Validates uploads'),
      Architectures: ['arm64'],
      MemorySize: 3008,
      Timeout: 300,
      Layers: [{ Ref: logicalId(synth.stack.layers.get('arm64')!.layerVersion) }],
      Environment: {
        Variables: Match.objectLike({ MODEL_BUCKET: Match.anyValue(), POWERTOOLS_SERVICE_NAME: 'register' }),
      },
    });
    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^KServe V2 health'),
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'control', MANIFEST_TTL_SECONDS: '15' }) },
    });
    const ours = Object.values(resources(synth.template)).filter(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.['Runtime'] === 'nodejs24.x',
    );
    // Two infer functions, the shared one, register, control, the rollout controller and the batch function.
    expect(ours).toHaveLength(7);
  });

  it('builds one layer per architecture in use, each declaring that architecture and Node 24 and 22', () => {
    for (const [arch, layer] of synth.stack.layers) {
      synth.template.hasResource('AWS::Lambda::LayerVersion', {
        Properties: Match.objectLike({
          CompatibleArchitectures: [arch],
          CompatibleRuntimes: ['nodejs24.x', 'nodejs22.x'],
          Description: Match.stringLikeRegexp(`linux/${arch === 'arm64' ? 'arm64' : 'x64'} binaries only`),
        }),
      });
      expect(logicalId(layer.layerVersion)).toMatch(/^Onnxruntime/);
    }
    expect([...synth.stack.layers.keys()]).toEqual(['arm64', 'x86_64']);
  });

  it('puts provisioned concurrency on a live alias that the API invokes', () => {
    const resnet = synth.stack.endpoints.get('resnet.v1')!;
    // The live alias, and the async alias of every infer function (docs/async.md).
    synth.template.resourceCountIs('AWS::Lambda::Alias', 1 + synth.stack.endpoints.size + 1);
    synth.template.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      FunctionName: { Ref: logicalId(resnet.inferFunction.function) },
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    expect(routes(synth.template).get('POST /v2/models/resnet.v1/infer')).toEqual(new Set([logicalId(resnet.alias!)]));
  });

  it('queues async jobs on an async alias: an hour of event age, 2 retries, EventBridge on success, itself on failure', () => {
    const functions = [
      ...[...synth.stack.endpoints.values()].map((endpoint) => endpoint.inferFunction.function),
      synth.stack.sharedEndpoint.inferFunction.function,
    ];
    const asyncConfigs = synth.template.findResources('AWS::Lambda::EventInvokeConfig', {
      Properties: { Qualifier: 'async' },
    });
    expect(Object.keys(asyncConfigs)).toHaveLength(functions.length);
    for (const fn of functions) {
      const fnArn = { 'Fn::GetAtt': [logicalId(fn), 'Arn'] };
      synth.template.hasResourceProperties('AWS::Lambda::Alias', {
        Name: 'async',
        FunctionName: { Ref: logicalId(fn) },
      });
      synth.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(fn) },
        Qualifier: 'async',
        MaximumEventAgeInSeconds: 3600,
        MaximumRetryAttempts: 2,
        DestinationConfig: {
          OnSuccess: { Destination: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':event-bus/default'])] }) },
          OnFailure: { Destination: fnArn },
        },
      });
    }
  });
});

describe('API', () => {
  it('routes exactly the KServe V2 paths: per model to its function, other models to the shared one, the rest to control', () => {
    const all = routes(synth.template);
    const control = logicalId(synth.stack.controlFunction.function);
    const shared = logicalId(synth.stack.sharedEndpoint.inferFunction.function);
    const expected = new Map<string, string>([
      ['GET /', control],
      ['GET /v2/openapi.json', control],
      ['GET /v2', control],
      ['GET /v2/health/live', control],
      ['GET /v2/health/ready', control],
      ['POST /v2/repository/index', control],
      ['POST /v2/repository/models/{model}/load', control],
      ['POST /v2/repository/models/{model}/unload', control],
    ]);
    for (const base of ['/v2/models/{model}', '/v2/models/{model}/versions/{v}']) {
      expected.set(`GET ${base}`, shared);
      expected.set(`GET ${base}/ready`, shared);
      expected.set(`POST ${base}/infer`, shared);
      expected.set(`GET ${base}/config`, shared);
      expected.set(`GET ${base}/openapi.json`, shared);
    }
    expected.set('GET /v2/models/{model}/jobs/{id}', shared);
    for (const [model, endpoint] of synth.stack.endpoints) {
      const target = logicalId(endpoint.invokeTarget);
      for (const base of [`/v2/models/${model}`, `/v2/models/${model}/versions/{v}`]) {
        expected.set(`GET ${base}`, target);
        expected.set(`GET ${base}/ready`, target);
        expected.set(`POST ${base}/infer`, target);
        expected.set(`GET ${base}/config`, target);
        expected.set(`GET ${base}/openapi.json`, target);
      }
      expected.set(`GET /v2/models/${model}/jobs/{id}`, target);
    }
    expect(new Map([...all].map(([route, targets]) => [route, [...targets].join()]))).toEqual(expected);
    expect(expected.get('POST /v2/models/iris/infer')).toBe(
      logicalId(synth.stack.endpoints.get('iris')!.inferFunction.function),
    );
  });

  it('delivers every body as binary, requires an API key on every method and validates path parameters', () => {
    synth.template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['*/*'] });
    // Compression is the function's job (README: HTTP compression): the gateway neither compresses nor decodes.
    synth.template.hasResourceProperties('AWS::ApiGateway::RestApi', { MinimumCompressionSize: Match.absent() });
    const methods = Object.values(resources(synth.template)).filter((r) => r.Type === 'AWS::ApiGateway::Method');
    // control 8 (incl. the console and Triton's load/unload), 11 per catalog model (2 here), 11 for the shared one
    expect(methods).toHaveLength(8 + 11 * 2 + 11);
    for (const method of methods) {
      expect(method.Properties).toMatchObject({ ApiKeyRequired: true, AuthorizationType: 'NONE' });
    }
    synth.template.hasResourceProperties('AWS::ApiGateway::Method', {
      RequestParameters: { 'method.request.path.v': true },
      RequestValidatorId: Match.anyValue(),
    });
    synth.template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestParameters: true });
  });

  it('throttles by default, through the stage and a usage plan bound to an API key', () => {
    synth.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: [
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
        }),
      ],
    });
    synth.template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 50, BurstLimit: 100 },
    });
    synth.template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    synth.template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
  });

  it('answers gateway errors with the {"error": ...} body of the handlers, and unknown routes with 404', () => {
    synth.template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'DEFAULT_4XX',
      ResponseTemplates: { 'application/json': '{"error": $context.error.messageString}' },
    });
    synth.template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'MISSING_AUTHENTICATION_TOKEN',
      StatusCode: '404',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"error":"No such route') },
    });
  });
});

describe('events', () => {
  it('registers uploads/**/*.onnx and uploads/**/*.zip only', () => {
    const rule = (suffix: string) => ({
      Events: ['s3:ObjectCreated:*'],
      Filter: {
        Key: {
          FilterRules: [
            { Name: 'suffix', Value: suffix },
            { Name: 'prefix', Value: 'uploads/' },
          ],
        },
      },
      LambdaFunctionArn: { 'Fn::GetAtt': [logicalId(synth.stack.registerFunction.function), 'Arn'] },
    });
    synth.template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { LambdaFunctionConfigurations: [rule('.onnx'), rule('.zip')] },
    });
  });

  it('warms the models that ask for it, with their concurrency, and no others', () => {
    // The warmer of iris, and the rollout controller's schedule.
    synth.template.resourceCountIs('AWS::Events::Rule', 2);
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(synth.stack.endpoints.get('iris')!.inferFunction.function), 'Arn'] },
          Input: JSON.stringify({ warmer: true, concurrency: 2 }),
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        }),
      ],
    });
  });

  it('alarms on errors, throttles and p99 latency of each model, on errors of register, control, rollout, batch and the shared infer, and on failed registrations', () => {
    synth.template.resourceCountIs('AWS::CloudWatch::Alarm', 3 * 2 + 6);
    synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Threshold: 20 * 1000 * 0.8,
      Dimensions: [
        {
          Name: 'FunctionName',
          Value: { Ref: logicalId(synth.stack.endpoints.get('resnet.v1')!.inferFunction.function) },
        },
      ],
    });
    synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Throttles', Threshold: 1 });
  });
});

describe('security', () => {
  it('locks the bucket down: no public access, TLS only, encrypted, versioned, access-logged', () => {
    const bucket = logicalId(synth.stack.bucket);
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: {
        DestinationBucketName: { Ref: logicalId(synth.stack.accessLogBucket) },
        LogFilePrefix: 'model-bucket/',
      },
    });
    synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    expect(resources(synth.template)[bucket]).toMatchObject({ DeletionPolicy: 'Retain' });
  });

  it('lets infer read only its own model, rejection and async prefixes, write only its capture files and async answers, and invoke only itself', () => {
    const iris = synth.stack.endpoints.get('iris')!;
    const statements = roleStatements(synth.template, logicalId(iris.inferFunction.role));
    const s3 = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')));
    const bucketArn = { 'Fn::GetAtt': [logicalId(synth.stack.bucket), 'Arn'] };
    expect(s3).toEqual([
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Resource: [
          { 'Fn::Join': ['', [bucketArn, '/models/iris/*']] },
          { 'Fn::Join': ['', [bucketArn, '/rejected/iris/*']] },
        ],
      },
      { Action: 's3:PutObject', Effect: 'Allow', Resource: { 'Fn::Join': ['', [bucketArn, '/capture/iris/*']] } },
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Resource: [
          { 'Fn::Join': ['', [bucketArn, '/async/iris/inputs/*']] },
          { 'Fn::Join': ['', [bucketArn, '/async/iris/jobs/*']] },
        ],
      },
      {
        Action: 's3:PutObject',
        Effect: 'Allow',
        Resource: [
          { 'Fn::Join': ['', [bucketArn, '/async/iris/outputs/*']] },
          { 'Fn::Join': ['', [bucketArn, '/async/iris/jobs/*']] },
        ],
      },
      {
        Action: 's3:ListBucket',
        Effect: 'Allow',
        Resource: bucketArn,
        Condition: {
          StringLikeIfExists: {
            's3:prefix': [
              'models/iris/',
              'models/iris/*',
              'rejected/iris/',
              'rejected/iris/*',
              'async/iris/',
              'async/iris/*',
            ],
          },
        },
      },
    ]);
    const lambda = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('lambda:')));
    const fnArn = { 'Fn::GetAtt': [logicalId(iris.inferFunction.function), 'Arn'] };
    expect(lambda).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [fnArn, { 'Fn::Join': ['', [fnArn, ':*']] }] },
      // Async jobs: queued on the async alias; the function is its own on-failure destination.
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [fnArn, { 'Fn::Join': ['', [fnArn, ':async']] }] },
    ]);
    // The on-success destination of async jobs: EventBridge's default bus, nothing else.
    const events = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('events:')));
    expect(events).toHaveLength(1);
    expect(events[0]?.Action).toBe('events:PutEvents');
    expect(JSON.stringify(events[0]?.Resource)).toContain(':event-bus/default');
    const others = statements.filter((s) => ![s.Action].flat().some((a) => /^(s3|lambda|logs|xray|events):/.test(a)));
    expect(others).toEqual([]);
  });

  it('lets register read uploads/, manifests and claims, write models/ (aborting its multipart uploads) and rejected/, and control only read the index', () => {
    const actionsOn = (roleId: string): Record<string, string[]> => {
      const result: Record<string, string[]> = {};
      for (const s of roleStatements(synth.template, roleId)) {
        for (const action of [s.Action].flat().filter((a) => a !== 's3:ListBucket' && a.startsWith('s3:'))) {
          result[action] = [s.Resource]
            .flat()
            .map((r) => JSON.stringify(r).match(/"\/([^"]*)"\]\]\}$/)?.[1] ?? JSON.stringify(r));
        }
      }
      return result;
    };
    expect(actionsOn(logicalId(synth.stack.registerFunction.role))).toEqual({
      's3:GetObject': ['uploads/*', 'models/*/manifest.json', 'models/*/claims/*'],
      's3:PutObject': ['models/*', 'rejected/*'],
      's3:AbortMultipartUpload': ['models/*'],
    });
    expect(actionsOn(logicalId(synth.stack.controlFunction.role))).toEqual({
      's3:GetObject': ['models/*/manifest.json', 'models/*/*/metadata.json', 'rejected/*'],
    });
    const listed = (roleId: string): unknown[] =>
      roleStatements(synth.template, roleId)
        .filter((s) => s.Action === 's3:ListBucket')
        .map((s) => s.Condition);
    expect(listed(logicalId(synth.stack.registerFunction.role))).toEqual([
      {
        StringLikeIfExists: {
          's3:prefix': ['uploads/', 'uploads/*', 'models/', 'models/*'],
        },
      },
    ]);
    expect(listed(logicalId(synth.stack.controlFunction.role))).toEqual([
      { StringLikeIfExists: { 's3:prefix': ['models/', 'models/*', 'rejected/', 'rejected/*'] } },
    ]);
  });

  it('runs the rollout controller every minute, reading metrics and rewriting manifests only', () => {
    const fn = logicalId(synth.stack.rolloutFunction.function);
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fn, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    const statements = roleStatements(synth.template, logicalId(synth.stack.rolloutFunction.role));
    expect(
      statements.filter((s) =>
        [s.Action].flat().some((a) => !a.startsWith('s3:') && !a.startsWith('logs:') && !a.startsWith('xray:')),
      ),
    ).toEqual([expect.objectContaining({ Action: 'cloudwatch:GetMetricData', Resource: '*' })]);
    // Without an alarm topic in this stack, nothing to publish to: rollbacks are logged.
    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'rollout' }) },
    });
    expect(synth.template.toJSON().Resources[fn].Properties.Environment.Variables.ALARM_TOPIC_ARN).toBeUndefined();
  });

  it('deploys exactly the S3 statements that the local runtime enforces (one source of truth)', () => {
    const arn = bucketArn('models');
    const deployed = (role: Parameters<typeof logicalId>[0]) =>
      s3PolicyOf(synth.template, logicalId(role), logicalId(synth.stack.bucket), 'models').filter((s) =>
        s.Action.some((a) => a.startsWith('s3:')),
      );
    expect(deployed(synth.stack.registerFunction.role)).toEqual(bucketStatements(REGISTER_ACCESS, arn));
    expect(deployed(synth.stack.controlFunction.role)).toEqual(bucketStatements(CONTROL_ACCESS, arn));
    expect(deployed(synth.stack.rolloutFunction.role)).toEqual(bucketStatements(ROLLOUT_ACCESS, arn));
    expect(deployed(synth.stack.batchJobs.batchFunction.role)).toEqual(bucketStatements(BATCH_FUNCTION_ACCESS, arn));
    for (const [name, endpoint] of synth.stack.endpoints) {
      expect(deployed(endpoint.inferFunction.role)).toEqual(bucketStatements(inferAccess(name), arn));
    }
  });

  it('uses no managed policy on its own roles and keeps logs for a month', () => {
    for (const role of [
      synth.stack.registerFunction.role,
      synth.stack.controlFunction.role,
      synth.stack.rolloutFunction.role,
      synth.stack.endpoints.get('iris')!.inferFunction.role,
    ]) {
      expect(resources(synth.template)[logicalId(role)]?.Properties?.['ManagedPolicyArns']).toBeUndefined();
    }
    const groups = Object.values(resources(synth.template)).filter((r) => r.Type === 'AWS::Logs::LogGroup');
    // The functions' (the rollout and batch functions' among them) and the batch state machine's.
    expect(groups.length).toBe(9);
    for (const group of groups) expect(group.Properties?.['RetentionInDays']).toBe(30);
  });

  it('has no acknowledged-away cdk-nag error left, and every acknowledgement gives a reason', () => {
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
    const reasons = synth.app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.values(m.data as Record<string, string>));
    expect(reasons.length).toBeGreaterThan(10);
    for (const reason of reasons) expect(reason.length).toBeGreaterThan(30);
  });

  it('has no dependency cycle (the self-invoke grant lives outside the default policy)', () => {
    expect(findCycle(synth.template)).toBeUndefined();
  });
});

describe('seed', () => {
  it('uploads the sample, then the seed, to uploads/<name>/ without pruning, after the notification exists', () => {
    const all = resources(synth.template);
    const deployments = Object.entries(all).filter(([, r]) => r.Type === 'Custom::CDKBucketDeployment');
    expect(deployments).toHaveLength(2);
    for (const [, d] of deployments)
      expect(d.Properties).toMatchObject({ DestinationBucketKeyPrefix: 'uploads/iris/', Prune: false });
    const notification = Object.entries(all).find(([, r]) => r.Type === 'Custom::S3BucketNotifications')![0];
    const iris = synth.stack.endpoints.get('iris')!;
    const customResourceOf = (deployment: IConstruct): string => {
      const resource = deployment.node
        .findAll()
        .find((c) => CfnResource.isCfnResource(c) && c.cfnResourceType === 'Custom::CDKBucketDeployment');
      return logicalId(resource!);
    };
    const seedId = customResourceOf(iris.seedDeployment!);
    const sampleId = customResourceOf(iris.node.findChild('SeedSample'));
    expect(all[seedId]?.DependsOn).toEqual(expect.arrayContaining([notification, sampleId]));
    expect(all[sampleId]?.DependsOn).toEqual(expect.arrayContaining([notification]));
  });
});

describe('bundles', () => {
  const bundleOf = (fnId: string): string => {
    const code = resources(synth.template)[fnId]?.Properties?.['Code'] as { S3Key: string };
    return join(synth.assemblyDir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);
  };

  it('are minified ESM with a require shim and a source map, importing only builtins and the layer', () => {
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    for (const fn of [
      synth.stack.registerFunction,
      synth.stack.controlFunction,
      synth.stack.endpoints.get('iris')!.inferFunction,
    ]) {
      const dir = bundleOf(logicalId(fn.function));
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
      expect(code.startsWith("import { createRequire as __onnxServerlessCreateRequire } from 'node:module';")).toBe(
        true,
      );
      // Minified: long lines (thousands of characters; the newlines left are in strings and license comments), not
      // one statement per line (about 40 characters).
      expect(code.length / code.split('\n').length).toBeGreaterThan(1000);
      const imports = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)"([^"]+)"/g)].map((m) => m[1]!);
      // The Tracer is left out unless the stack enables it; the bundle then only names it in the dynamic import
      // that runs when POWERTOOLS_TRACE_ENABLED is true.
      const allowed: readonly string[] = [...EXTERNAL_MODULES, ...TRACER_MODULES];
      const foreign = imports.filter((i) => !builtins.has(i) && !allowed.includes(i));
      expect(foreign).toEqual([]);
      expect(code).not.toMatch(/\bfrom\s*"@aws-lambda-powertools\/tracer"/);
    }
  });

  it('attach the onnxruntime layer to every function whose bundle imports onnxruntime-node', () => {
    const ours = Object.entries(resources(synth.template)).filter(
      ([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties?.['Runtime'] === 'nodejs24.x',
    );
    for (const [id, fn] of ours) {
      const code = readFileSync(join(bundleOf(id), 'index.mjs'), 'utf8');
      if (!/from\s*"onnxruntime-node"|import\s*\(\s*"onnxruntime-node"\)|require\("onnxruntime-node"\)/.test(code))
        continue;
      const arch = (fn.Properties!['Architectures'] as string[])[0] as 'arm64' | 'x86_64';
      expect(fn.Properties?.['Layers']).toEqual([{ Ref: logicalId(synth.stack.layers.get(arch)!.layerVersion) }]);
    }
  });
});
