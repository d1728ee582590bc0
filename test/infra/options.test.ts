/**
 * Stack and construct options: IAM authorization, execution logging off, a destroyable bucket, one architecture
 * only; misuse of the stack and of ModelEndpoint (toThrow with actionable messages), and the warnings the
 * construct gives for legal but doubtful catalog entries. Bundling is skipped: these are template-only checks.
 */
import { App, type CfnElement, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry, type CatalogEntry } from '../../functions/core/catalog.js';
import { loadCatalog } from '../../infra/catalog-loader.js';
import { ModelEndpoint, type ModelEndpointProps } from '../../infra/model-endpoint.js';
import { OnnxServerlessStack } from '../../infra/onnx-serverless-stack.js';
import { OnnxruntimeLayer } from '../../infra/onnxruntime-layer.js';
import {
  nagFindings,
  removeTempDirs,
  resources,
  roleStatements,
  synthesize,
  tempDir,
  writeCatalog,
  type Synthesized,
} from './fixture.js';

afterAll(removeTempDirs);

const model = (name: string, fields: Record<string, unknown> = {}): CatalogEntry => parseCatalogEntry(name, fields);

describe('authorization "iam", execution logging off, destroyable bucket, x86_64 only', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize(
      {
        models: [model('a', { architecture: 'x86_64' }), model('b', { architecture: 'x86_64', warmer: false })],
        authorization: 'iam',
        executionLogging: false,
        bucketRemovalPolicy: RemovalPolicy.DESTROY,
        sharedArchitecture: 'x86_64',
        throttle: { rateLimit: 5, burstLimit: 10 },
        stageName: 'v1',
      },
      { bundling: false },
    );
  }, 120_000);

  it('signs every method with IAM and creates no API key or usage plan', () => {
    const methods = Object.values(resources(synth.template)).filter((r) => r.Type === 'AWS::ApiGateway::Method');
    // control 8 (incl. the console and Triton's load/unload), 11 per catalog model, 11 for the shared {model} routes
    expect(methods).toHaveLength(8 + 11 * 3);
    for (const method of methods) {
      expect(method.Properties?.['AuthorizationType']).toBe('AWS_IAM');
      expect(method.Properties?.['ApiKeyRequired']).toBe(false);
    }
    synth.template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    synth.template.resourceCountIs('AWS::ApiGateway::UsagePlan', 0);
    expect(synth.stack.apiKey).toBeUndefined();
    synth.template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'MISSING_AUTHENTICATION_TOKEN',
      StatusCode: Match.absent(),
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('SigV4') },
    });
  });

  it('still throttles every method of the stage', () => {
    synth.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10, LoggingLevel: 'OFF' })],
    });
    synth.template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  it('builds only the x86_64 layer, and empties the bucket on deletion', () => {
    expect([...synth.stack.layers.keys()]).toEqual(['x86_64']);
    synth.template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    synth.template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ VersioningConfiguration: { Status: 'Enabled' } }),
    });
    synth.template.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    // The warmer of a, and the rollout controller's schedule.
    synth.template.resourceCountIs('AWS::Events::Rule', 2);
  });

  it('passes the AWS Solutions checks too', () => {
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });
});

describe('misuse', () => {
  let stack: Stack;
  let base: Omit<ModelEndpointProps, 'model'>;
  let x86: OnnxruntimeLayer;
  let seedDir: string;
  let counter = 0;
  const endpoint = (entry: CatalogEntry, extra: Partial<ModelEndpointProps> = {}): ModelEndpoint =>
    new ModelEndpoint(stack, `Case${counter++}`, { ...base, model: entry, ...extra });

  beforeAll(() => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    stack = new Stack(app, 'Misuse');
    const api = new apigw.RestApi(stack, 'Api');
    const layers = tempDir('layers');
    base = {
      modelsResource: api.root.addResource('v2').addResource('models'),
      bucket: new s3.Bucket(stack, 'Bucket'),
      layer: new OnnxruntimeLayer(stack, 'Arm', { architecture: 'arm64', buildDir: join(layers, 'arm64') }),
    };
    x86 = new OnnxruntimeLayer(stack, 'X86', { architecture: 'x86_64', buildDir: join(layers, 'x86_64') });
    seedDir = writeCatalog({}, { 'good.onnx': 'x', 'model.bin': 'x' });
  }, 60_000);

  it('refuses a layer of the wrong architecture', () => {
    expect(() => endpoint(model('m', { architecture: 'x86_64' }))).toThrow(
      /runs on x86_64 but the onnxruntime layer given is arm64; pass the x86_64 layer/,
    );
    expect(() => endpoint(model('m2', { architecture: 'x86_64' }), { layer: x86 })).not.toThrow();
  });

  it('sizes /tmp from the largest model the entry declares, and refuses one that cannot fit', () => {
    // Act
    const sized = endpoint(model('big-model', { maxModelMb: 2000 }));
    const small = endpoint(model('small-model'));

    // Assess: the model plus 16 MB of headroom; at least Lambda's 512 MB.
    const storage = (e: ModelEndpoint) =>
      (
        Stack.of(e).resolve(
          (e.inferFunction.function.node.defaultChild as { ephemeralStorage?: unknown }).ephemeralStorage,
        ) as { size?: number } | undefined
      )?.size;
    expect(storage(sized)).toBe(2016);
    expect(storage(small)).toBe(512);
    expect(() => endpoint(model('huge-model', { maxModelMb: 10230 }))).toThrow(
      /a 10230 MB model needs 10246 MB of \/tmp to load, more than Lambda's 10240 MB of ephemeral storage; lower maxModelMb/,
    );
  });

  it('re-checks hand-built entries against the catalog schema', () => {
    expect(() => endpoint({ ...model('m'), memoryMb: 64 })).toThrow(/models\/m\.json is invalid: memoryMb: .*128/);
    expect(() => endpoint({ ...model('m'), name: '../etc' })).toThrow(/not a valid model name/);
  });

  it('explains bad warmer schedules before EventBridge does', () => {
    expect(() => endpoint(model('m', { warmer: { schedule: 'rate(1 minutes)' } }))).toThrow(
      /EventBridge wants "1 minute"/,
    );
    expect(() => endpoint(model('m', { warmer: { schedule: 'rate(5 minute)' } }))).toThrow(
      /EventBridge wants "5 minutes"/,
    );
    expect(() => endpoint(model('m', { warmer: { schedule: 'every 5 minutes' } }))).toThrow(
      /neither rate\(\.\.\.\) nor a 6-field cron/,
    );
    expect(() => endpoint(model('m', { warmer: { schedule: 'cron(0/5 * * * *)' } }))).toThrow(/6-field cron/);
    expect(() => endpoint(model('ok-cron', { warmer: { schedule: 'cron(0/5 * * * ? *)' } }))).not.toThrow();
  });

  it('refuses seeds that are missing or would never trigger a registration', () => {
    expect(() => endpoint(model('m', { seed: 'absent.onnx' }), { modelsDir: seedDir })).toThrow(
      /seed "absent.onnx" not found/,
    );
    expect(() => endpoint(model('m', { seed: 'model.bin' }), { modelsDir: seedDir })).toThrow(/must end in \.onnx/);
    expect(() => endpoint(model('seeded', { seed: 'good.onnx' }), { modelsDir: seedDir })).not.toThrow();
  });

  it('refuses alarm and cache settings that cannot work', () => {
    expect(() => endpoint(model('m'), { latencyAlarmThreshold: Duration.seconds(30) })).toThrow(/could never fire/);
    expect(() => endpoint(model('m'), { manifestTtlSeconds: 0 })).toThrow(
      /manifestTtlSeconds must be an integer from 1 to 3600/,
    );
    expect(() => endpoint(model('m'), { errorsAlarmThreshold: 0.5 })).toThrow(
      /errorsAlarmThreshold must be a positive integer/,
    );
  });

  it('warns about legal but doubtful entries', () => {
    endpoint(model('slow', { timeoutSeconds: 60, provisionedConcurrency: 1, warmer: { concurrency: 3 } }));
    const annotations = Annotations.fromStack(stack);
    const path = `/Misuse/Case${counter - 1}`;
    annotations.hasWarning(path, Match.stringLikeRegexp("timeoutSeconds 60 exceeds the API Gateway REST API's 29 s"));
    annotations.hasWarning(path, Match.stringLikeRegexp('set "preload": true'));
    // The warmer's fan-out invokes the ARN it came in through (the live alias), so that needs no warning.
    annotations.hasNoWarning(path, Match.stringLikeRegexp('fan-out'));
  });

  it('validates the stack props', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const props = { models: [], layerBuildDir: tempDir('layers') };
    expect(() => new OnnxServerlessStack(app, 'A', { ...props, authorization: 'oauth' as 'iam' })).toThrow(
      /authorization "oauth" is not known: use api-key, iam, none with api=rest/,
    );
    expect(() => new OnnxServerlessStack(app, 'B', { ...props, throttle: { rateLimit: 100, burstLimit: 10 } })).toThrow(
      /burstLimit \(10\) must be at least rateLimit \(100\)/,
    );
    expect(() => new OnnxServerlessStack(app, 'C', { ...props, models: [model('x'), model('x')] })).toThrow(
      /model "x" is declared twice/,
    );
    expect(() => new OnnxServerlessStack(app, 'D', { ...props, stageName: 'my-stage' })).toThrow(
      /stageName "my-stage"/,
    );
    expect(() => new OnnxServerlessStack(app, 'E', { ...props, registerMemoryMb: 64 })).toThrow(
      /registerMemoryMb must be an integer from 128 to 10240/,
    );
  });
});

describe('catalog loading', () => {
  it('reads <name>.json entries with defaults, skips <file>.onnx.json samples, and names broken files', () => {
    const dir = writeCatalog({ 'b.v2': { memoryMb: 1024 }, a: {} }, { 'a.onnx.json': '{"inputs": []}' });
    const entries = loadCatalog(dir);
    expect(entries.map((e) => [e.name, e.memoryMb, e.architecture])).toEqual([
      ['a', 2048, 'arm64'],
      ['b.v2', 1024, 'arm64'],
    ]);
    writeFileSync(join(dir, 'broken.json'), '{ nope');
    expect(() => loadCatalog(dir)).toThrow(/models\/broken\.json is not valid JSON/);
    expect(loadCatalog(join(dir, 'absent'))).toEqual([]);
  });
});

describe('rollout policies in the catalog', () => {
  it('refuses a bad policy at synth, naming the file and what to change', () => {
    expect(() => parseCatalogEntry('m', { rollout: { strategy: 'canary', percent: 80 } })).toThrow(
      /models\/m\.json is invalid: rollout: rollout\.percent: Number must be less than or equal to 50/,
    );
    expect(() => parseCatalogEntry('m', { rollout: { strategy: 'gradual' } })).toThrow(/unknown strategy "gradual"/);
    expect(() => parseCatalogEntry('m', { rollout: { strategy: 'linear', minLabelAgreement: 0.9 } })).toThrow(
      /minLabelAgreement cannot be evaluated for strategy "linear"/,
    );
  });

  it("hands the catalog's policies to register as CATALOG_ROLLOUT, defaults applied", () => {
    const synth = synthesize(
      { models: [model('a', { rollout: { strategy: 'canary', percent: 20 } }), model('b')] },
      { bundling: false, id: 'Rollouts' },
    );
    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'register',
          CATALOG_ROLLOUT: JSON.stringify({
            a: { strategy: 'canary', percent: 20, bakingSeconds: 300, maxErrorRate: 0.05, minRequests: 10 },
          }),
        }),
      },
    });
  });
});

describe('operations', () => {
  it('wires every alarm to an SNS topic with the alarm e-mail, and parks failed registrations in a queue', () => {
    const synth = synthesize(
      {
        models: [model('a', { provisionedConcurrency: 1, preload: true, warmer: { concurrency: 2 } })],
        alarmEmail: 'ops@example.com',
      },
      { bundling: false, id: 'Ops' },
    );
    const all = resources(synth.template);
    const topicId = Object.entries(all).find(([id, r]) => r.Type === 'AWS::SNS::Topic' && id.startsWith('Alarms'))![0];
    synth.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: topicId },
    });
    const alarms = Object.values(all).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    // 3 of the model; errors of register, control, rollout, the shared infer and the batch function; failed registrations.
    expect(alarms.length).toBe(3 + 6);
    for (const alarm of alarms) expect(alarm.Properties?.['AlarmActions']).toEqual([{ Ref: topicId }]);
    // The rollout controller publishes its rollbacks to the same topic, and may publish nowhere else.
    const rolloutId = synth.stack.resolve(
      synth.stack.getLogicalId(synth.stack.rolloutFunction.function.node.defaultChild as CfnElement),
    ) as string;
    expect(all[rolloutId]?.Properties?.['Environment']).toMatchObject({
      Variables: { ALARM_TOPIC_ARN: { Ref: topicId } },
    });
    const rolloutRoleId = synth.stack.resolve(
      synth.stack.getLogicalId(synth.stack.rolloutFunction.role.node.defaultChild as CfnElement),
    ) as string;
    expect(
      roleStatements(synth.template, rolloutRoleId).filter((st) => [st.Action].flat().includes('sns:Publish')),
    ).toEqual([expect.objectContaining({ Action: 'sns:Publish', Resource: { Ref: topicId } })]);

    const queueId = Object.entries(all).find(([, r]) => r.Type === 'AWS::SQS::Queue')![0];
    synth.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^RegisterFunction') },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
    });
    expect(synth.template.findOutputs('FailedRegistrationsQueue')).not.toEqual({});
    // The warmer targets the live alias, which serves the traffic.
    const aliasId = Object.entries(all).find(
      ([, r]) => r.Type === 'AWS::Lambda::Alias' && r.Properties?.['Name'] === 'live',
    )![0];
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ Arn: { Ref: aliasId } })],
    });
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });

  it('uses an existing topic by ARN, and refuses an address or ARN that cannot work', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:pager';
    const synth = synthesize({ models: [], alarmTopicArn: arn }, { bundling: false, id: 'OpsArn' });
    // No alarm topic of its own: the only topic is the batch jobs' (finished job records, not alarms).
    expect(
      Object.keys(resources(synth.template)).filter((id) => resources(synth.template)[id]?.Type === 'AWS::SNS::Topic'),
    ).toEqual([expect.stringMatching(/^BatchJobsTopic/)]);
    synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: [arn] });
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const props = { models: [], layerBuildDir: tempDir('layers') };
    expect(() => new OnnxServerlessStack(app, 'M', { ...props, alarmEmail: 'ops' })).toThrow(
      /alarmEmail "ops" is not an e-mail address/,
    );
    expect(() => new OnnxServerlessStack(app, 'N', { ...props, alarmTopicArn: 'pager' })).toThrow(
      /not an SNS topic ARN/,
    );
    expect(() => new OnnxServerlessStack(app, 'O', { ...props, alarmEmail: 'a@b.co', alarmTopicArn: arn })).toThrow(
      /exactly one of email/,
    );
  });
});

const SUBNET_A = 'subnet-0123456789abcdef0';
const SUBNET_B = 'subnet-89abcdef';
const GROUP = 'sg-0123456789abcdef0';

describe('managedInstances', () => {
  it('"managedInstances": true alone synthesizes a capacity provider in a VPC made for it, with the function on it', () => {
    const synth = synthesize(
      { models: [model('steady', { managedInstances: true, warmer: false }), model('plain')] },
      { bundling: false, id: 'Managed' },
    );
    synth.template.resourceCountIs('AWS::Lambda::CapacityProvider', 1);
    synth.template.resourceCountIs('AWS::EC2::VPC', 1);
    synth.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    const providerId = Object.entries(resources(synth.template)).find(
      ([, r]) => r.Type === 'AWS::Lambda::CapacityProvider',
    )![0];
    const steady = resources(synth.template)[
      synth.stack.resolve(
        synth.stack.getLogicalId(
          synth.stack.endpoints.get('steady')!.inferFunction.function.node.defaultChild as never,
        ),
      ) as string
    ];
    expect(JSON.stringify(steady?.Properties?.['CapacityProviderConfig'])).toContain(providerId);
    expect(JSON.stringify(steady?.Properties?.['CapacityProviderConfig'])).toContain(
      '"PerExecutionEnvironmentMaxConcurrency":10',
    );
    const plain = resources(synth.template)[
      synth.stack.resolve(
        synth.stack.getLogicalId(synth.stack.endpoints.get('plain')!.inferFunction.function.node.defaultChild as never),
      ) as string
    ];
    expect(plain?.Properties?.['CapacityProviderConfig']).toBeUndefined();
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });

  it('uses given subnets and security groups, and refuses managedInstances with provisioned concurrency', () => {
    const synth = synthesize(
      {
        models: [model('m', { memoryMb: 4096, managedInstances: { maxConcurrency: 64, memoryGiBPerVCpu: 4 } })],
        managedInstancesSubnetIds: [SUBNET_A, SUBNET_B],
        managedInstancesSecurityGroupIds: [GROUP],
      },
      { bundling: false, id: 'ManagedGiven' },
    );
    synth.template.resourceCountIs('AWS::EC2::VPC', 0);
    expect(JSON.stringify(synth.template.findResources('AWS::Lambda::CapacityProvider'))).toMatch(
      new RegExp(`${SUBNET_A}.*${SUBNET_B}`),
    );
    expect(() => parseCatalogEntry('x', { managedInstances: { maxConcurrency: 65 } })).toThrow(/managedInstances/);
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    expect(
      () =>
        new OnnxServerlessStack(app, 'Both', {
          models: [model('b', { managedInstances: true, provisionedConcurrency: 1 })],
          layerBuildDir: tempDir('layers'),
        }),
    ).toThrow(/managedInstances or provisionedConcurrency, not both/);
  });

  it('refuses what Lambda would refuse at deploy: too little memory, an empty scaling range, bad network ids', () => {
    expect(() => parseCatalogEntry('x', { managedInstances: true, memoryMb: 1024 })).toThrow(
      /models\/x\.json is invalid: memoryMb: 1024 MB is too little for Lambda Managed Instances/,
    );
    expect(() => parseCatalogEntry('x', { managedInstances: { memoryGiBPerVCpu: 4 }, memoryMb: 2048 })).toThrow(
      /set memoryMb to 4096 or more/,
    );
    expect(parseCatalogEntry('x', { managedInstances: { memoryGiBPerVCpu: 4 }, memoryMb: 4096 }).memoryMb).toBe(4096);
    expect(() =>
      parseCatalogEntry('x', { managedInstances: { minExecutionEnvironments: 5, maxExecutionEnvironments: 2 } }),
    ).toThrow(/managedInstances\.maxExecutionEnvironments: 2 is below minExecutionEnvironments \(5\)/);
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const props = { models: [model('m', { managedInstances: true })], layerBuildDir: tempDir('layers') };
    expect(
      () =>
        new OnnxServerlessStack(app, 'BadSubnet', {
          ...props,
          managedInstancesSubnetIds: ['subnet-1'],
          managedInstancesSecurityGroupIds: [GROUP],
        }),
    ).toThrow(/managedInstancesSubnetIds \(-c subnetIds\): "subnet-1" is not an id of that kind/);
    expect(
      () =>
        new OnnxServerlessStack(app, 'TooManyGroups', {
          ...props,
          managedInstancesSubnetIds: [SUBNET_A],
          managedInstancesSecurityGroupIds: Array.from({ length: 6 }, (_, i) => `sg-0000000${i}`),
        }),
    ).toThrow(/managedInstancesSecurityGroupIds \(-c securityGroupIds\): a capacity provider takes at most 5, got 6/);
  });
});

describe('runtime', () => {
  it('is nodejs24.x by default, nodejs22.x on request for every function, and nothing else', () => {
    const on22 = synthesize({ models: [model('a')], runtime: 'nodejs22.x' }, { bundling: false, id: 'Node22' });
    const ours = Object.values(resources(on22.template)).filter(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        (r.Properties?.['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables?.[
          'POWERTOOLS_SERVICE_NAME'
        ] !== undefined,
    );
    // Infer of a, the shared infer, register, control, rollout and batch.
    expect(ours.map((r) => r.Properties?.['Runtime'])).toEqual(Array(6).fill('nodejs22.x'));
    on22.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleRuntimes: ['nodejs24.x', 'nodejs22.x'],
    });
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    expect(
      () =>
        new OnnxServerlessStack(app, 'Old', {
          models: [],
          layerBuildDir: tempDir('layers'),
          runtime: 'nodejs20.x' as 'nodejs22.x',
        }),
    ).toThrow(/runtime "nodejs20.x" is not supported: use nodejs24.x or nodejs22.x/);
  });
});

describe('powertoolsTracer and sourceMapStackTraces', () => {
  it('are off by default and, when on, reach every function', () => {
    const off = synthesize({ models: [model('a')] }, { bundling: false, id: 'TracingOff' });
    const on = synthesize(
      { models: [model('a')], powertoolsTracer: true, sourceMapStackTraces: true },
      { bundling: false, id: 'TracingOn' },
    );

    // The service's own functions: those with a Powertools service name (CDK's provider functions have none).
    const environments = (synth: Synthesized) =>
      Object.values(resources(synth.template))
        .filter((r) => r.Type === 'AWS::Lambda::Function')
        .map((r) => (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {})
        .filter((variables) => variables.POWERTOOLS_SERVICE_NAME !== undefined);
    expect(environments(off)).toHaveLength(6);
    for (const variables of environments(off)) {
      expect(variables.POWERTOOLS_TRACE_ENABLED).toBe('false');
      expect(variables.NODE_OPTIONS).toBeUndefined();
    }
    expect(environments(on)).toHaveLength(6);
    for (const variables of environments(on)) {
      expect(variables).toMatchObject({ POWERTOOLS_TRACE_ENABLED: 'true', NODE_OPTIONS: '--enable-source-maps' });
    }
  });
});
