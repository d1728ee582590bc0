/**
 * Every shell command of README.md and docs/*.md is one a user can paste and that answers as written: the test
 * starts the README's own `npm start` on ephemeral ports over a fresh data folder, then runs every command of every
 * page, in order, in one shell per page (so a page's variables carry from block to block), from the repository's
 * folder with the page's `PORT` and `S3_PORT`. A command must exit 0, or with the status its comment states
 * (`(exit 1)`), and print the JSON its block states on the comment lines right after it; `curl` runs with
 * `--fail-with-body`, so an HTTP error status fails the command unless its comment states the exit status (22). The only commands not run
 * here are marked as needing AWS (`# needs AWS`, `# needs the AWS CLI`), or are `.ci/run`'s own: the set-up and the
 * test command, which this test checks `.ci/run` runs.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeBlocksOf, DOCS_ROOT, isShellBlock, readDocs, type ShellCommand, shellCommands } from '../../tools/docs.js';

/** A comment that says the command needs an AWS account or the AWS CLI, so no test here can run it. */
const NEEDS_AWS = /\bneeds (AWS|the AWS CLI)\b/;

/**
 * Commands `.ci/run` runs rather than this test: the README's "Two commands". Each maps to the line `.ci/run` must
 * hold for it (`npm install` there is `npm ci`: the same install, held to the lockfile).
 */
const RUN_BY_CI: Readonly<Record<string, string>> = { 'npm install': 'npm ci', 'npm test': 'npm test' };

/** Set by .ci/run, which installs curl: then a missing curl fails instead of skipping. */
const REQUIRE_CURL = process.env.REQUIRE_CURL === '1';
const hasCurl = spawnSync('curl', ['--version']).status === 0;

/** The command this test itself runs in the background for the others: the local stack. */
const START = 'npm start';

/** A command as a list of `&&`-joined parts, for matching the commands run elsewhere. */
function parts(command: string): string[] {
  return command.split('&&').map((part) => part.trim());
}

/** How the test covers a command: not at all (AWS), by `.ci/run`, as the background stack, or by running it. */
function coverage(command: ShellCommand): 'aws' | 'ci' | 'stack' | 'run' {
  if (NEEDS_AWS.test(command.comment)) return 'aws';
  const all = parts(command.command);
  if (all.every((part) => part === START || part in RUN_BY_CI)) return all.includes(START) ? 'stack' : 'ci';
  return 'run';
}

const pages = readDocs();
const commandsByPage = pages.map((page) => ({
  file: page.file,
  commands: codeBlocksOf(page).filter(isShellBlock).flatMap(shellCommands),
}));

describe('the commands of README.md and docs/', () => {
  it('state a language on every fenced block, so that no shell command hides in an unlabeled one', () => {
    const unlabeled = pages.flatMap((page) =>
      codeBlocksOf(page)
        .filter((block) => block.info === '')
        .map((block) => `${block.file}:${block.line}`),
    );
    expect(unlabeled).toEqual([]);
  });

  it("leave to .ci/run only the README's set-up and test commands, and .ci/run runs them", () => {
    const ciRun = readFileSync(path.join(DOCS_ROOT, '.ci/run'), 'utf8').split('\n');
    const byCi = commandsByPage.flatMap(({ commands }) =>
      commands.filter((c) => coverage(c) === 'ci' || coverage(c) === 'stack'),
    );
    expect(byCi.map((c) => `${c.file}: ${c.command}`)).toEqual([
      'README.md: npm install && npm start',
      'README.md: npm test',
      'README.md: npm start',
    ]);
    for (const command of byCi)
      for (const part of parts(command.command).filter((p) => p !== START))
        expect(ciRun.map((line) => line.trim())).toContain(RUN_BY_CI[part]);
  });
});

it.runIf(!hasCurl && !REQUIRE_CURL)(
  "needs curl to run the docs' commands (apt-get install curl; REQUIRE_CURL=1 in CI)",
  () => {
    expect(hasCurl).toBe(false);
  },
);

describe.runIf(hasCurl || REQUIRE_CURL)('run against npm start', () => {
  let stack: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let env: NodeJS.ProcessEnv = {};
  let dataDir = '';

  beforeAll(async () => {
    // Prepare: the README's own start command, on ephemeral ports, over a fresh data folder, in a process group of
    // its own (as a terminal gives it) so that it and everything it started stop together.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'docs-commands-'));
    const started = commandsByPage[0]?.commands.find((c) => c.command === START);
    if (started === undefined) throw new Error(`the README has no "${START}" command`);
    const clean = { ...process.env };
    for (const name of ['MODEL_BUCKET', 'S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE'])
      delete clean[name];
    stack = spawn('bash', ['-c', started.command], {
      cwd: DOCS_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...clean, PORT: '0', S3_PORT: '0', DATA_DIR: dataDir },
    });
    const child = stack;
    exited = new Promise((resolve) => child.on('exit', () => resolve()));
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 110_000;
    let ready: RegExpExecArray | null = null;
    while (ready === null) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`npm start did not print its ready line:\n${stdout}\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = /ready on http:\/\/127\.0\.0\.1:(\d+)[\s\S]*embedded S3: http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
    }
    env = { ...clean, PORT: ready[1], S3_PORT: ready[2] };
  }, 120_000);

  afterAll(async () => {
    if (stack?.pid !== undefined && stack.exitCode === null) {
      process.kill(-stack.pid, 'SIGTERM');
      const killed = setTimeout(() => stack?.pid !== undefined && process.kill(-stack.pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(killed);
    }
    await rm(dataDir, { recursive: true, force: true });
  }, 30_000);

  it.each(commandsByPage.filter(({ commands }) => commands.some((c) => coverage(c) === 'run')))(
    '$file: every command exits as stated and prints what its block shows',
    async ({ commands }) => {
      // Act: the page's commands in one shell, each between markers that carry its exit status.
      const runnable = commands.filter((c) => coverage(c) === 'run');
      // curl fails on an HTTP error status here (a user reads the status; a script reads only the exit status).
      const prelude = 'curl() { command curl --fail-with-body "$@"; }';
      const script = [
        prelude,
        ...runnable.map((c, i) => `printf '\\n@@begin ${i}\\n'\n${c.command}\nprintf '\\n@@end ${i} %d\\n' "$?"`),
      ].join('\n');
      const { stdout, stderr } = await runBash(script, env);

      // Assess: each command's status and stated output.
      runnable.forEach((c, i) => {
        const where = `${c.file}:${c.line} \`${c.command}\``;
        const match = new RegExp(`@@begin ${i}\\n([\\s\\S]*?)\\n@@end ${i} (\\d+)\\n`).exec(stdout);
        expect.soft(match, `${where} did not finish:\n${stdout}\n${stderr}`).not.toBeNull();
        const [, output = '', status = ''] = match ?? [];
        const expected = Number(/\(exit (\d+)\)/.exec(c.comment)?.[1] ?? 0);
        expect.soft(Number(status), `${where} exit status; it printed:\n${output}\n${stderr}`).toBe(expected);
        if (c.output !== undefined)
          expect.soft(JSON.parse(output.trim()), `${where} output`).toEqual(JSON.parse(c.output));
      });
    },
    240_000,
  );
});

/** Runs a script with bash (no stdin), from the repository's folder. */
function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: DOCS_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => resolve({ stdout, stderr }));
  });
}
