/**
 * `npm run conformance`: runs the shared conformance corpus through the local stack, prints one line per case and
 * a summary, and writes `conformance/results.json`. Exit code 0 when nothing mismatched or failed, 1 otherwise,
 * 2 when the corpus is not there.
 *
 * Options: `--only <substring>` keeps the cases whose `folder/name` contains it; `--category <folder>` (repeatable).
 * The corpus is read from `$CONFORMANCE_DIR`, else `../shared/conformance` next to the repository.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CATEGORIES, corpusPresent, resolveCorpusDir, type Category } from './corpus.js';
import { formatCaseLine, formatSummary, writeResults } from './report.js';
import { runConformance } from './runner.js';
import { runOneShot } from '../tools/one-shot.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, category: { type: 'string', multiple: true } },
    allowPositionals: false,
  });
  const categories = (values.category ?? []).map((c) => {
    if (!(CATEGORIES as readonly string[]).includes(c))
      throw new Error(`unknown --category ${c}; use one of ${CATEGORIES.join(', ')}`);
    return c as Category;
  });
  const corpusDir = resolveCorpusDir(repoRoot);
  if (!corpusPresent(corpusDir)) {
    console.error(`conformance corpus not found at ${corpusDir}: set CONFORMANCE_DIR to its folder`);
    return 2;
  }
  console.log(`conformance corpus: ${corpusDir}`);
  const started = Date.now();
  const only = values.only;
  const report = await runConformance({
    corpusDir,
    ...(categories.length > 0 ? { categories } : {}),
    ...(only === undefined ? {} : { filter: (c) => `${c.category}/${c.name}`.includes(only) }),
    onResult: (result) => console.log(formatCaseLine(result)),
  });
  const file = path.join(repoRoot, 'conformance', 'results.json');
  await writeResults(file, report);
  console.log(
    `\n${formatSummary(report)}\n\n${report.total} cases in ${((Date.now() - started) / 1000).toFixed(1)} s; results in ${path.relative(process.cwd(), file)}`,
  );
  return report.mismatch === 0 && report.other_failure === 0 ? 0 : 1;
}

runOneShot(main);
