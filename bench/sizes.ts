/**
 * Recording sizes for the realistic mix (W5): log-normal around a median, clipped, from a fixed seed, so that
 * every round, every tree and every machine benchmarks the same bytes. And a one-line summary of a size list.
 */
import { rng } from "../simulator/data.js";

export interface LogNormalSpec {
  count: number;
  /** The median size in bytes (e^μ). */
  median: number;
  /** σ of ln(size). */
  sigma: number;
  min: number;
  max: number;
  seed: number;
}

/** `count` sizes, ln(size) ~ N(ln median, σ²) by Box–Muller over the simulator's xorshift, clipped to [min, max]. */
export function logNormalSizes(spec: LogNormalSpec): number[] {
  const next = rng(spec.seed);
  for (let i = 0; i < 8; i++) next(); // xorshift's first draws from a small seed are near 0
  const mu = Math.log(spec.median);
  const sizes: number[] = [];
  for (let i = 0; i < spec.count; i++) {
    const u1 = 1 - next(); // (0, 1]: the log is finite
    const u2 = next();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const size = Math.round(Math.exp(mu + spec.sigma * z));
    sizes.push(Math.min(spec.max, Math.max(spec.min, size)));
  }
  return sizes;
}

export interface SizeSummary {
  count: number;
  min: number;
  median: number;
  mean: number;
  p90: number;
  max: number;
  total: number;
}

/** Nearest-rank percentiles: every figure is a size that occurs in the list. */
export function summarizeSizes(sizes: readonly number[]): SizeSummary {
  if (sizes.length === 0) throw new Error("no sizes to summarize");
  const s = [...sizes].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
  const total = s.reduce((a, b) => a + b, 0);
  return {
    count: s.length,
    min: s[0]!,
    median: rank(0.5),
    mean: total / s.length,
    p90: rank(0.9),
    max: s[s.length - 1]!,
    total,
  };
}

const MB = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

export function formatSizeSummary(x: SizeSummary): string {
  return (
    `${x.count} recordings: min ${MB(x.min)}, median ${MB(x.median)}, mean ${MB(x.mean)}, p90 ${MB(x.p90)}, ` +
    `max ${MB(x.max)}; total ${x.total.toLocaleString("en-US")} bytes (${(x.total / 1024 ** 3).toFixed(2)} GiB)`
  );
}
