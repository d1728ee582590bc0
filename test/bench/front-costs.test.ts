/**
 * The cost table of docs/fronts.md is tools/front-costs.ts's output for the bench's measured workload (so its
 * numbers cannot drift from the price table), the arithmetic holds on hand-computed cases, and the cheapest front is
 * at or below SageMaker Serverless Inference at the same memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/service-function.js';
import { BENCH_LIGHT_MODEL, frontCosts, PRICES, renderCostTable } from '../../tools/front-costs.js';

describe('the cost per million of each front', () => {
  it('is the table docs/fronts.md shows, byte for byte', () => {
    const docs = readFileSync(join(REPO_ROOT, 'docs', 'fronts.md'), 'utf8');
    const start = docs.indexOf('<!-- front-costs:start -->\n');
    const end = docs.indexOf('\n<!-- front-costs:end -->');
    expect(start).toBeGreaterThan(0);
    expect(docs.slice(start + '<!-- front-costs:start -->\n'.length, end)).toBe(renderCostTable());
  });

  it('bills Lambda per ms of GB, the HTTP API per 512 KB, and nothing for a function URL', () => {
    const rows = frontCosts({ ...BENCH_LIGHT_MODEL, memoryMb: 2048, durationMs: 99.2, requestBytes: 100_000 });
    const restArm = rows.find((r) => r.front.startsWith('REST') && r.architecture === 'arm64')!;
    // 2 GB x 0.100 s (99.2 ms billed as 100 ms) x $0.0000133334 per GB-s, per million: $2.67.
    expect(restArm.compute).toBeCloseTo(2 * 0.1 * 13.3334, 6);
    expect(restArm.frontDoor).toBe(3.5);
    const httpArm = rows.find((r) => r.front.startsWith('HTTP API') && r.architecture === 'arm64')!;
    expect(httpArm.frontDoor).toBe(1); // 100 KB: one metered unit
    expect(frontCosts(BENCH_LIGHT_MODEL).find((r) => r.front.startsWith('HTTP API'))!.frontDoor).toBe(2); // 602 KB
    const url = rows.find((r) => r.front.startsWith('function URL (') && r.architecture === 'x86_64')!;
    expect(url.frontDoor).toBe(0);
    expect(url.compute).toBeCloseTo(2 * 0.1 * 16.6667, 6);
    expect(url.total).toBeCloseTo(url.compute + PRICES.lambdaPerMillionRequests + url.dataTransfer, 9);
  });

  it('has a front at or below SageMaker Serverless at the same memory for the bench model', () => {
    const rows = frontCosts();
    const sageMaker = rows.find((r) => r.front.includes('same memory'))!;
    const cheapest = rows.filter((r) => !r.front.startsWith('SageMaker')).sort((a, b) => a.total - b.total)[0]!;
    expect(cheapest.front).toMatch(/^function URL \(/);
    expect(cheapest.architecture).toBe('arm64');
    expect(cheapest.total).toBeLessThanOrEqual(sageMaker.total);
    // Even against SageMaker's compute alone (no data processing charge), the cheapest front is not dearer.
    expect(cheapest.total).toBeLessThanOrEqual(sageMaker.compute + sageMaker.dataTransfer);
  });
});
