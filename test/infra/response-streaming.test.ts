/**
 * "This front streams" is one setting (`infra/response-streaming.ts`): with `-c streaming=true` every infer route's
 * REST integration streams through InvokeWithResponseStream and every infer function is told to stream; the control
 * routes and the default stack stay buffered; an HTTP API cannot stream and says so.
 */
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { ENV } from '../../functions/core/contract.js';
import { frontStreams, functionUrlInvokeMode } from '../../infra/response-streaming.js';
import { addServiceStack, createServiceApp, stackPropsFromContext } from '../../infra/service-app.js';
import { nagFindings, removeTempDirs, synthesize, tempDir } from './fixture.js';

afterAll(() => removeTempDirs());

const models = [parseCatalogEntry('square', { architecture: 'x86_64', warmer: false })];

/** The REST methods whose integration calls `functionLogicalId`, with their integration properties. */
function integrationsOf(template: ReturnType<typeof synthesize>['template'], functionLogicalId: string) {
  const methods = template.findResources('AWS::ApiGateway::Method');
  return Object.values(methods)
    .map((m) => (m as { Properties: { Integration: Record<string, unknown> } }).Properties.Integration)
    .filter((integration) => JSON.stringify(integration['Uri']).includes(functionLogicalId));
}

describe('-c streaming=true', () => {
  const synth = synthesize({ models, responseStreaming: true }, { bundling: false });
  const idOf = (fn: lambda.IFunction) =>
    synth.stack.resolve(synth.stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)) as string;

  it('streams every infer route through InvokeWithResponseStream, and no control route', () => {
    const square = integrationsOf(synth.template, idOf(synth.stack.endpoints.get('square')!.inferFunction.function));
    const shared = integrationsOf(synth.template, idOf(synth.stack.sharedEndpoint.inferFunction.function));
    const control = integrationsOf(synth.template, idOf(synth.stack.controlFunction.function));

    // Every model route the fronts serve (the protocol's, the OpenAPI document's, the async job status).
    expect(square).toHaveLength(11);
    expect(shared).toHaveLength(11);
    for (const integration of [...square, ...shared]) {
      expect(integration['ResponseTransferMode']).toBe('STREAM');
      expect(JSON.stringify(integration['Uri'])).toContain('/response-streaming-invocations');
    }
    expect(control.length).toBeGreaterThan(0);
    for (const integration of control) {
      expect(integration['ResponseTransferMode']).toBeUndefined();
      expect(JSON.stringify(integration['Uri'])).toContain('2015-03-31/functions/');
    }
  });

  it('tells each infer function, and only those, to stream', () => {
    synth.template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { Environment: { Variables: Match.objectLike({ [ENV.responseStreaming]: 'true' }) } },
      2,
    );
    expect(nagFindings(synth.app).filter((f) => f.startsWith('error'))).toEqual([]);
  });
});

describe('the default stack', () => {
  it('buffers: no streaming integration and no RESPONSE_STREAMING', () => {
    const synth = synthesize({ models }, { bundling: false });
    const methods = Object.values(synth.template.findResources('AWS::ApiGateway::Method'));

    expect(methods.length).toBeGreaterThan(0);
    expect(JSON.stringify(methods)).not.toContain('response-streaming-invocations');
    // Not even BUFFERED spelled out: a stack without streaming keeps the template it had.
    expect(JSON.stringify(methods)).not.toContain('ResponseTransferMode');
    expect(JSON.stringify(synth.template.toJSON())).not.toContain(ENV.responseStreaming);
  });
});

describe('which front streams', () => {
  it('function URLs unless told not to, REST only when asked, HTTP APIs never', () => {
    expect(frontStreams('url')).toBe(true);
    expect(frontStreams('url', false)).toBe(false);
    expect(functionUrlInvokeMode(frontStreams('url'))).toBe(lambda.InvokeMode.RESPONSE_STREAM);
    expect(frontStreams('rest')).toBe(false);
    expect(frontStreams('rest', true)).toBe(true);
    expect(frontStreams('http')).toBe(false);
    expect(() => frontStreams('http', true)).toThrow(/HTTP APIs cannot stream answers; use -c api=url or -c api=rest/);
  });

  it('reads -c streaming and refuses a value it cannot use, naming the option', () => {
    const app = (streaming: string) =>
      createServiceApp({ outdir: tempDir('streaming-out'), context: { 'aws:cdk:bundling-stacks': [], streaming } });

    expect(stackPropsFromContext(app('true'))).toMatchObject({ responseStreaming: true });
    expect(stackPropsFromContext(app('false'))).toMatchObject({ responseStreaming: false });
    expect(() => addServiceStack(app('yes'))).toThrow('-c streaming=yes: use true or false');
  });
});
