/**
 * Timing helpers of the benchmarks. Alternatives are timed in alternating blocks, so that a burst of load from the
 * rest of the machine falls on all of them alike, and compared by their medians.
 */

/** The median of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** How {@link timeAlternating} samples. */
export interface SamplingOptions {
  /** Untimed calls of each alternative first (JIT, caches, allocator). */
  readonly warmup: number;
  /** Blocks; each alternative runs once per block, in turn. */
  readonly blocks: number;
  /** Timed calls of one alternative in a row within a block. */
  readonly perBlock: number;
}

/**
 * Times each alternative (sync or async) `blocks x perBlock` times, alternating block by block, and returns
 * every sample in milliseconds.
 */
export async function timeAlternating<K extends string>(
  alternatives: Readonly<Record<K, () => unknown>>,
  options: SamplingOptions,
): Promise<Record<K, number[]>> {
  const names = Object.keys(alternatives) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (const name of names) for (let i = 0; i < options.warmup; i++) await alternatives[name]();
  for (let block = 0; block < options.blocks; block++) {
    for (const name of names) {
      const run = alternatives[name];
      for (let i = 0; i < options.perBlock; i++) {
        const started = performance.now();
        await run();
        samples[name].push(performance.now() - started);
      }
    }
  }
  return samples;
}

/** Medians of each alternative's samples. */
export function medians<K extends string>(samples: Readonly<Record<K, readonly number[]>>): Record<K, number> {
  return Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [name, median(values as number[])]),
  ) as Record<K, number>;
}
