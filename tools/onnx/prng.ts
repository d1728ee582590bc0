/**
 * A seeded pseudo-random generator (mulberry32) for generated weights: the same seed gives the same model bytes on
 * every machine, so generated example models can be committed and checked against a fresh build.
 */

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed`. */
export function createPrng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` floats uniform in [-scale, scale), rounded to float32, drawn from `random`. */
export function uniformFloat32(random: () => number, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}
