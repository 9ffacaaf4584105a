/**
 * mulberry32: a small seeded PRNG (uniform in [0, 1)). Randomized tests draw from it with a printed seed,
 * so a failing run can be replayed exactly, and the benchmarks build their estate from it, so two runs
 * measure the same estate. It lives here, not under test/, because bench/ must not import test code.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
