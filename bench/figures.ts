/**
 * What the realization benchmarks (realize.ts, agent.ts) share: progress on stderr, medians and p99s,
 * and the figures they record (name → value, unit, target) for their JSON results.
 */
export const now = (): number => performance.now();
export const log = (s: string): void => void process.stderr.write(`${s}\n`);
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)]!;

export type Figures = Record<string, { value: number; unit: string; target?: string }>;

/** Figures recorded in one run, each printed as it comes. */
export function figures(): { results: Figures; record: (name: string, value: number, unit: string, target?: string) => void } {
  const results: Figures = {};
  const record = (name: string, value: number, unit: string, target?: string) => {
    results[name] = { value: Math.round(value * 100) / 100, unit, ...(target ? { target } : {}) };
    log(`${name.padEnd(48)} ${results[name]!.value} ${unit}${target ? `  (target ${target})` : ''}`);
  };
  return { results, record };
}
