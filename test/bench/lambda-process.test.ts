/**
 * The runner of staged Lambda bundles (functions/local/lambda-process.ts) with small bundles written here: it
 * must call the handler as the Lambda runtime does, report what happened in order, and fail loudly.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInLambdaProcess, stagedFunction, type TemplateJson } from '../../tools/lambda-process.js';

const root = mkdtempSync(join(tmpdir(), 'lambda-process-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function bundle(name: string, source: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.mjs'), source);
  return dir;
}

describe('runInLambdaProcess', () => {
  it('imports the bundle once, then calls its handler with each event and a Lambda context, in order', async () => {
    const dir = bundle(
      'echo',
      `let calls = 0;
       const initAt = process.env.AWS_LAMBDA_FUNCTION_NAME;
       console.log('init log line');
       export const handler = async (event, context) => ({ event, calls: ++calls, name: initAt,
         memory: context.memoryLimitInMB, requestId: context.awsRequestId, greeting: process.env.GREETING });`,
    );

    const run = await runInLambdaProcess({
      bundleDir: dir,
      taskDir: join(root, 'task-echo'),
      functionName: 'echo-fn',
      memoryMb: 1024,
      environment: { GREETING: 'hello' },
      events: [{ n: 1 }, { n: 2 }],
      captureStdout: true,
    });

    expect(run.results).toEqual([
      { event: { n: 1 }, calls: 1, name: 'echo-fn', memory: '1024', requestId: 'req-0', greeting: 'hello' },
      { event: { n: 2 }, calls: 2, name: 'echo-fn', memory: '1024', requestId: 'req-1', greeting: 'hello' },
    ]);
    expect(run.stdout).toContain('init log line');
    expect(run.responseMs).toHaveLength(2);
    // Order, not speed: init ends before the first answer, which comes before the second.
    expect(run.initMs).toBeGreaterThan(0);
    expect(run.responseMs[0]).toBeGreaterThanOrEqual(run.initMs);
    expect(run.responseMs[1]).toBeGreaterThanOrEqual(run.responseMs[0] ?? Infinity);
    expect(run.initRssBytes).toBeGreaterThan(0);
    expect(run.peakRssBytes[1]).toBeGreaterThanOrEqual(run.peakRssBytes[0] ?? Infinity);
  });

  it('resolves imports from the layer it mounts', async () => {
    const layer = join(root, 'layer');
    mkdirSync(join(layer, 'nodejs', 'node_modules', 'layer-lib'), { recursive: true });
    writeFileSync(
      join(layer, 'nodejs', 'node_modules', 'layer-lib', 'package.json'),
      JSON.stringify({ name: 'layer-lib', main: 'index.js' }),
    );
    writeFileSync(join(layer, 'nodejs', 'node_modules', 'layer-lib', 'index.js'), 'module.exports = { answer: 42 };');
    const dir = bundle('uses-layer', `import lib from 'layer-lib'; export const handler = async () => lib.answer;`);

    const run = await runInLambdaProcess({
      bundleDir: dir,
      layerDir: layer,
      taskDir: join(root, 'task-layer'),
      functionName: 'f',
      memoryMb: 128,
      environment: {},
      events: [{}],
    });

    expect(run.results).toEqual([42]);
  });

  it('rejects with the process error output when the handler throws', async () => {
    const dir = bundle('throws', `export const handler = async () => { throw new Error('model exploded'); };`);

    await expect(
      runInLambdaProcess({
        bundleDir: dir,
        taskDir: join(root, 'task-throws'),
        functionName: 'f',
        memoryMb: 128,
        environment: {},
        events: [{}],
      }),
    ).rejects.toThrow(/model exploded/);
  });
});

describe('stagedFunction', () => {
  it('finds the bundle and layer assets, memory and environment of a function in a template', () => {
    const template: TemplateJson = {
      Resources: {
        Fn: {
          Type: 'AWS::Lambda::Function',
          Properties: {
            Code: { S3Bucket: 'b', S3Key: 'abc123.zip' },
            MemorySize: 2048,
            Environment: { Variables: { MODEL_NAME: 'iris', MODEL_BUCKET: { Ref: 'Bucket' } } },
            Layers: [{ Ref: 'Layer' }],
          },
        },
        Layer: { Type: 'AWS::Lambda::LayerVersion', Properties: { Content: { S3Bucket: 'b', S3Key: 'def456.zip' } } },
      },
    };

    const fn = stagedFunction(template, '/assembly', 'Fn');

    expect(fn).toEqual({
      bundleDir: '/assembly/asset.abc123',
      layerDirs: ['/assembly/asset.def456'],
      memoryMb: 2048,
      environment: { MODEL_NAME: 'iris', MODEL_BUCKET: { Ref: 'Bucket' } },
    });
    expect(() => stagedFunction(template, '/assembly', 'Missing')).toThrow(/no function Missing/);
  });
});
