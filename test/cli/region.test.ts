/**
 * The `models` CLI finds its region as the AWS CLI and SDK do, run as a user runs it (a child process): `--region`,
 * `AWS_REGION`, `AWS_DEFAULT_REGION`, then the region of the profile in a temporary `AWS_CONFIG_FILE`. The region
 * is read back from the SigV4 credential scope of the request it sends to a loopback server standing in for S3;
 * without any region, AWS itself is a usage error that says what to set.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'onnx-serverless-region-'));
const CONFIG = join(dir, 'config');
writeFileSync(
  CONFIG,
  [
    '[default]',
    'region = us-west-2',
    '[profile tokyo]',
    'region = ap-northeast-1',
    'aws_access_key_id = AKIDTOKYO',
    'aws_secret_access_key = not-a-secret',
    '',
  ].join('\n'),
);

/** Regions of the SigV4 scopes the server saw, in order. */
const scopes: string[] = [];
let server: Server;
let endpoint: string;

beforeAll(async () => {
  // Stands in for S3: notes the credential scope's region and refuses, so the CLI stops at the first request.
  server = createServer((req, res) => {
    const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\//.exec(req.headers.authorization ?? '');
    scopes.push(scope?.[1] ?? 'unsigned');
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `npm run models -- list` with only the given AWS settings; resolves to the exit code and stderr. */
function models(args: readonly string[], aws: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^(AWS_|MODEL_BUCKET|S3_)/.test(key)) env[key] = value;
  Object.assign(env, { AWS_CONFIG_FILE: CONFIG, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), ...aws });
  return new Promise((resolve) => {
    execFile(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      [join(ROOT, 'functions', 'cli', 'models.ts'), 'list', ...args],
      { cwd: ROOT, env },
      (error, _stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stderr }),
    );
  });
}

/** The region the CLI signed its one request for. */
async function signedRegion(args: readonly string[], aws: Record<string, string>): Promise<string> {
  const before = scopes.length;
  const { code, stderr } = await models(['--endpoint', endpoint, ...args], aws);
  expect(code, stderr).toBe(1);
  expect(stderr).toMatch(/AccessDenied/);
  expect(scopes.length).toBe(before + 1);
  return scopes[before]!;
}

describe('the CLI region', () => {
  it("is the profile's region from the shared config file", async () => {
    expect(await signedRegion([], { AWS_PROFILE: 'tokyo' })).toBe('ap-northeast-1');
    expect(await signedRegion([], {})).toBe('us-west-2');
  });

  it('is AWS_DEFAULT_REGION over the profile, AWS_REGION over both, --region over all', async () => {
    expect(await signedRegion([], { AWS_PROFILE: 'tokyo', AWS_DEFAULT_REGION: 'eu-west-3' })).toBe('eu-west-3');
    expect(
      await signedRegion([], { AWS_PROFILE: 'tokyo', AWS_DEFAULT_REGION: 'eu-west-3', AWS_REGION: 'eu-central-1' }),
    ).toBe('eu-central-1');
    expect(await signedRegion(['--region', 'sa-east-1'], { AWS_PROFILE: 'tokyo', AWS_REGION: 'eu-central-1' })).toBe(
      'sa-east-1',
    );
  });

  it('is a usage error, saying what to set, for AWS with no region anywhere', async () => {
    const { code, stderr } = await models([], { MODEL_BUCKET: 'prod-models', AWS_CONFIG_FILE: join(dir, 'none') });
    expect(code).toBe(2);
    expect(stderr).toMatch(/no AWS region for s3:\/\/prod-models: pass --region, set AWS_REGION or AWS_DEFAULT_REGION/);
  });
});
