/**
 * The `models` CLI: argument handling and connection defaults on their own, then every command in-process against
 * the embedded S3 server of a running local stack, and once as a real child process.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { runCli, type CliIo } from '../../functions/cli/cli.js';
import { LOCAL_S3, resolveConnection } from '../../functions/cli/connection.js';
import { EXIT_CODES, UsageError } from '../../functions/cli/errors.js';
import { EMBEDDED_S3_DEFAULTS } from '../../functions/local/s3-server.js';
import { OWNER_CREDENTIALS } from '../../functions/local/s3-access.js';
import { type FlowStack, linearModel, outputData, startFlowStack } from './fixture.js';

const run = promisify(execFile);

interface Captured {
  readonly code: number;
  readonly out: string[];
  readonly err: string[];
}

async function cli(argv: readonly string[], io: Partial<CliIo> = {}): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, ...io });
  return { code, out, err };
}

describe('connection defaults', () => {
  it('talks to the embedded server with its fixed key pair when nothing is set', () => {
    // Act
    const connection = resolveConnection({}, {});

    // Assess
    expect(connection).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'models',
      region: undefined,
      local: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  });

  it('agrees with the embedded server on host, port, bucket and key pair', () => {
    // Assess
    expect([LOCAL_S3.host, LOCAL_S3.port, LOCAL_S3.bucket]).toEqual([
      EMBEDDED_S3_DEFAULTS.host,
      EMBEDDED_S3_DEFAULTS.port,
      EMBEDDED_S3_DEFAULTS.bucket,
    ]);
    expect(LOCAL_S3.credentials).toEqual(OWNER_CREDENTIALS);
  });

  it('follows S3_PORT, and uses AWS with the default credential chain once MODEL_BUCKET is set', () => {
    // Act
    const port = resolveConnection({}, { S3_PORT: '19000' });
    const aws = resolveConnection({}, { MODEL_BUCKET: 'prod-models', AWS_REGION: 'eu-west-1' });

    // Assess
    expect(port.endpoint).toBe('http://127.0.0.1:19000');
    expect(aws).toEqual({
      endpoint: undefined,
      bucket: 'prod-models',
      region: 'eu-west-1',
      local: false,
      credentials: undefined,
    });
  });

  it('lets flags win over the environment, and the credential chain win on loopback once configured', () => {
    // Act
    const connection = resolveConnection(
      { endpoint: 'http://localhost:9100', bucket: 'b', region: 'us-west-2' },
      { S3_ENDPOINT: 'http://127.0.0.1:9000', MODEL_BUCKET: 'other', AWS_PROFILE: 'minio' },
    );

    // Assess
    expect(connection).toEqual({
      endpoint: 'http://localhost:9100',
      bucket: 'b',
      region: 'us-west-2',
      local: true,
      credentials: undefined,
    });
  });

  it('refuses an endpoint that is not an http(s) URL', () => {
    // Assess
    expect(() => resolveConnection({ endpoint: '127.0.0.1:9000' }, {})).toThrow(UsageError);
    expect(() => resolveConnection({ endpoint: '127.0.0.1:9000' }, {})).toThrow(/must be an http\(s\) URL/);
  });
});

describe('command line errors', () => {
  // A store nobody can reach: none of these may get as far as touching it.
  const io = { store: new FsBlobStore('/nonexistent/never-created') };

  it.each([
    [[], /^usage: npm run models/],
    [['frobnicate'], /^error: unknown command "frobnicate"$/],
    [['list', '--verbose'], /^error: Unknown option '--verbose'/],
    [['list', '--label', 'x'], /^error: list does not take --label$/],
    [['list', 'a', 'b'], /^error: list takes at most one <model>, got a b$/],
    [['upload', 'm.onnx'], /^error: upload needs --model <name>/],
    [['upload', 'm.onnx', '--model', 'bad..name'], /^error: "bad\.\.name" is not an allowed model name/],
    [
      ['upload', 'model.pt', '--model', 'm'],
      /^error: "model\.pt" does not end in \.onnx or \.zip: only uploads\/<model>\/<file>\.onnx \(or \.zip, a model with its external-data files\) objects start a registration/,
    ],
    [
      ['upload', '/nonexistent/m.onnx', '--model', 'm'],
      /^error: cannot read the model file "\/nonexistent\/m\.onnx": no such file$/,
    ],
    [['upload', 'm.onnx', '--model', 'm', '--timeout', '5'], /^error: --timeout goes with --wait$/],
    [
      ['upload', 'm.onnx', '--model', 'm', '--wait', '--timeout', 'soon'],
      /^error: --timeout takes a number of seconds > 0, got "soon"$/,
    ],
    [['promote', 'm'], /^error: promote takes <model> <version>, got m$/],
    [['promote', 'm', '1', '--label', '2'], /^error: "2" is not an allowed label/],
    [['promote', 'm', '1', '--label', 'latest'], /^error: "latest" is not an allowed label/],
  ])('%j exits 2 with a message', async (argv, message) => {
    // Act
    const result = await cli(argv, io);

    // Assess
    expect(result.code).toBe(EXIT_CODES.usage);
    expect([...result.err, ...result.out][0]).toMatch(message);
  });

  it('prints the usage for --help and exits 0', async () => {
    // Act
    const result = await cli(['--help'], io);

    // Assess
    expect(result.code).toBe(EXIT_CODES.ok);
    expect(result.out.join('\n')).toMatch(/upload <file\.onnx\|file\.zip> --model <m>.*\n.*\n.*\n {2}list \[<m>\]/);
  });
});

describe('commands against the embedded S3 server', () => {
  let flow: FlowStack;
  let files: string;
  let local: Partial<CliIo>;

  beforeAll(async () => {
    flow = await startFlowStack();
    files = await mkdtemp(join(tmpdir(), 'onnx-serverless-cli-'));
    // The real clock, polled faster than the CLI's 500 ms: registration of these models takes milliseconds.
    local = { env: { S3_ENDPOINT: flow.stack.s3.endpoint }, sleep: (ms) => new Promise((r) => setTimeout(r, ms / 20)) };
  });
  afterAll(async () => {
    await flow?.close();
    await rm(files, { recursive: true, force: true });
  });

  async function file(name: string, body: Uint8Array | string): Promise<string> {
    const target = join(files, name);
    await writeFile(target, body);
    return target;
  }

  it('uploads with --wait and prints the registered version', async () => {
    // Prepare
    const model = await file('first.onnx', linearModel(1));

    // Act
    const result = await cli(['upload', model, '--model', 'cli-a', '--wait'], local);

    // Assess
    expect(result).toEqual({
      code: EXIT_CODES.ok,
      out: [
        expect.stringMatching(
          new RegExp(
            `^uploaded uploads/cli-a/first\\.onnx \\(\\d+ bytes, sha256 [0-9a-f]{12}\\) to s3://models at ${flow.stack.s3.endpoint}$`,
          ),
        ),
        'registered: cli-a version 1 (latest: 1)',
      ],
      err: [],
    });
    expect(outputData(await flow.infer('cli-a', [[1, 1, 1, 1]]))).toEqual([4]);
  });

  it('uploads nothing when a version already has the same bytes', async () => {
    // Prepare
    const model = await file('same.onnx', linearModel(2));
    await cli(['upload', model, '--model', 'cli-same', '--wait'], local);
    // --wait returns once the manifest lists the version; the registration records its outcome after that.
    await flow.waitForOutcome('uploads/cli-same/same.onnx', 0);

    // Act
    const result = await cli(['upload', model, '--model', 'cli-same', '--wait', '--json'], local);

    // Assess
    expect(result.code).toBe(EXIT_CODES.ok);
    expect(JSON.parse(result.out[0] ?? '')).toMatchObject({ outcome: 'identical', version: '1', latest: '1' });
    await flow.stack.settled();
    expect(flow.outcomesFor('uploads/cli-same/same.onnx')).toHaveLength(1);
  });

  it('uploads the sample first and reports a refusal with its reason and exit code 1', async () => {
    // Prepare
    await cli(['upload', await file('base.onnx', linearModel(1)), '--model', 'cli-b', '--wait'], local);
    const model = await file('wrong.onnx', linearModel(3));
    const sample = await file(
      'wrong.onnx.json',
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }],
        expected_outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [4] }],
      }),
    );

    // Act
    const result = await cli(['upload', model, '--model', 'cli-b', '--sample', sample, '--wait'], local);
    const rejections = await cli(['rejections', 'cli-b'], local);

    // Assess
    expect(result.code).toBe(EXIT_CODES.failed);
    expect(result.out.slice(1)).toEqual([
      "refused: output y differs from the sample's expected output at element 0: expected 4, got 12 (tolerance 0.0001)",
      'cli-b still serves version 1',
    ]);
    const storedSample = await flow.store.get('uploads/cli-b/wrong.onnx.json');
    expect(Buffer.from(storedSample?.body ?? []).toString('utf8')).toBe(await readFile(sample, 'utf8'));
    expect(rejections.code).toBe(EXIT_CODES.ok);
    expect(rejections.out).toEqual([
      expect.stringMatching(/^\d{4}-\d\d-\d\dT[0-9:.]+Z {2}uploads\/cli-b\/wrong\.onnx {2}sha256 [0-9a-f]{12}$/),
      "  output y differs from the sample's expected output at element 0: expected 4, got 12 (tolerance 0.0001)",
    ]);
  });

  it('reports a refusal as JSON with --json', async () => {
    // Prepare
    const model = await file('garbage.onnx', 'not a model at all');

    // Act
    const result = await cli(['upload', model, '--model', 'cli-c', '--wait', '--json'], local);

    // Assess
    expect(result.code).toBe(EXIT_CODES.failed);
    expect(JSON.parse(result.out[0] ?? '')).toEqual({
      key: 'uploads/cli-c/garbage.onnx',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      size: 18,
      outcome: 'rejected',
      reason: expect.stringMatching(/^The file is not an ONNX model/),
    });
  });

  it('returns at once without --wait, and the upload registers on its own', async () => {
    // Prepare
    const model = await file('nowait.onnx', linearModel(4));

    // Act
    const result = await cli(['upload', model, '--model', 'cli-d'], local);
    const outcome = await flow.waitForOutcome('uploads/cli-d/nowait.onnx', 0);

    // Assess
    expect(result.code).toBe(EXIT_CODES.ok);
    expect(result.out).toHaveLength(1);
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
  });

  it('lists models, and one model with its versions, pointers and refused uploads', async () => {
    // Prepare
    await cli(['upload', await file('l1.onnx', linearModel(1)), '--model', 'cli-list', '--wait'], local);
    await cli(['upload', await file('l2.onnx', linearModel(2)), '--model', 'cli-list', '--wait'], local);
    await cli(['upload', await file('l3.onnx', 'junk'), '--model', 'cli-list', '--wait'], local);
    await cli(['promote', 'cli-list', '1', '--label', 'stable'], local);

    // Act
    const all = await cli(['list'], local);
    const one = await cli(['list', 'cli-list'], local);
    const json = await cli(['list', 'cli-list', '--json'], local);

    // Assess
    expect(all.code).toBe(EXIT_CODES.ok);
    expect(all.out[0]).toMatch(/^MODEL +LATEST +VERSIONS +LABELS$/);
    expect(all.out).toContainEqual(expect.stringMatching(/^cli-list +2 +1,2 +stable=1$/));
    expect(one.out[0]).toBe('cli-list: latest 2; labels stable=1');
    expect(one.out[1]).toMatch(/^VERSION +STATE +POINTERS +CREATED +BYTES +SHA256 +SOURCE$/);
    expect(one.out[2]).toMatch(/^1 +READY +stable +\S+ +\d+ +[0-9a-f]{12} +uploads\/cli-list\/l1\.onnx$/);
    expect(one.out[3]).toMatch(/^2 +READY +latest +\S+ +\d+ +[0-9a-f]{12} +uploads\/cli-list\/l2\.onnx$/);
    expect(one.out[4]).toBe('1 refused upload(s): npm run models -- rejections cli-list');
    expect(JSON.parse(json.out[0] ?? '')).toMatchObject({
      name: 'cli-list',
      latest: '2',
      labels: { stable: '1' },
      rejections: 1,
    });
  });

  it('moves a label with promote --label, and the endpoint serves /versions/<label>', async () => {
    // Prepare
    await cli(['upload', await file('p1.onnx', linearModel(1)), '--model', 'cli-label', '--wait'], local);
    await cli(['upload', await file('p2.onnx', linearModel(2)), '--model', 'cli-label', '--wait'], local);

    // Act
    const result = await cli(['promote', 'cli-label', '1', '--label', 'stable'], local);
    const stable = await flow.infer('cli-label', [[1, 1, 1, 1]], 'stable');
    const latest = await flow.infer('cli-label', [[1, 1, 1, 1]]);

    // Assess
    expect(result.out[0]).toBe('cli-label: stable -> version 1 (was unset)');
    expect([stable.body, outputData(stable)]).toEqual([expect.objectContaining({ model_version: '1' }), [4]]);
    expect(outputData(latest)).toEqual([8]);
  });

  it('fails with exit 1 and what exists when promoting an unknown version or model', async () => {
    // Prepare
    await cli(['upload', await file('u1.onnx', linearModel(1)), '--model', 'cli-e', '--wait'], local);

    // Act
    const version = await cli(['promote', 'cli-e', '7'], local);
    const model = await cli(['promote', 'no-such-model', '1'], local);

    // Assess
    expect(version).toMatchObject({
      code: EXIT_CODES.failed,
      err: ['error: model "cli-e" has no version "7"; READY versions: 1'],
    });
    expect(model.code).toBe(EXIT_CODES.failed);
    expect(model.err[0]).toMatch(
      /^error: unknown model "no-such-model" in s3:\/\/models at http:\/\/127\.0\.0\.1:\d+; models: .*cli-e/,
    );
    expect((await flow.manifest('cli-e'))?.latest).toBe('1');
  });

  it('says when there is nothing refused', async () => {
    // Act
    const result = await cli(['rejections', 'cli-a'], local);

    // Assess
    expect(result.out).toEqual([`no refused uploads of cli-a in s3://models at ${flow.stack.s3.endpoint}`]);
  });

  it('names a missing bucket, and a server that is not running, with what to do', async () => {
    // Prepare: a port that was free a moment ago.
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });

    // Act
    const bucket = await cli(['list', '--bucket', 'no-such-bucket'], local);
    const down = await cli(['list'], { env: { S3_ENDPOINT: `http://127.0.0.1:${closedPort}` } });

    // Assess
    expect(bucket).toMatchObject({
      code: EXIT_CODES.failed,
      err: [
        `error: the bucket does not exist: s3://no-such-bucket at ${flow.stack.s3.endpoint} (check --bucket or MODEL_BUCKET)`,
      ],
    });
    expect(down).toMatchObject({
      code: EXIT_CODES.failed,
      err: [
        `error: cannot reach s3://models at http://127.0.0.1:${closedPort}: ECONNREFUSED (start it with \`npm start\`)`,
      ],
    });
  });

  it('gives up --wait after --timeout with exit 3 when nothing registers the upload', async () => {
    // Prepare: a plain folder as the bucket, with no register function behind it.
    const bucket = await mkdtemp(join(tmpdir(), 'onnx-serverless-cli-bucket-'));
    const model = await file('lonely.onnx', linearModel(6));
    let clock = 0;

    // Act
    const result = await cli(['upload', model, '--model', 'cli-f', '--wait', '--timeout', '2'], {
      store: new FsBlobStore(bucket),
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.timedOut);
    expect(result.err[0]).toMatch(
      /^no registration outcome for uploads\/cli-f\/lonely\.onnx after 2 s: is the register function subscribed/,
    );
    expect(clock).toBe(2000);
    await rm(bucket, { recursive: true, force: true });
  });

  it('runs as `npx tsx functions/cli/models.ts` in a child process', async () => {
    // Prepare: the embedded server's endpoint, and none of the developer's own AWS settings.
    const cliEnv = {
      ...process.env,
      S3_ENDPOINT: flow.stack.s3.endpoint,
      MODEL_BUCKET: '',
      AWS_ACCESS_KEY_ID: '',
      AWS_PROFILE: '',
    };

    // Act
    const child = await run('npx', ['tsx', 'functions/cli/models.ts', 'list', 'cli-a'], {
      env: cliEnv,
    });
    const refused = await run('npx', ['tsx', 'functions/cli/models.ts', 'promote', 'cli-a', '9'], {
      env: cliEnv,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );

    // Assess
    expect(child.stdout.split('\n')[0]).toBe('cli-a: latest 1');
    expect(child.stdout).toMatch(/\n1 +READY +latest /);
    expect(refused.code).toBe(EXIT_CODES.failed);
    expect(refused.stderr).toContain('error: model "cli-a" has no version "9"; READY versions: 1');
  });
});
