/**
 * The model catalog on disk: every `<name>.json` of a folder, parsed with the one schema of
 * `functions/core/catalog.ts`. Used by the CDK app (`cdk deploy`) and by the local runtime (`npm start`).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCatalogEntry, type CatalogEntry } from '../core/catalog.js';

/** Sample requests uploaded next to a model (`<file>.onnx.json`) are not catalog entries. */
const SAMPLE_SUFFIX = '.onnx.json';

/**
 * Every `<name>.json` of `dir` (except `*.onnx.json` samples), parsed and defaulted, sorted by name.
 * A missing directory is an empty catalog. Throws naming the file for unreadable JSON or invalid entries.
 * @example loadCatalog('models')
 */
export function loadCatalog(dir: string): CatalogEntry[] {
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
export function resolveSeedPath(entry: CatalogEntry, dir: string): string | undefined {
  if (entry.seed === undefined) return undefined;
  return isAbsolute(entry.seed) ? entry.seed : resolve(dir, entry.seed);
}
