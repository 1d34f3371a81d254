/**
 * How far behind the archive is, as the state DB knows it (state/lag.ts reads it): the oldest recording still
 * waiting, the watermark, the last run and the last successful one, and what waits by state. Status prints it;
 * the metrics turn it into gauges whose ages are computed when scraped.
 */
export interface LagFacts {
  /** The call time of the oldest call still waiting (pending, not ready, failed); null: none. */
  oldestPendingSince: string | null;
  /** The incremental runs' watermark; null: none yet. */
  watermark: string | null;
  /** The last `run` that finished, and how. */
  lastRun: { finishedAt: string; outcome: string } | null;
  /** When the last `run` that ended "ok" finished. */
  lastSuccessAt: string | null;
  /** Calls waiting, by state. */
  pending: { pending: number; not_ready: number; failed_retryable: number; failed_permanent: number };
}

/** Seconds from an ISO time to `now` (null when there is no time). */
export function ageSeconds(iso: string | null, now: number): number | null {
  if (iso === null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : Math.max(0, Math.round((now - t) / 1000));
}
