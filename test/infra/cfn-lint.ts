/**
 * AWS's CloudFormation linter, `cfn-lint`, over synthesized templates: one run for many templates (its start-up
 * takes seconds), its JSON findings read back, and the findings we keep ignored by rule and resource type through
 * the one checked-in list, `cfn-lint-ignores.json`, where each entry says why.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'vitest';

const run = promisify(execFile);

/** Set by `.ci/run`: a missing cfn-lint fails the tests instead of skipping them. */
export const REQUIRE_CFN_LINT = 'REQUIRE_CFN_LINT';

/** How to get cfn-lint where it is missing. */
export const CFN_LINT_INSTALL = 'pip install cfn-lint (or pipx install cfn-lint); it is a Python tool of AWS';

/** The checked-in list of kept findings. */
export const IGNORES_FILE = join(import.meta.dirname, 'cfn-lint-ignores.json');

/** One kept finding: a rule on resources of one type, and why it stays. */
export interface IgnoredFinding {
  readonly rule: string;
  readonly resourceType: string;
  readonly reason: string;
}

/** One finding of cfn-lint, with the type of the resource it is about. */
export interface Finding {
  readonly rule: string;
  readonly level: string;
  readonly file: string;
  readonly line: number;
  readonly resource: string | undefined;
  readonly resourceType: string | undefined;
  readonly message: string;
}

/** The cfn-lint version on the PATH, or undefined when there is none. */
export function cfnLintVersion(): string | undefined {
  try {
    return execFileSync('cfn-lint', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * `describe` for tests that need cfn-lint: runs `body` when it is installed; otherwise registers one failing test
 * under `REQUIRE_CFN_LINT=1`, or skips with a note saying how to install it.
 */
export function describeWithCfnLint(name: string, body: () => void): void {
  if (cfnLintVersion() !== undefined) {
    describe(name, body);
  } else if (process.env[REQUIRE_CFN_LINT] === '1') {
    describe(name, () => {
      it(`finds cfn-lint (${REQUIRE_CFN_LINT}=1)`, () => {
        throw new Error(`cfn-lint is not on the PATH: ${CFN_LINT_INSTALL}; ${REQUIRE_CFN_LINT}=1 makes that a failure`);
      });
    });
  } else {
    console.warn(`[cfn-lint] SKIPPED ${name}: cfn-lint is not on the PATH; ${CFN_LINT_INSTALL}`);
    // biome-ignore lint/suspicious/noSkippedTests: no cfn-lint outside CI, and CI sets REQUIRE_CFN_LINT
    describe.skip(name, body);
  }
}

/** The kept findings of {@link IGNORES_FILE}; throws when an entry lacks its rule, resource type or reason. */
export function readIgnores(file = IGNORES_FILE): IgnoredFinding[] {
  const { ignore } = JSON.parse(readFileSync(file, 'utf8')) as { ignore: IgnoredFinding[] };
  for (const [i, entry] of ignore.entries()) {
    for (const key of ['rule', 'resourceType', 'reason'] as const) {
      if (typeof entry[key] !== 'string' || entry[key].trim() === '') {
        throw new Error(`${file}: ignore[${i}] needs a non-empty "${key}"`);
      }
    }
  }
  return ignore;
}

/** Every finding of cfn-lint on `templates`, in one run. */
export async function lintTemplates(templates: readonly string[]): Promise<Finding[]> {
  const output = await run('cfn-lint', ['--format', 'json', '--', ...templates], {
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (done) => done.stdout,
    // cfn-lint exits non-zero whenever it finds something: its report is still on stdout.
    (failed: { stdout?: string; stderr?: string; message: string }) => {
      if (failed.stdout === undefined || failed.stdout.trim() === '') {
        throw new Error(`cfn-lint failed: ${failed.stderr ?? failed.message}`);
      }
      return failed.stdout;
    },
  );
  const raw = JSON.parse(output) as Array<{
    Rule: { Id: string };
    Level: string;
    Filename: string;
    Message: string;
    Location: { Start: { LineNumber: number }; Path?: unknown[] };
  }>;
  const typesByFile = new Map<string, Record<string, { Type?: string }>>();
  const typeOf = (file: string, id: string | undefined): string | undefined => {
    if (id === undefined) return undefined;
    if (!typesByFile.has(file)) {
      const template = JSON.parse(readFileSync(file, 'utf8')) as { Resources?: Record<string, { Type?: string }> };
      typesByFile.set(file, template.Resources ?? {});
    }
    return typesByFile.get(file)?.[id]?.Type;
  };
  return raw.map((finding) => {
    const path = finding.Location.Path ?? [];
    const resource = path[0] === 'Resources' && typeof path[1] === 'string' ? path[1] : undefined;
    return {
      rule: finding.Rule.Id,
      level: finding.Level,
      file: finding.Filename,
      line: finding.Location.Start.LineNumber,
      resource,
      resourceType: typeOf(finding.Filename, resource),
      message: finding.Message,
    };
  });
}

/** The findings no entry of `ignores` covers. */
export function unignored(findings: readonly Finding[], ignores: readonly IgnoredFinding[]): Finding[] {
  return findings.filter(
    (finding) => !ignores.some((i) => i.rule === finding.rule && i.resourceType === finding.resourceType),
  );
}

/** A finding as one line naming the rule, the file and line, and the resource: `E3031 x.json:12 Role (...) msg`. */
export function formatFinding(finding: Finding): string {
  const where = finding.resource === undefined ? '' : ` ${finding.resource} (${finding.resourceType ?? '?'})`;
  return `${finding.rule} ${finding.file}:${finding.line}${where}: ${finding.message}`;
}
