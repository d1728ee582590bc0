/**
 * The real app, the way a user runs it: `cdk synth` through cdk.json, on the repository's own models/ catalog,
 * with no AWS credentials, no account or region, and every network call sent to a dead proxy.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { loadCatalog } from '../../infra/catalog-loader.js';
import { REPO_ROOT } from '../../infra/service-function.js';
import { removeTempDirs, tempDir } from './fixture.js';

const run = promisify(execFile);
const outDir = tempDir('cdk-synth');
afterAll(removeTempDirs);

it('synthesizes the models/ catalog offline with no credentials, passing the AWS Solutions checks', async () => {
  // Prepare: an environment with nothing AWS in it, and a proxy that refuses every connection.
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AWS_|CDK_)/.test(key)) env[key] = value;
  }
  const nowhere = resolve(outDir, 'nowhere');
  Object.assign(env, {
    AWS_CONFIG_FILE: nowhere,
    AWS_SHARED_CREDENTIALS_FILE: nowhere,
    AWS_EC2_METADATA_DISABLED: 'true',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '',
  });

  // Act
  const { stdout, stderr } = await run(
    join(REPO_ROOT, 'node_modules', '.bin', 'cdk'),
    ['synth', '--quiet', '-o', outDir],
    {
      cwd: REPO_ROOT,
      env,
      maxBuffer: 64 * 1024 * 1024,
    },
  );

  // Assess: one infer function per catalog entry, named by MODEL_NAME, plus the shared infer, register and control.
  expect(`${stdout}\n${stderr}`).not.toMatch(/\bERROR\b|AwsSolutions-/);
  const template = JSON.parse(readFileSync(join(outDir, 'OnnxServerless.template.json'), 'utf8')) as {
    Resources: Record<
      string,
      { Type: string; Properties?: { Runtime?: string; Environment?: { Variables?: Record<string, string> } } }
    >;
  };
  const functions = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Runtime === 'nodejs24.x',
  );
  const served = functions
    .map((f) => f.Properties?.Environment?.Variables?.['MODEL_NAME'])
    .filter((n) => n !== undefined);
  expect(served.sort()).toEqual(
    loadCatalog()
      .map((entry) => entry.name)
      .sort(),
  );
  // Besides the catalog's: register, control, the shared infer, the rollout controller and the batch function.
  expect(functions).toHaveLength(served.length + 5);
  expect(readdirSync(outDir).some((f) => f.startsWith('asset.'))).toBe(true);
  // Six bundles and two layers (with sharp and libvips since images): over 180 s on a loaded 2-core machine.
}, 300_000);
