/**
 * The AWS CLI against the embedded server, as users run it: `aws s3 cp` of a 20 MB file (a multipart upload, 8 MB
 * parts), `aws s3 ls`, and `aws s3 cp` back. Skipped only when no `aws` binary is on the PATH (Debian: `apt-get
 * install awscli`); the CLI reads no profile of this machine, only the server's printed key pair.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Fixture } from './fixture.js';
import type { S3Fixture } from './fixture.js';

const run = promisify(execFile);
const awsAvailable = await run('aws', ['--version']).then(
  () => true,
  () => false,
);

describe.skipIf(!awsAvailable)('the aws CLI', () => {
  let s3: S3Fixture;
  let folder: string;
  const aws = async (...args: string[]): Promise<string> => {
    const { stdout } = await run('aws', ['--endpoint-url', s3.server.endpoint, ...args], {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: folder,
        AWS_ACCESS_KEY_ID: s3.server.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.server.credentials.secretAccessKey,
        AWS_DEFAULT_REGION: s3.server.region,
        AWS_CONFIG_FILE: join(folder, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(folder, 'none'),
      },
    });
    return stdout;
  };

  beforeAll(async () => {
    s3 = await startS3Fixture();
    folder = await mkdtemp(join(tmpdir(), 'onnx-serverless-aws-cli-'));
  });
  afterAll(async () => {
    await s3.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('uploads 20 MB in parts, lists it, and downloads the same bytes', async () => {
    const body = randomBytes(20 * 1024 * 1024);
    await writeFile(join(folder, 'model.onnx'), body);

    await aws(
      's3',
      'cp',
      '--only-show-errors',
      join(folder, 'model.onnx'),
      `s3://${s3.server.bucket}/uploads/cli/my model.onnx`,
    );
    const listing = await aws('s3', 'ls', '--recursive', `s3://${s3.server.bucket}/uploads/`);
    await aws(
      's3',
      'cp',
      '--only-show-errors',
      `s3://${s3.server.bucket}/uploads/cli/my model.onnx`,
      join(folder, 'back.onnx'),
    );

    const [event] = await s3.waitForEvents(1);
    expect(event?.Records[0]).toMatchObject({
      eventName: 'ObjectCreated:CompleteMultipartUpload',
      s3: { object: { key: 'uploads/cli/my+model.onnx', size: body.length } },
    });
    expect(listing).toMatch(new RegExp(`\\s${body.length} uploads/cli/my model\\.onnx\\n`));
    expect((await readFile(join(folder, 'back.onnx'))).equals(body)).toBe(true);
  }, 60_000);
});
