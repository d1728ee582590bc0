/**
 * The local IAM evaluator against the rules AWS documents: wildcards in actions and resources, StringLike and
 * IfExists conditions on s3:prefix, explicit Deny over Allow, and loud failure on what it does not understand.
 */
import { describe, expect, it } from 'vitest';
import { bucketArn, bucketStatements, inferAccess, type PolicyStatementJson } from '../../infra/function-grants.js';
import { evaluatePolicy, wildcardMatch } from '../../functions/local/iam-policy.js';

const ARN = bucketArn('models');
const iris = bucketStatements(inferAccess('iris'), ARN);
const effect = (
  statements: readonly PolicyStatementJson[],
  action: string,
  resource: string,
  context?: Record<string, string>,
) => evaluatePolicy(statements, { action, resource, ...(context === undefined ? {} : { context }) }).effect;

describe('wildcardMatch', () => {
  it.each([
    ['models/*', 'models/iris/1/model.onnx', true],
    ['models/*/manifest.json', 'models/iris/manifest.json', true],
    ['models/*/manifest.json', 'models/iris/1/metadata.json', false],
    ['models/iri?/*', 'models/iris/x', true],
    ['models/iri?/*', 'models/iri/x', false],
    ['*', '', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['models/iris/', 'models/iris', false],
  ])('%s against %s is %s', (pattern, value, expected) => {
    expect(wildcardMatch(pattern, value)).toBe(expected);
  });
});

describe('evaluatePolicy', () => {
  it("allows an infer role its own model's objects and rejections, and nothing of another model", () => {
    expect(effect(iris, 's3:GetObject', `${ARN}/models/iris/manifest.json`)).toBe('allow');
    expect(effect(iris, 's3:GetObject', `${ARN}/rejected/iris/2026-x.json`)).toBe('allow');
    expect(effect(iris, 's3:GetObject', `${ARN}/models/iris2/manifest.json`)).toBe('implicit-deny');
    expect(effect(iris, 's3:GetObject', `${ARN}/uploads/iris/x.onnx`)).toBe('implicit-deny');
    expect(effect(iris, 's3:PutObject', `${ARN}/models/iris/manifest.json`)).toBe('implicit-deny');
  });

  it("lets an infer role write its own model's capture files, nothing else of the bucket", () => {
    expect(effect(iris, 's3:PutObject', `${ARN}/capture/iris/1/2026/12/06/04/00-00-000-x.jsonl`)).toBe('allow');
    expect(effect(iris, 's3:PutObject', `${ARN}/capture/iris2/1/x.jsonl`)).toBe('implicit-deny');
    expect(effect(iris, 's3:PutObject', `${ARN}/capture/x.jsonl`)).toBe('implicit-deny');
    expect(effect(iris, 's3:GetObject', `${ARN}/capture/iris/1/x.jsonl`)).toBe('implicit-deny');
    expect(effect(iris, 's3:PutObject', `${ARN}/rejected/iris/x.json`)).toBe('implicit-deny');
  });

  it('matches actions case-insensitively and with wildcards, resources case-sensitively', () => {
    const statements: PolicyStatementJson[] = [{ Effect: 'Allow', Action: ['s3:Get*'], Resource: [`${ARN}/Models/*`] }];
    expect(effect(statements, 'S3:GETOBJECT', `${ARN}/Models/a`)).toBe('allow');
    expect(effect(statements, 's3:GetObject', `${ARN}/models/a`)).toBe('implicit-deny');
  });

  it('applies s3:prefix conditions: StringLikeIfExists passes a listing without prefix, StringLike does not', () => {
    expect(effect(iris, 's3:ListBucket', ARN, { 's3:prefix': 'models/iris/' })).toBe('allow');
    expect(effect(iris, 's3:ListBucket', ARN, { 's3:prefix': 'rejected/iris/' })).toBe('allow');
    expect(effect(iris, 's3:ListBucket', ARN, { 's3:prefix': 'models/' })).toBe('implicit-deny');
    expect(effect(iris, 's3:ListBucket', ARN, { 's3:prefix': 'rejected/iris2/' })).toBe('implicit-deny');
    expect(effect(iris, 's3:ListBucket', ARN)).toBe('allow');
    const strict: PolicyStatementJson[] = [
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: [ARN],
        Condition: { StringLike: { 's3:prefix': ['models/*'] } },
      },
    ];
    expect(effect(strict, 's3:ListBucket', ARN)).toBe('implicit-deny');
    expect(effect(strict, 's3:ListBucket', ARN, { 's3:prefix': 'models/a' })).toBe('allow');
  });

  it('lets an explicit Deny win over any Allow', () => {
    const statements: PolicyStatementJson[] = [
      ...iris,
      { Effect: 'Deny', Action: ['s3:GetObject'], Resource: [`${ARN}/models/iris/*/model.onnx`] },
    ];
    expect(
      evaluatePolicy(statements, { action: 's3:GetObject', resource: `${ARN}/models/iris/1/model.onnx` }),
    ).toMatchObject({
      effect: 'explicit-deny',
      statement: { Effect: 'Deny' },
    });
    expect(effect(statements, 's3:GetObject', `${ARN}/models/iris/manifest.json`)).toBe('allow');
  });

  it('refuses policies it does not understand instead of guessing', () => {
    const notAction = [
      { Effect: 'Allow', NotAction: ['s3:DeleteObject'], Resource: ['*'] },
    ] as unknown as PolicyStatementJson[];
    expect(() => effect(notAction, 's3:GetObject', `${ARN}/x`)).toThrow(/NotAction/);
    const numeric: PolicyStatementJson[] = [
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: [ARN],
        Condition: { NumericLessThan: { 's3:max-keys': ['10'] } },
      },
    ];
    expect(() => effect(numeric, 's3:ListBucket', ARN, { 's3:max-keys': '5' })).toThrow(/NumericLessThan/);
  });
});
