/**
 * `npm run lint` must fail on what it claims to catch: each check gets a planted violation in a temporary folder and
 * must name the file and the rule. (`npm run lint` itself runs them over the real tree before the tests.)
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkImports,
  findCycles,
  formatViolation,
  type ImportEdge,
  importsOf,
} from '../../tools/import-boundaries.js';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = (name: string): string => path.join(repoRoot, 'node_modules/.bin', name);

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder holding `files` (path → text). */
function plant(files: Readonly<Record<string, string>>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lint-planted-'));
  temporary.push(root);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

/** {@link plant} plus the repository's own `biome.json`, minus the git integration a temporary folder lacks. */
function plantWithBiome(files: Readonly<Record<string, string>>): string {
  const config = JSON.parse(readFileSync(path.join(repoRoot, 'biome.json'), 'utf8')) as Record<string, unknown>;
  delete config['vcs'];
  delete config['$schema'];
  return plant({ ...files, 'biome.json': JSON.stringify(config) });
}

/** The failure of a command expected to fail: its exit code and both streams. */
async function failureOf(command: string, args: string[], cwd: string): Promise<{ code: number; output: string }> {
  try {
    await run(command, args, { cwd });
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: `${failed.stdout}\n${failed.stderr}` };
  }
  throw new Error(`${command} ${args.join(' ')} succeeded on a planted violation`);
}

describe('import boundaries', () => {
  it('names file, line and rule for each planted violation, and lets the allowed imports through', () => {
    // Prepare
    const root = plant({
      'functions/core/pure.ts':
        "import { z } from 'zod';\nimport type { Port } from './port.js';\nexport const a = z;\n",
      'functions/core/port.ts': 'export interface Port { readonly x: number }\n',
      'functions/core/leaky.ts': [
        "import { store } from '../adapters/store.js';",
        "import type { APIGatewayProxyEvent } from 'aws-lambda';",
        "import { S3Client } from '@aws-sdk/client-s3';",
        "export const b = import('onnxruntime-node');",
      ].join('\n'),
      'functions/adapters/store.ts':
        "import { a } from '../core/pure.js';\nimport { route } from '../transport/routes.js';\nexport const store = a;\n",
      'functions/transport/routes.ts':
        "import version from '../../package.json' with { type: 'json' };\nimport { infer } from '../handlers/infer.js';\nexport const route = 1;\n",
      'functions/wiring/bootstrap.ts':
        "import { route } from '../transport/routes.js';\nimport { store } from '../adapters/store.js';\n",
      'functions/handlers/infer.ts':
        "import { start } from '../local/main.js';\nexport { route } from '../transport/routes.js';\nexport const infer = 1;\n",
      'functions/local/main.ts': "import { model } from '../../tools/onnx/model.js';\nexport const start = 1;\n",
      'infra/stack.ts':
        "import { helper } from '../test/support/helper.js';\nimport { ENV } from '../functions/core/pure.js';\n",
      'tools/onnx/model.ts': 'export const model = 1;\n',
      'test/support/helper.ts': "import { model } from '../../tools/onnx/model.js';\nexport const helper = model;\n",
      'package.json': '{}\n',
    });

    // Act
    const { violations } = checkImports(root);

    // Assess: one line per broken rule, at the import that breaks it (routes ⇄ infer is also a cycle); package.json
    // (data), zod, a type-only import inside core, wiring → adapters and infra → core are allowed.
    expect(violations.map((v) => `${v.file}:${v.line} ${v.rule}`)).toEqual([
      'functions/adapters/store.ts:2 adapters-import-core-only',
      'functions/core/leaky.ts:1 core-is-pure',
      'functions/core/leaky.ts:2 core-is-pure',
      'functions/core/leaky.ts:3 core-is-pure',
      'functions/core/leaky.ts:4 core-is-pure',
      'functions/handlers/infer.ts:1 entry-points-never-import-local-or-cli',
      'functions/handlers/infer.ts:2 no-import-cycles',
      'functions/local/main.ts:1 shipped-code-never-imports-dev-folders',
      'functions/transport/routes.ts:2 transport-imports-core-adapters-and-wiring',
      'functions/wiring/bootstrap.ts:1 wiring-imports-core-and-adapters',
      'infra/stack.ts:1 shipped-code-never-imports-dev-folders',
    ]);
    expect(formatViolation(violations[0]!)).toBe(
      "functions/adapters/store.ts:2 [adapters-import-core-only] imports '../transport/routes.js' (functions/transport/routes.ts): adapters implement core ports and import only functions/core; move shared logic into core",
    );
  });

  it('reports a cycle once, along the path a reader can follow, type imports included, and ignores dynamic loops', () => {
    // Prepare: a value cycle, then one cycle per form of type import, then a loop closed by `import()` only.
    const root = plant({
      'functions/local/a.ts': "import { b } from './b.js';\nexport const a = 1;\n",
      'functions/local/b.ts': "import { c } from './c.js';\nexport const b = 1;\n",
      'functions/local/c.ts': "import { a } from './a.js';\nexport const c = 1;\n",
      'functions/local/typed.ts': "import type { T } from './typed-back.js';\nexport type U = number;\n",
      'functions/local/typed-back.ts': "import type { U } from './typed.js';\nexport type T = U;\n",
      'functions/local/inline.ts': "import { type V } from './inline-back.js';\nexport type W = V;\n",
      'functions/local/inline-back.ts': "export type { W } from './inline.js';\nexport type V = string;\n",
      'functions/local/query.ts': "export type Q = import('./query-back.js').R;\n",
      'functions/local/query-back.ts': "export type R = import('./query.js').Q[];\n",
      'functions/local/lazy.ts': "export const load = () => import('./lazy-back.js');\n",
      'functions/local/lazy-back.ts': "import { load } from './lazy.js';\nexport const x = load;\n",
    });

    // Act
    const { violations } = checkImports(root);

    // Assess
    const fix = 'move what both sides need, types included, into a module neither of them imports';
    expect(violations.map(formatViolation)).toEqual([
      `functions/local/a.ts:1 [no-import-cycles] import cycle functions/local/a.ts → functions/local/b.ts → functions/local/c.ts → functions/local/a.ts: ${fix}`,
      `functions/local/inline-back.ts:1 [no-import-cycles] import cycle functions/local/inline-back.ts → functions/local/inline.ts → functions/local/inline-back.ts: ${fix}`,
      `functions/local/query-back.ts:1 [no-import-cycles] import cycle functions/local/query-back.ts → functions/local/query.ts → functions/local/query-back.ts (type imports only): ${fix}`,
      `functions/local/typed-back.ts:1 [no-import-cycles] import cycle functions/local/typed-back.ts → functions/local/typed.ts → functions/local/typed-back.ts (type imports only): ${fix}`,
    ]);
  });

  it('reads every import form: re-exports, inline type specifiers (still loaded), import() types', () => {
    // Act
    const edges = importsOf(
      '/nowhere',
      'functions/core/x.ts',
      [
        "import { type A } from './a.js';",
        "export * from './b.js';",
        "export type { C } from './c.js';",
        "let d: import('./d.js').D;",
        "import e = require('./e.js');",
      ].join('\n'),
    );

    // Assess
    expect(edges.map((e) => [e.line, e.target, e.typeOnly, e.dynamic])).toEqual([
      [1, 'functions/core/a.js', false, false],
      [2, 'functions/core/b.js', false, false],
      [3, 'functions/core/c.js', true, false],
      [4, 'functions/core/d.js', true, false],
      [5, 'functions/core/e.js', false, false],
    ]);
  });

  it('finds a self-import as a cycle', () => {
    const self: ImportEdge = {
      from: 'functions/core/a.ts',
      line: 3,
      specifier: './a.js',
      target: 'functions/core/a.ts',
      packageName: undefined,
      typeOnly: false,
      dynamic: false,
    };
    expect(findCycles([self]).map((v) => `${v.file}:${v.line} ${v.rule}`)).toEqual([
      'functions/core/a.ts:3 no-import-cycles',
    ]);
  });

  it('the command exits 1 and prints file, line and rule', async () => {
    // Prepare
    const root = plant({ 'functions/core/leaky.ts': "import { handler } from '../handlers/infer.js';\n" });

    // Act
    const { code, output } = await failureOf(
      bin('tsx'),
      [path.join(repoRoot, 'tools/import-boundaries.ts'), root],
      repoRoot,
    );

    // Assess
    expect(code).toBe(1);
    expect(output).toContain("functions/core/leaky.ts:1 [core-is-pure] imports '../handlers/infer.js'");
    expect(output).toContain('1 violation(s)');
  });
  it('the command exits 1 on a type-only cycle in core, such as types.ts and image/spec.ts once formed', async () => {
    // Prepare
    const root = plant({
      'functions/core/types.ts':
        "import type { Preprocess } from './image/spec.js';\nexport interface Meta { readonly preprocess?: Preprocess }\nexport interface TensorSpec { readonly name: string }\n",
      'functions/core/image/spec.ts':
        "import type { TensorSpec } from '../types.js';\nexport type Preprocess = Record<string, string>;\nexport const check = (inputs: readonly TensorSpec[]): number => inputs.length;\n",
    });

    // Act
    const { code, output } = await failureOf(
      bin('tsx'),
      [path.join(repoRoot, 'tools/import-boundaries.ts'), root],
      repoRoot,
    );

    // Assess
    expect(code).toBe(1);
    expect(output).toContain(
      'functions/core/image/spec.ts:1 [no-import-cycles] import cycle functions/core/image/spec.ts → functions/core/types.ts → functions/core/image/spec.ts (type imports only)',
    );
    expect(output).toContain('1 violation(s)');
  });
});

describe('biome', () => {
  it('fails on a focused test, a skipped test, an unused import, an unused variable and a floating promise', async () => {
    // Prepare
    const root = plantWithBiome({
      'planted.test.ts': [
        "import { readFileSync } from 'node:fs';",
        "import { describe, it } from 'vitest';",
        'async function later(): Promise<number> {',
        '  return 1;',
        '}',
        "describe('planted', () => {",
        "  it.only('focused', () => {",
        '    const unused = 1;',
        '    later();',
        '  });',
        "  it.skip('skipped', () => {});",
        '});',
        '',
      ].join('\n'),
    });

    // Act
    const { code, output } = await failureOf(
      bin('biome'),
      ['lint', '--error-on-warnings', '--max-diagnostics=50', '.'],
      root,
    );

    // Assess
    expect(code).toBe(1);
    for (const expected of [
      'planted.test.ts:1:8 lint/correctness/noUnusedImports',
      'planted.test.ts:7:6 lint/suspicious/noFocusedTests',
      'planted.test.ts:8:11 lint/correctness/noUnusedVariables',
      'planted.test.ts:9:5 lint/nursery/noFloatingPromises',
      'planted.test.ts:11:6 lint/suspicious/noSkippedTests',
    ]) {
      expect(output).toContain(expected);
    }
  });
  it('fails on code the formatter would change, naming the file', async () => {
    // Prepare
    const root = plantWithBiome({
      'tidy.ts': 'export const tidy = { a: 1 };\n',
      'untidy.ts': 'export const untidy = {a:1}\n',
    });

    // Act
    const { code, output } = await failureOf(
      bin('biome'),
      ['check', '--error-on-warnings', 'tidy.ts', 'untidy.ts'],
      root,
    );

    // Assess
    expect(code).toBe(1);
    expect(output).toContain('untidy.ts format');
    expect(output).not.toMatch(/^tidy\.ts format/m);
  });
});

describe('eslint', () => {
  it('applies no-floating-promises to the shipped code', async () => {
    // Act: which rules the repository's configuration gives a shipped file and a test file.
    const eslint = new ESLint({ cwd: repoRoot });
    const shipped = (await eslint.calculateConfigForFile(
      path.join(repoRoot, 'functions/core/session.ts'),
    )) as Linter.Config;

    // Assess
    expect(shipped.rules?.['@typescript-eslint/no-floating-promises']).toEqual([2]);
  });

  it('fails on promises typed by a library or another module, which Biome cannot see', async () => {
    // Prepare: the repository's rules on a two-file program of its own (a small program keeps this fast).
    const config = (await import(pathToFileURL(path.join(repoRoot, 'eslint.config.js')).href)) as {
      default: Linter.Config[];
    };
    const rules = config.default.flatMap((c) => Object.entries(c.rules ?? {}));
    const root = plant({
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          typeRoots: [path.join(repoRoot, 'node_modules/@types')],
          noEmit: true,
        },
        include: ['*.ts'],
      }),
      'later.ts': 'export const later = async (): Promise<number> => 1;\n',
      'planted.ts': [
        "import { readFile } from 'node:fs/promises';",
        "import { later } from './later.js';",
        'export function f(): void {',
        "  readFile('x');",
        '  later();',
        '  void later();',
        '}',
        '',
      ].join('\n'),
    });
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.ts'],
          languageOptions: {
            parser: tseslint.parser,
            parserOptions: { project: './tsconfig.json', tsconfigRootDir: root },
          },
          plugins: { '@typescript-eslint': tseslint.plugin as unknown as ESLint.Plugin },
          rules: Object.fromEntries(rules),
        },
      ],
    });

    // Act
    const [result] = await eslint.lintFiles(['planted.ts']);

    // Assess: both bare calls, not the one marked `void`.
    expect(result?.filePath).toBe(path.join(root, 'planted.ts'));
    expect(result?.messages.map((m) => `${m.line} ${m.ruleId}`)).toEqual([
      '4 @typescript-eslint/no-floating-promises',
      '5 @typescript-eslint/no-floating-promises',
    ]);
  });
});
