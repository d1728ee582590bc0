/**
 * The model catalog (`models/<name>.json`) for the CDK app: the repository's `models/` by default. Reading and
 * parsing live in `functions/adapters/catalog-files.ts`, shared with `npm start`.
 */
import { join } from 'node:path';
import * as catalogFiles from '../functions/adapters/catalog-files.js';
import type { CatalogEntry } from '../functions/core/catalog.js';
import { REPO_ROOT } from './service-function.js';

/** The catalog directory of the repository. */
export const DEFAULT_MODELS_DIR = join(REPO_ROOT, 'models');

/**
 * Every catalog entry of `dir`, sorted by name (see `catalogFiles.loadCatalog`).
 * @example loadCatalog() // the repository's models/
 */
export function loadCatalog(dir: string = DEFAULT_MODELS_DIR): CatalogEntry[] {
  return catalogFiles.loadCatalog(dir);
}

/** The absolute path of an entry's seed file, relative to the catalog directory it was declared in. */
export function resolveSeedPath(entry: CatalogEntry, modelsDir: string = DEFAULT_MODELS_DIR): string | undefined {
  return catalogFiles.resolveSeedPath(entry, modelsDir);
}
