/** The state DB's lag facts (base/lag.ts): a few indexed reads, for status and the metrics. */
import type { LagFacts } from "../base/lag.js";
import type { StateDb } from "./db.js";

export function readLag(state: StateDb): LagFacts {
  const { db } = state;
  // From the calls_waiting index alone (status must not read the whole table: integrity.ts).
  const oldest = db
    .prepare(
      `SELECT MIN(IFNULL(call_time, '')) FROM calls INDEXED BY calls_waiting
        WHERE status IN ('pending', 'not_ready', 'failed') AND IFNULL(call_time, '') > ''`,
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
  const by = state.countsByStatus();
  const permanent = Number(
    db
      .prepare("SELECT COUNT(*) FROM calls WHERE status = 'failed' AND error_kind = 'permanent'")
      .pluck()
      .get(),
  );
  const pending = {
    pending: by.pending.count,
    not_ready: by.not_ready.count,
    failed_retryable: by.failed.count - permanent,
    failed_permanent: permanent,
  };
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
