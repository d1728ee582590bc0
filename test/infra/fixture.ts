/**
 * Shared helpers of the infrastructure tests: a tiny real ONNX model, a catalog written to a temporary folder,
 * one synthesized app per test file, and readers for the synthesized template (routes, role policies, references).
 */
import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder } from '../../tools/onnx/index.js';
import type { PolicyStatementJson } from '../../infra/function-grants.js';
import { loadCatalog } from '../../infra/catalog-loader.js';
import { OnnxServerlessStack, type OnnxServerlessStackProps } from '../../infra/onnx-serverless-stack.js';
import { createServiceApp } from '../../infra/service-app.js';

/**
 * `y = x * x` over a float tensor of any length: the smallest model that proves a session really runs. Another
 * `graphName` gives other bytes (another version on upload) for the same computation.
 */
export function squareModel(graphName = 'square'): Uint8Array {
  return new ModelBuilder({ graphName })
    .input('x', 'FP32', ['n'])
    .node('Mul', ['x', 'x'], ['y'])
    .output('y', 'FP32', ['n'])
    .toBytes();
}

const created: string[] = [];

/** A fresh temporary directory, removed by {@link removeTempDirs}. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `onnx-serverless-${prefix}-`));
  created.push(dir);
  return dir;
}

/** Removes every directory {@link tempDir} made in this test file (layers and cloud assemblies are large). */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes `models/<name>.json` files (and any other files, e.g. seeds) into a new catalog directory. */
export function writeCatalog(
  entries: Record<string, unknown>,
  files: Record<string, Uint8Array | string> = {},
): string {
  const dir = tempDir('catalog');
  mkdirSync(dir, { recursive: true });
  for (const [name, json] of Object.entries(entries)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(json));
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

/** A synthesized app. */
export interface Synthesized {
  readonly app: App;
  readonly stack: OnnxServerlessStack;
  readonly template: Template;
  /** The cloud assembly directory (holds `asset.<hash>/` bundles). */
  readonly assemblyDir: string;
}

/** Stack props where `models` may be left out: the catalog of `modelsDir` is then loaded, as `app.ts` does. */
export type SynthesizeProps = Omit<OnnxServerlessStackProps, 'models'> &
  Partial<Pick<OnnxServerlessStackProps, 'models'>>;

/**
 * Builds and synthesizes the stack. Without `bundling`, CDK skips esbuild (the function code assets are
 * placeholders): enough for template assertions, and several times faster.
 */
export function synthesize(props: SynthesizeProps, options: { bundling: boolean; id?: string }): Synthesized {
  // The app's strict validation: a CloudFormation finding fails the synth here as it fails `cdk synth`.
  const app = createServiceApp({
    outdir: tempDir('cdk-out'),
    context: options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] },
  });
  const models = props.models ?? loadCatalog(props.modelsDir);
  const stack = new OnnxServerlessStack(app, options.id ?? 'Test', {
    layerBuildDir: tempDir('layers'),
    ...props,
    models,
  });
  const assembly = app.synth();
  return { app, stack, template: Template.fromStack(stack), assemblyDir: assembly.directory };
}

/** Findings of cdk-nag's AWS Solutions pack that are not acknowledged, as `severity rule path` lines. */
export function nagFindings(app: App): string[] {
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.severity} ${v.ruleName} ${r.constructPath ?? ''}`),
  );
}

type Json = Record<string, unknown>;

/** The template's resources by logical id. */
export function resources(
  template: Template,
): Record<string, { Type: string; Properties?: Json; DependsOn?: string[] }> {
  return template.toJSON().Resources as Record<string, { Type: string; Properties?: Json; DependsOn?: string[] }>;
}

/** Logical ids a value refers to through `Ref`, `Fn::GetAtt` and `${X}` in `Fn::Sub`. */
export function referencedIds(value: unknown): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        if (key === 'Ref' && typeof child === 'string') found.add(child);
        else if (key === 'Fn::GetAtt' && Array.isArray(child) && typeof child[0] === 'string') found.add(child[0]);
        else if (key === 'Fn::Sub' && typeof child === 'string') {
          for (const match of child.matchAll(/\$\{([A-Za-z0-9]+)[.}]/g))
            if (match[1] !== undefined) found.add(match[1]);
        }
        visit(child);
      }
    }
  };
  visit(value);
  return found;
}

/**
 * Every API method as `"<METHOD> /<path>"` (e.g. `GET /v2/models/iris/versions/{v}/ready`) with the logical ids
 * its integration URI refers to.
 */
export function routes(template: Template): Map<string, Set<string>> {
  const all = resources(template);
  const pathOf = (ref: unknown): string => {
    const ids = [...referencedIds(ref)];
    const id = ids[0];
    if (id === undefined) throw new Error(`unresolvable resource reference ${JSON.stringify(ref)}`);
    const resource = all[id];
    if (resource?.Type === 'AWS::ApiGateway::RestApi') return '';
    const props = resource?.Properties as { ParentId: unknown; PathPart: string };
    return `${pathOf(props.ParentId)}/${props.PathPart}`;
  };
  const result = new Map<string, Set<string>>();
  for (const resource of Object.values(all)) {
    if (resource.Type !== 'AWS::ApiGateway::Method') continue;
    const props = resource.Properties as { HttpMethod: string; ResourceId: unknown; Integration: { Uri: unknown } };
    const targets = [...referencedIds(props.Integration.Uri)].filter((id) => id in all);
    result.set(`${props.HttpMethod} ${pathOf(props.ResourceId) || '/'}`, new Set(targets));
  }
  return result;
}

/** Every statement of every IAM policy attached to the role with this logical id. */
export function roleStatements(
  template: Template,
  roleId: string,
): Array<{ Action: string | string[]; Resource: unknown; Condition?: Json }> {
  return Object.values(resources(template))
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .filter((r) => ((r.Properties?.['Roles'] as unknown[]) ?? []).some((role) => referencedIds(role).has(roleId)))
    .flatMap(
      (r) =>
        (
          r.Properties!['PolicyDocument'] as {
            Statement: Array<{ Action: string | string[]; Resource: unknown; Condition?: Json }>;
          }
        ).Statement,
    );
}

/** The logical ids forming a dependency cycle (CloudFormation refuses those), or undefined if there is none. */
export function findCycle(template: Template): string[] | undefined {
  const all = resources(template);
  const edges = new Map<string, string[]>();
  for (const [id, resource] of Object.entries(all)) {
    const deps = new Set([...referencedIds(resource.Properties ?? {}), ...(resource.DependsOn ?? [])]);
    edges.set(
      id,
      [...deps].filter((dep) => dep in all),
    );
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const dep of edges.get(id) ?? []) {
      const cycle = visit(dep);
      if (cycle !== undefined) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of edges.keys()) {
    const cycle = visit(id);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

/**
 * The statements of a role's policies as the embedded S3 server evaluates them: `Action`/`Resource` as arrays, the
 * bucket's ARN (`Fn::GetAtt [<bucketId>, Arn]`, alone or joined with a key pattern) resolved to
 * `arn:aws:s3:::<bucketName>`. Other references (log groups, functions) become `unresolved:...` strings, which no
 * S3 request matches: the server then sees exactly the S3 rights the template deploys.
 */
export function s3PolicyOf(
  template: Template,
  roleId: string,
  bucketId: string,
  bucketName: string,
): PolicyStatementJson[] {
  const resolve = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const node = value as Record<string, unknown>;
    const getAtt = node['Fn::GetAtt'] as unknown[] | undefined;
    if (getAtt?.[0] === bucketId && getAtt[1] === 'Arn') return `arn:aws:s3:::${bucketName}`;
    const join = node['Fn::Join'] as [string, unknown[]] | undefined;
    if (join !== undefined) return join[1].map(resolve).join(join[0]);
    return `unresolved:${JSON.stringify(value)}`;
  };
  const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);
  return roleStatements(template, roleId).map((statement) => {
    const raw = statement as unknown as Record<string, unknown>;
    return {
      Effect: (raw['Effect'] as 'Allow' | 'Deny' | undefined) ?? 'Allow',
      Action: list(statement.Action).map(String),
      Resource: list(statement.Resource).map(resolve),
      ...(statement.Condition === undefined
        ? {}
        : { Condition: statement.Condition as unknown as NonNullable<PolicyStatementJson['Condition']> }),
    };
  });
}
