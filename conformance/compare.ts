/**
 * The oracles' comparison rules: scikit-learn's (decimal places and the corpus's flags, as
 * `../shared/conformance/README.md` defines them) and numpy-style `allclose` for tensors computed by ONNX backends
 * and by onnxruntime itself. Each returns the differences in words; an empty list means the outputs match.
 */
import { toNumber, type JsonTensor, type Observed, type Value } from './tensors.js';

/** Flags of a scikit-learn case. */
export type SklearnFlag = 'OneOff' | 'SkipDim1' | 'NoProb';

/** How a scikit-learn case is compared. */
export interface SklearnTolerance {
  /** Absolute tolerance `10^-decimal`. */
  readonly decimal: number;
  readonly flags: readonly SklearnFlag[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function withoutTrailingOnes(shape: readonly number[]): number[] {
  const out = [...shape];
  while (out.length > 1 && out.at(-1) === 1) out.pop();
  return out;
}

/**
 * The README's shape rule: equal, or an expected `[N]` answered as `[N, 1]` (scikit-learn squeezes, ONNX does not),
 * or, with `SkipDim1`, equal once trailing dimensions of 1 are dropped.
 */
export function sklearnShapesMatch(expected: readonly number[], actual: readonly number[], skipDim1: boolean): boolean {
  if (sameShape(expected, actual)) return true;
  if (expected.length === 1 && sameShape([...expected, 1], actual)) return true;
  return skipDim1 && sameShape(withoutTrailingOnes(expected), withoutTrailingOnes(actual));
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Differences between scikit-learn's predictions and the served outputs (in model order). */
export function sklearnProblems(
  expected: readonly JsonTensor[],
  actual: readonly Observed[],
  tolerance: SklearnTolerance,
): string[] {
  const problems: string[] = [];
  const absolute = 10 ** -tolerance.decimal;
  const compared = tolerance.flags.includes('NoProb') ? 1 : expected.length;
  for (let i = 0; i < compared; i += 1) {
    const want = expected[i];
    const got = actual[i];
    if (want === undefined) continue;
    if (got === undefined) {
      problems.push(`output ${i}: missing from the response`);
      continue;
    }
    if (!sklearnShapesMatch(want.shape, got.shape, tolerance.flags.includes('SkipDim1'))) {
      problems.push(`output ${i}: shape ${formatShape(got.shape)}, scikit-learn's is ${formatShape(want.shape)}`);
      continue;
    }
    const rowSize = want.data.length / (want.shape[0] ?? 1);
    const badRows = new Set<number>();
    let first: string | undefined;
    want.data.forEach((w, j) => {
      const g = got.values[j];
      const ok =
        want.datatype === 'BYTES'
          ? String(g) === String(w)
          : typeof g === 'number' && numbersClose(toNumber(w), g, absolute, 0);
      if (!ok) {
        badRows.add(Math.floor(j / rowSize));
        first ??= `element ${j}: expected ${String(w)}, got ${String(g)}`;
      }
    });
    const allowed = tolerance.flags.includes('OneOff') ? 1 : 0;
    if (badRows.size > allowed) {
      problems.push(
        `output ${i}: ${badRows.size} of ${want.shape[0] ?? 1} rows differ beyond 1e-${tolerance.decimal} (${first ?? ''})`,
      );
    }
  }
  return problems;
}

/** Relative and absolute tolerance of {@link allCloseProblems}: `|actual - expected| <= atol + rtol * |expected|`. */
export interface AllCloseTolerance {
  readonly rtol: number;
  readonly atol: number;
}

/** The ONNX backend test runner's defaults (onnx/backend/test/runner: `rtol=1e-3, atol=1e-7`). */
export const ONNX_BACKEND_TOLERANCE: AllCloseTolerance = { rtol: 1e-3, atol: 1e-7 };

function numbersClose(expected: number, actual: number, atol: number, rtol: number): boolean {
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual);
  if (expected === actual) return true; // infinities of the same sign
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}

const FLOAT_DATATYPES: ReadonlySet<string> = new Set(['FP16', 'FP32', 'FP64']);

/**
 * Differences between expected and actual tensors (same count, same order): shapes must be equal, floats within
 * the tolerance (NaN equals NaN), integers, booleans and strings exactly equal.
 */
export function allCloseProblems(
  expected: readonly Observed[],
  actual: readonly Observed[],
  tolerance: AllCloseTolerance,
  names: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  if (actual.length !== expected.length) {
    problems.push(`${actual.length} outputs, expected ${expected.length}`);
  }
  expected.forEach((want, i) => {
    const label = names[i] === undefined ? `output ${i}` : `output ${i} "${names[i]}"`;
    const got = actual[i];
    if (got === undefined) return;
    if (!sameShape(want.shape, got.shape)) {
      problems.push(`${label}: shape ${formatShape(got.shape)}, expected ${formatShape(want.shape)}`);
      return;
    }
    if (got.datatype !== want.datatype) {
      problems.push(`${label}: datatype ${got.datatype}, expected ${want.datatype}`);
      return;
    }
    const float = FLOAT_DATATYPES.has(want.datatype);
    let bad = 0;
    let first: string | undefined;
    want.values.forEach((w: Value, j) => {
      const g = got.values[j];
      const ok = float ? typeof g === 'number' && numbersClose(Number(w), g, tolerance.atol, tolerance.rtol) : g === w;
      if (!ok) {
        bad += 1;
        first ??= `element ${j}: expected ${String(w)}, got ${String(g)}`;
      }
    });
    if (bad > 0) {
      const within = float ? ` beyond rtol ${tolerance.rtol}, atol ${tolerance.atol}` : '';
      problems.push(`${label}: ${bad} of ${want.values.length} elements differ${within} (${first ?? ''})`);
    }
  });
  return problems;
}
