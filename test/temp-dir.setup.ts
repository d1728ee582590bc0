/**
 * Every test file gets a temporary folder of its own as the system's (`TMPDIR`, which `os.tmpdir()` reads on each
 * call), removed when the file ends. CDK apps without an `outdir` (Template.fromStack, tests of single options)
 * otherwise leave a `cdk.out*` folder per synthesis, with the staged layers in it (over 100 MB each), and a few runs
 * of `npm test` filled the disk. Processes the tests start inherit it; they end with their tests, before this runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const folder = mkdtempSync(join(tmpdir(), 'onnx-serverless-test-'));
process.env.TMPDIR = folder;

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});
