/**
 * Durations and sizes as a user writes them, rclone's way: `50m`, `1h30m`, `90s`, `2d`; `200G`, `512M`, `1.5T`,
 * `10K` (binary multiples: 1K = 1024 bytes; a bare number is bytes, or seconds). Pure.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** Milliseconds of `50m`, `1h30m`, `90s`, `2d`, `500ms` or a bare number of seconds; null when not one. */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) return null;
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return Math.round(ms);
}

/** Bytes of `200G`, `512M`, `1.5T`, `10k`, `20MiB`, `100` (bytes); null when not one. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$/.exec(text.trim().toLowerCase());
  if (!m) return null;
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2] || "b"]!);
}

/** A duration as a person reads it: 3000000 → "50m", 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, n] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join("");
}
