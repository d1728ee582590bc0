/**
 * Reads the model catalog (`models/<name>.json`) for the CDK app. The schema and its defaults live in
 * `functions/core/catalog.ts`; this file only finds the files and resolves seed paths.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCatalogEntry, type CatalogEntry } from '../functions/core/catalog.js';
import { REPO_ROOT } from './service-function.js';

/** The catalog directory of the repository. */
export const DEFAULT_MODELS_DIR = join(REPO_ROOT, 'models');

/** Sample requests uploaded next to a model (`<file>.onnx.json`) are not catalog entries. */
const SAMPLE_SUFFIX = '.onnx.json';

/**
 * Every `<name>.json` of `dir` (except `*.onnx.json` samples), parsed and defaulted, sorted by name.
 * A missing directory is an empty catalog. Throws naming the file for unreadable JSON or invalid entries.
 * @example loadCatalog() // the repository's models/
 */
export function loadCatalog(dir: string = DEFAULT_MODELS_DIR): CatalogEntry[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json') && !file.endsWith(SAMPLE_SUFFIX))
    .sort()
    .map((file) => {
      const name = file.slice(0, -'.json'.length);
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      } catch (cause) {
        throw new Error(`models/${file} is not valid JSON: ${(cause as Error).message}`, { cause });
      }
      return parseCatalogEntry(name, json);
    });
}

/**
 * The absolute path of an entry's seed file: `seed` is relative to the catalog directory it was declared in.
 * Undefined when the entry has no seed.
 */
export function resolveSeedPath(entry: CatalogEntry, modelsDir: string = DEFAULT_MODELS_DIR): string | undefined {
  if (entry.seed === undefined) return undefined;
  return isAbsolute(entry.seed) ? entry.seed : resolve(modelsDir, entry.seed);
}
