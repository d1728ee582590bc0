/**
 * The shared conformance corpus on disk: where it is, which cases it holds, and the model name each case is
 * uploaded under.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isValidModelName } from '../functions/core/catalog.js';

/** The corpus folders, in the order the runner reports them. */
export const CATEGORIES = ['sklearn', 'onnx-backend', 'onnx-light', 'paddle', 'frameworks'] as const;

/** One corpus folder. */
export type Category = (typeof CATEGORIES)[number];

/** One case: a folder holding `model.onnx` and its oracle's data. */
export interface CorpusCase {
  readonly category: Category;
  readonly name: string;
  readonly dir: string;
  /** The model name the case is uploaded under: `<category>.<name>`, sanitised to the allowed pattern. */
  readonly modelName: string;
}

/** `$CONFORMANCE_DIR`, else `../shared/conformance` next to the repository (where CI has it). */
export function resolveCorpusDir(repoRoot: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.CONFORMANCE_DIR;
  return configured !== undefined && configured !== ''
    ? path.resolve(configured)
    : path.resolve(repoRoot, '../shared/conformance');
}

/**
 * The environment variable that makes a missing corpus an error: `.ci/run` sets `REQUIRE_CONFORMANCE=1`, so CI fails
 * instead of skipping when `../shared/conformance` is gone. Unset (a fresh clone), the corpus tests skip with a note.
 */
export const REQUIRE_CONFORMANCE = 'REQUIRE_CONFORMANCE';

/** True under `REQUIRE_CONFORMANCE=1`. */
export function corpusRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_CONFORMANCE] === '1';
}

/**
 * Why a test that needs the corpus cannot run, or `undefined` when it can. The caller registers a failing test with
 * this message when {@link corpusRequired}, and skips otherwise.
 */
export function missingCorpusMessage(dir: string): string | undefined {
  return corpusPresent(dir)
    ? undefined
    : `corpus not found at ${dir}: set CONFORMANCE_DIR to it (CI has it at ../shared/conformance)`;
}

/** True when `dir` looks like the corpus (at least one category folder). */
export function corpusPresent(dir: string): boolean {
  return CATEGORIES.some((category) => existsSync(path.join(dir, category)));
}

/**
 * A model name for a case: letters, digits, `_`, `.` and `-` only, starting with a letter or digit, at most 128
 * characters, no `..` (what registration accepts).
 */
export function modelNameOf(category: Category, name: string): string {
  const cleaned = `${category}.${name}`
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
  if (!isValidModelName(cleaned)) throw new Error(`cannot make a model name for ${category}/${name}`);
  return cleaned;
}

/** Every case of the corpus (folders holding a `model.onnx`), by category then name. */
export function discoverCases(corpusDir: string, categories: readonly Category[] = CATEGORIES): CorpusCase[] {
  const cases: CorpusCase[] = [];
  const used = new Set<string>();
  for (const category of categories) {
    const folder = path.join(corpusDir, category);
    if (!existsSync(folder)) continue;
    const names = readdirSync(folder, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(path.join(folder, entry.name, 'model.onnx')))
      .map((entry) => entry.name)
      .sort();
    for (const name of names) {
      let modelName = modelNameOf(category, name);
      // Two folders could sanitise to the same name; keep every case's model apart.
      for (let n = 2; used.has(modelName); n += 1) modelName = `${modelNameOf(category, name).slice(0, 120)}-${n}`;
      used.add(modelName);
      cases.push({ category, name, dir: path.join(folder, name), modelName });
    }
  }
  return cases;
}
