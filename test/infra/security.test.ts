/**
 * Security of the synthesized template with default options, stated as the properties a reviewer checks: no
 * wildcard resource on the infer roles, an API key required by default, buckets that cannot be made public and
 * refuse plain HTTP. Then per-model limits end to end: from the catalog, through the function's environment in the
 * template, into the handler that enforces them. One synthesis for the file, without bundling (template only).
 */
import { Stack, type CfnElement } from 'aws-cdk-lib';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { readConfig } from '../../functions/wiring/config.js';
import { createRegisterHandler } from '../../functions/transport/register-handler.js';
import { createInferHandler } from '../../functions/transport/http-handlers.js';
import { createObservability } from '../../functions/wiring/observability.js';
import { createRuntime } from '../../functions/wiring/runtime.js';
import { restApiEvent, s3Event } from '../../tools/lambda-events.js';
import { removeTempDirs, resources, roleStatements, synthesize, writeCatalog, type Synthesized } from './fixture.js';

afterAll(removeTempDirs);

const TIGHT_LIMITS = { maxElements: 4, maxIdLength: 4 };
let synth: Synthesized;

beforeAll(() => {
  const modelsDir = writeCatalog({ tight: { limits: TIGHT_LIMITS }, open: {} });
  synth = synthesize({ modelsDir }, { bundling: false });
}, 120_000);

const logicalId = (element: CfnElement): string =>
  Stack.of(element).resolve(Stack.of(element).getLogicalId(element)) as string;
const all = () => resources(synth.template);
const ofType = (type: string) => Object.entries(all()).filter(([, r]) => r.Type === type);
const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** IAM offers X-Ray's trace upload on "*" only: the one wildcard resource a traced function needs. */
const XRAY_UPLOAD = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'];

describe('infer roles', () => {
  it.each(['tight', 'open'])(
    '%s: no wildcard resource or action; S3 reads only its own prefixes, writes only capture/<name>/ and async/<name>/ answers and jobs',
    (name) => {
      const endpoint = synth.stack.endpoints.get(name)!;
      const statements = roleStatements(
        synth.template,
        logicalId(endpoint.inferFunction.role.node.defaultChild as CfnElement),
      );

      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        const actions = list(statement.Action);
        for (const action of actions) expect(action, 'wildcard action').not.toMatch(/\*/);
        for (const resource of list(statement.Resource)) {
          if (resource === '*') {
            expect([...actions].sort(), 'the only actions allowed on "*"').toEqual([...XRAY_UPLOAD].sort());
            continue;
          }
          const text = JSON.stringify(resource);
          // Object ARNs: exactly this model's prefix; function ARNs: this function's versions and aliases.
          const own = name.replace('.', '\\.');
          if (actions.includes('s3:GetObject')) {
            expect(text).toMatch(new RegExp(`"/((models|rejected)/${own}|async/${own}/(inputs|jobs))/\\*"\\]\\]\\}$`));
          } else if (text.includes('/models/')) {
            expect(text).toMatch(new RegExp(`"/(models|rejected)/${own}/\\*"\\]\\]\\}$`));
          }
          if (text.endsWith(':*"]]}')) expect(actions).toEqual(['lambda:InvokeFunction']);
        }
        if (actions.includes('s3:ListBucket')) {
          expect(statement.Condition).toEqual({
            StringLikeIfExists: {
              's3:prefix': [
                `models/${name}/`,
                `models/${name}/*`,
                `rejected/${name}/`,
                `rejected/${name}/*`,
                `async/${name}/`,
                `async/${name}/*`,
              ],
            },
          });
        }
        const writes = actions.filter((a) => /^s3:(Put|Delete)/.test(a));
        if (writes.length > 0) {
          expect(writes, 'infer writes objects, never deletes').toEqual(['s3:PutObject']);
          // Data capture files and async answers and job records (docs/async.md) of this model, nothing else.
          const own = name.replace('.', '\\.');
          for (const resource of list(statement.Resource)) {
            expect(JSON.stringify(resource)).toMatch(
              new RegExp(`"/(capture/${own}|async/${own}/(outputs|jobs))/\\*"\\]\\]\\}$`),
            );
          }
        }
      }
      const written = statements
        .filter((s) => list(s.Action).some((a) => /^s3:(Put|Delete)/.test(a)))
        .flatMap((s) => list(s.Resource).map((resource) => JSON.stringify(resource)));
      expect(
        written.some((text) => text.includes('/capture/')),
        'writes its capture files',
      ).toBe(true);
      expect(
        written.some((text) => text.includes('/outputs/')),
        'writes its async answers',
      ).toBe(true);
    },
  );
});

describe('API', () => {
  it('requires an API key on every method by default, with a key bound to a throttled usage plan', () => {
    const methods = ofType('AWS::ApiGateway::Method');

    // control 8 (incl. the console and Triton's load/unload), 11 per catalog model and 11 for the shared {model}
    // routes (the protocol's, the OpenAPI document's and the async job status)
    expect(methods.length).toBe(8 + 11 * 3);
    for (const [id, method] of methods) expect(method.Properties?.['ApiKeyRequired'], id).toBe(true);
    expect(ofType('AWS::ApiGateway::ApiKey')).toHaveLength(1);
    const [[, plan] = ['', undefined]] = ofType('AWS::ApiGateway::UsagePlan');
    expect(plan?.Properties).toMatchObject({
      Throttle: { RateLimit: expect.any(Number), BurstLimit: expect.any(Number) },
    });
    expect(plan?.Properties?.['ApiStages']).toHaveLength(1);
    expect(ofType('AWS::ApiGateway::UsagePlanKey')).toHaveLength(1);
  });
});

describe('buckets', () => {
  it('cannot be made public: public access blocked, ACLs disabled, no policy allowing anyone', () => {
    const buckets = ofType('AWS::S3::Bucket');

    expect(buckets.length).toBe(2);
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties?.['PublicAccessBlockConfiguration'], id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties?.['AccessControl'], id).toBeUndefined();
      expect(bucket.Properties?.['OwnershipControls'], id).toEqual({
        Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
      });
    }
    for (const [id, policy] of ofType('AWS::S3::BucketPolicy')) {
      const statements = (
        policy.Properties!['PolicyDocument'] as { Statement: { Effect: string; Principal: unknown }[] }
      ).Statement;
      const open = statements.filter((s) => s.Effect === 'Allow' && JSON.stringify(s.Principal).includes('"*"'));
      expect(open, id).toEqual([]);
    }
  });

  it('refuse every request not made over TLS, on the bucket and on its objects', () => {
    const policies = ofType('AWS::S3::BucketPolicy');

    for (const [bucketId] of ofType('AWS::S3::Bucket')) {
      const policy = policies.find(
        ([, p]) => JSON.stringify(p.Properties?.['Bucket']) === JSON.stringify({ Ref: bucketId }),
      );
      expect(policy, `policy of ${bucketId}`).toBeDefined();
      const statements = (policy![1].Properties!['PolicyDocument'] as { Statement: Record<string, unknown>[] })
        .Statement;
      const tls = statements.find(
        (s) => JSON.stringify(s['Condition']) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
      );
      expect(tls, bucketId).toMatchObject({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' } });
      expect(tls!['Resource']).toEqual([
        { 'Fn::GetAtt': [bucketId, 'Arn'] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/*']] },
      ]);
    }
  });
});

describe('per-model limits, catalog to handler', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'security-limits-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** The environment the template gives `infer-<name>`, with the bucket swapped for a local folder. */
  function environmentOf(name: string): Record<string, string> {
    const fn =
      all()[logicalId(synth.stack.endpoints.get(name)!.inferFunction.function.node.defaultChild as CfnElement)];
    const variables = (fn!.Properties!['Environment'] as { Variables: Record<string, unknown> }).Variables;
    const plain = Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
    return { ...Object.fromEntries(plain), MODEL_BUCKET: '', MODEL_DIR: dir };
  }

  it("puts each model's limits into its own function and enforces them there, not in the other model's", async () => {
    const observability = createObservability('security', false);
    observability.logger.setLogLevel('SILENT');
    const handlers = new Map<string, ReturnType<typeof createInferHandler>>();
    for (const name of ['tight', 'open']) {
      const config = readConfig(environmentOf(name));
      const runtime = createRuntime(config);
      await runtime.store.put(`uploads/${name}/linear.onnx`, new Uint8Array(await readFile('models/linear.onnx')));
      const { outcomes } = await createRegisterHandler(
        runtime,
        observability,
      )(s3Event([`uploads/${name}/linear.onnx`]));
      expect(outcomes.map((o) => o.kind)).toEqual(['registered']);
      handlers.set(name, createInferHandler(runtime, observability, { model: name }));
    }
    const call = async (name: string, body: unknown) => {
      const event = restApiEvent({
        path: `/v2/models/${name}/infer`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        requestId: 'r',
      });
      return (await handlers.get(name)!(event, { awsRequestId: 'r' })) as APIGatewayProxyResult;
    };
    const request = (id: string, rows: number) => ({
      id,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, i) => i) }],
    });

    const tightTwo = await call('tight', request('abcd', 2));
    const tightLongId = await call('tight', request('abcde', 1));
    const tightOne = await call('tight', request('abcd', 1));
    const openTwo = await call('open', request('abcde', 2));

    expect(JSON.parse(environmentOf('tight').MODEL_LIMITS!)).toEqual({ ...DEFAULT_LIMITS, ...TIGHT_LIMITS });
    expect(JSON.parse(environmentOf('open').MODEL_LIMITS!)).toEqual(DEFAULT_LIMITS);
    expect(tightTwo.statusCode).toBe(413);
    expect(JSON.parse(tightTwo.body)).toEqual({
      error: expect.stringMatching(/at most 4 elements .*limits\.maxElements/),
    });
    expect(tightLongId.statusCode).toBe(400);
    expect(JSON.parse(tightLongId.body)).toEqual({ error: expect.stringMatching(/limits\.maxIdLength/) });
    expect(tightOne.statusCode, tightOne.body).toBe(200);
    expect(openTwo.statusCode, openTwo.body).toBe(200);
    expect(JSON.parse(openTwo.body)).toMatchObject({ id: 'abcde', model_name: 'open' });
  });
});
