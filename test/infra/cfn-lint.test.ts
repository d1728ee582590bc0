/**
 * AWS's CloudFormation linter on the template of every documented synth variant, built as `cdk synth -c ...` builds
 * it (createServiceApp + addServiceStack, the code of infra/app.ts): zero findings beyond the checked-in, reasoned
 * ignores. One cfn-lint run covers every template. Planted defects prove the gates bite: a description IAM refuses
 * fails cfn-lint (E3031, naming the file) and CDK's own validation at synth (F3031, naming the construct), and a
 * Managed Instances entry with too little memory fails the synth naming the catalog file and field.
 */
import { Aspects, type IAspect } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_MODELS_DIR } from '../../infra/catalog-loader.js';
import { addServiceStack, CONTEXT_OPTIONS, createServiceApp, type ContextOption } from '../../infra/service-app.js';
import { describeWithCfnLint, formatFinding, lintTemplates, readIgnores, unignored, type Finding } from './cfn-lint.js';
import { findSection, tableRows } from '../../tools/docs.js';
import { removeTempDirs, tempDir, writeCatalog } from './fixture.js';

afterAll(removeTempDirs);

const SUBNETS = 'subnet-0123456789abcdef0,subnet-89abcdef';
const GROUPS = 'sg-0123456789abcdef0';

/**
 * Both documented forms of `managedInstances`, in one catalog; with a rollout policy (`CATALOG_ROLLOUT` on register,
 * docs/rollouts.md), which sits on the same template.
 */
const MANAGED_CATALOG = {
  steady: { managedInstances: true, warmer: false, capture: { samplingPercent: 50, maxBatchRecords: 100 } },
  guarded: {
    warmer: false,
    rollout: { strategy: 'linear', stepPercent: 20, intervalSeconds: 120, maxErrorRate: 0.02 },
  },
  tuned: {
    memoryMb: 4096,
    managedInstances: {
      maxConcurrency: 32,
      memoryGiBPerVCpu: 4,
      maxVCpuCount: 64,
      minExecutionEnvironments: 1,
      maxExecutionEnvironments: 4,
    },
  },
};

interface Variant {
  readonly name: string;
  readonly context: Partial<Record<ContextOption, string>>;
  readonly catalog?: Record<string, unknown>;
}

/**
 * Every documented synth variant (docs/deploying.md, "Context options"). Options that do not exclude each other share a
 * template: cfn-lint takes seconds per template, and every option's resources and properties are in one of them.
 * `alarmEmail` and `alarmTopicArn` exclude each other, and the two network forms of Managed Instances do.
 */
const VARIANTS: readonly Variant[] = [
  { name: 'default', context: {} },
  {
    name: 'api=url, authorization=iam, runtime=nodejs22.x, alarmEmail, powertoolsTracer, captureSamplingPercent, batch options',
    context: {
      api: 'url',
      authorization: 'iam',
      runtime: 'nodejs22.x',
      alarmEmail: 'ops@example.com',
      powertoolsTracer: 'true',
      captureSamplingPercent: '10',
      batchMaxConcurrency: '40',
      batchReservedConcurrency: '50',
      batchToleratedFailurePercentage: '0',
    },
  },
  {
    name: 'authorization=iam, streaming=true, alarmTopicArn, sourceMapStackTraces, bucketRemovalPolicy=destroy, executionLogging=false, stackName',
    context: {
      authorization: 'iam',
      streaming: 'true',
      alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:pager',
      sourceMapStackTraces: 'true',
      bucketRemovalPolicy: 'destroy',
      executionLogging: 'false',
      stackName: 'Models-Staging',
    },
  },
  // Async jobs (docs/async.md): every infer function has an `async` alias with an event invoke configuration; `pinned`
  // puts it beside the `live` alias of provisioned concurrency, both on the function's current version.
  {
    name: 'managedInstances (both forms), own VPC; the async alias beside provisionedConcurrency; auth=none',
    context: { auth: 'none' },
    catalog: { ...MANAGED_CATALOG, pinned: { provisionedConcurrency: 1, preload: true, warmer: false } },
  },
  {
    name: 'managedInstances (both forms), given subnets and security groups; api=http (IAM)',
    context: { subnetIds: SUBNETS, securityGroupIds: GROUPS, api: 'http' },
    catalog: MANAGED_CATALOG,
  },
  {
    name: 'api=http, jwtIssuer, jwtAudience',
    context: { api: 'http', jwtIssuer: 'https://issuer.example.com/pool', jwtAudience: 'client-a,client-b' },
  },
  { name: 'api=url, cloudfront=true, auth=none', context: { api: 'url', cloudfront: 'true', auth: 'none' } },
];

const layerBuildDir = tempDir('lint-layers');

/**
 * Synthesizes the app with `context`. Bundling and asset staging are skipped (assets then point at their sources
 * instead of copies): neither changes a template's resources, and copying the layers took most of each synth.
 */
function synthesizeVariant(context: Variant['context'], modelsDir: string): string {
  const outdir = tempDir('lint-out');
  const app = createServiceApp({
    outdir,
    context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:disable-asset-staging': true, ...context },
  });
  const stack = addServiceStack(app, { modelsDir, layerBuildDir });
  app.synth();
  return join(outdir, stack.templateFile);
}

describeWithCfnLint('cfn-lint on every documented synth variant', () => {
  const templates = new Map<string, string>();
  let planted: string;
  let findings: Finding[];
  const ignores = readIgnores();

  beforeAll(async () => {
    for (const variant of VARIANTS) {
      const modelsDir = variant.catalog === undefined ? DEFAULT_MODELS_DIR : writeCatalog(variant.catalog);
      templates.set(variant.name, synthesizeVariant(variant.context, modelsDir));
    }
    // Planted: a role whose description IAM refuses, as the shipped catalog once produced.
    planted = join(tempDir('lint-planted'), 'Planted.template.json');
    writeFileSync(
      planted,
      JSON.stringify(
        {
          Resources: {
            PlantedRole: {
              Type: 'AWS::IAM::Role',
              Properties: {
                AssumeRolePolicyDocument: {
                  Version: '2012-10-17',
                  Statement: [
                    { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
                  ],
                },
                Description: 'Execution role of infer-planted: cut here…',
              },
            },
          },
        },
        null,
        1,
      ),
    );
    findings = await lintTemplates([...templates.values(), planted]);
  }, 900_000);

  it.each(VARIANTS.map((v) => v.name))('%s: no finding beyond the reasoned ignores', (name) => {
    const file = templates.get(name)!;
    const mine = findings.filter((f) => f.file === file);
    expect(unignored(mine, ignores).map(formatFinding)).toEqual([]);
  });

  it('covers every context option of the app', () => {
    const covered = new Set(VARIANTS.flatMap((v) => Object.keys(v.context)));
    expect(Object.keys(CONTEXT_OPTIONS).filter((option) => !covered.has(option))).toEqual([]);
  });

  it('needs every ignore entry: an entry no template matches is stale', () => {
    const linted = findings.filter((f) => f.file !== planted);
    const stale = ignores.filter((i) => !linted.some((f) => f.rule === i.rule && f.resourceType === i.resourceType));
    expect(stale).toEqual([]);
  });

  it('fails a planted description with "…" as E3031, naming the file and the role', () => {
    const failures = unignored(
      findings.filter((f) => f.file === planted),
      ignores,
    ).map(formatFinding);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^E3031 .*Planted\.template\.json:\d+ PlantedRole \(AWS::IAM::Role\): .*cut here…/);
  });
});

/** Writes a raw description past the stack's FitDescriptions, as a construct that forgot the rules would. */
class PlantDescription implements IAspect {
  public visit(node: IConstruct): void {
    if (node instanceof iam.CfnRole && node.node.path.endsWith('Control/Role/Resource')) {
      node.addPropertyOverride('Description', 'Execution role of control: cut here…');
    }
  }
}

it('fails the synth itself on a planted description IAM refuses, naming the rule and the construct', () => {
  const app = createServiceApp({ outdir: tempDir('planted-out'), context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = addServiceStack(app, { modelsDir: writeCatalog({}), layerBuildDir });
  Aspects.of(stack).add(new PlantDescription());
  let message = '';
  try {
    app.synth();
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toMatch(/'Execution role of control: cut here…' does not match pattern/);
  expect(message).toMatch(/OnnxServerless\/Control\/Role\/Resource/);
  expect(message).toMatch(/CloudFormation-Validate::F3031/);
}, 300_000);

it('fails the synth on a planted Managed Instances memory below 2,048 MB, naming the catalog file and field', () => {
  const dir = writeCatalog({ small: { managedInstances: true, memoryMb: 1024 } });
  const app = createServiceApp({ outdir: tempDir('planted-out'), context: { 'aws:cdk:bundling-stacks': [] } });
  expect(() => addServiceStack(app, { modelsDir: dir, layerBuildDir })).toThrow(
    /models\/small\.json is invalid: memoryMb: 1024 MB is too little for Lambda Managed Instances: they need at least 2048 MB/,
  );
  const ratio = writeCatalog({ wide: { managedInstances: { memoryGiBPerVCpu: 8 }, memoryMb: 4096 } });
  expect(() =>
    addServiceStack(createServiceApp({ outdir: tempDir('planted-out') }), { modelsDir: ratio, layerBuildDir }),
  ).toThrow(/models\/wide\.json is invalid: memoryMb: .*memoryGiBPerVCpu 8 takes 8192 MB; set memoryMb to 8192/);
});

it("lists exactly the app's context options in the docs' table", () => {
  // The table of the "Context options" section, wherever it lives (README.md or docs/).
  const rows = tableRows(findSection('Context options').text, 'option');
  const documented = rows.map((row) => /^`([A-Za-z]+)`$/.exec(row[0] ?? '')?.[1]);
  expect(documented.sort()).toEqual(Object.keys(CONTEXT_OPTIONS).sort());
});
