/** The state DB's lag facts (base/lag.ts): a few indexed reads, for status and the metrics. */
import type { LagFacts } from "../base/lag.js";
import type { StateDb } from "./db.js";

export function readLag(state: StateDb): LagFacts {
  const { db } = state;
  const oldest = db
    .prepare(
      `SELECT MIN(first_seen_at) FROM calls
        WHERE status IN ('pending', 'not_ready') OR (status = 'failed' AND error_kind IS NOT 'permanent')`,
    )
    .pluck()
    .get() as string | null;
  const lastRun = db
    .prepare(
      `SELECT finished_at AS finishedAt, outcome FROM runs
        WHERE command = 'run' AND dry_run = 0 AND finished_at IS NOT NULL
        ORDER BY finished_at DESC LIMIT 1`,
    )
    .get() as { finishedAt: string; outcome: string } | undefined;
  const lastSuccessAt = db
    .prepare(`SELECT MAX(finished_at) FROM runs WHERE command = 'run' AND dry_run = 0 AND outcome = 'ok'`)
    .pluck()
    .get() as string | null;
  const rows = db
    .prepare(
      `SELECT status, error_kind = 'permanent' AS permanent, COUNT(*) AS n FROM calls
        WHERE status IN ('pending', 'not_ready', 'failed') GROUP BY 1, 2`,
    )
    .all() as { status: string; permanent: number | null; n: number }[];
  const pending = { pending: 0, not_ready: 0, failed_retryable: 0, failed_permanent: 0 };
  for (const r of rows) {
    if (r.status === "pending") pending.pending += r.n;
    else if (r.status === "not_ready") pending.not_ready += r.n;
    else if (r.permanent) pending.failed_permanent += r.n;
    else pending.failed_retryable += r.n;
  }
  const watermark = db.prepare("SELECT value FROM meta WHERE key = 'watermark'").pluck().get() as
    string | undefined;
  return {
    oldestPendingSince: oldest ?? null,
    watermark: watermark ?? null,
    lastRun: lastRun ?? null,
    lastSuccessAt: lastSuccessAt ?? null,
    pending,
  };
}
