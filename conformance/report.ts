/**
 * The conformance report: one line per case, a summary per corpus folder, and `conformance/results.json`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CATEGORIES, type Category } from './corpus.js';
import type { CaseResult, CaseResultKind, ConformanceReport } from './runner.js';

const LABELS: Readonly<Record<CaseResultKind, string>> = {
  served_and_matching: 'MATCH  ',
  refused_at_registration: 'REFUSED',
  mismatch: 'MISMATCH',
  other_failure: 'FAILURE',
};

/** One case as a line: result, folder/name, detail (shortened). */
export function formatCaseLine(result: CaseResult, maxDetail = 220): string {
  const detail = result.detail.length > maxDetail ? `${result.detail.slice(0, maxDetail - 1)}…` : result.detail;
  return `${LABELS[result.result]} ${result.category}/${result.name}: ${detail}`;
}

/** Counts per folder. */
export function countsByCategory(report: ConformanceReport): Record<Category, Omit<ConformanceReport, 'cases'>> {
  const out = {} as Record<Category, Omit<ConformanceReport, 'cases'>>;
  for (const category of CATEGORIES) {
    const cases = report.cases.filter((c) => c.category === category);
    const count = (kind: CaseResultKind) => cases.filter((c) => c.result === kind).length;
    out[category] = {
      total: cases.length,
      served_and_matching: count('served_and_matching'),
      refused_at_registration: count('refused_at_registration'),
      mismatch: count('mismatch'),
      other_failure: count('other_failure'),
    };
  }
  return out;
}

/** The summary table: one row per folder and a total. */
export function formatSummary(report: ConformanceReport): string {
  const header = ['folder', 'total', 'served+matching', 'refused', 'mismatch', 'other failure'];
  const rows = Object.entries(countsByCategory(report))
    .filter(([, c]) => c.total > 0)
    .map(([category, c]) => [
      category,
      c.total,
      c.served_and_matching,
      c.refused_at_registration,
      c.mismatch,
      c.other_failure,
    ]);
  rows.push([
    'all',
    report.total,
    report.served_and_matching,
    report.refused_at_registration,
    report.mismatch,
    report.other_failure,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: readonly (string | number)[]) =>
    cells.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** Writes the report as `results.json` (the format the issue specifies). */
export async function writeResults(file: string, report: ConformanceReport): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
