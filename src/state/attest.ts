/**
 * What the attestation report (jobs/report.ts) reads from the state DB for a window of recording days (UTC, as
 * keys and manifests use them): archived per day, calls by status, the protection the bucket showed for each
 * recording and sidecar when it was read back, the last deep verify. Each is one grouped query.
 */
import type { Window } from "../base/dates.js";
import type { StateDb } from "./db.js";
import type { RunRow } from "./types.js";

const DAY_SQL = "date(COALESCE(recording_start_time, call_time))";
const IN_WINDOW = `(@since IS NULL OR ${DAY_SQL} >= @since) AND (@until IS NULL OR ${DAY_SQL} <= @until)`;

const params = (w: Partial<Window>) => ({ since: w.startDate ?? null, until: w.endDate ?? null });

export interface DayCount {
  day: string;
  count: number;
  bytes: number;
}

/** Archived recordings per UTC day in the window, in day order. */
export function archivedPerDay(state: StateDb, w: Partial<Window>): DayCount[] {
  return state.db
    .prepare(
      `SELECT ${DAY_SQL} AS day, COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM calls
       WHERE status = 'archived' AND ${IN_WINDOW} GROUP BY day ORDER BY day`,
    )
    .all(params(w)) as DayCount[];
}

/** Calls in the window by status, failures split by kind (retryable ones are retried by the next run). */
export function callsByStatus(
  state: StateDb,
  w: Partial<Window>,
): { status: string; kind: string | null; count: number }[] {
  return state.db
    .prepare(
      `SELECT status, CASE WHEN status = 'failed' THEN error_kind END AS kind, COUNT(*) AS count FROM calls
       WHERE ${IN_WINDOW} GROUP BY status, kind ORDER BY status, kind`,
    )
    .all(params(w)) as { status: string; kind: string | null; count: number }[];
}

/** One combination of protection as read back, and how many archived recordings in the window show it. */
export interface ProtectionRow {
  lock_mode: string | null;
  legal_hold: number;
  sse: string | null;
  storage_class: string | null;
  sidecar_lock_mode: string | null;
  sidecar_legal_hold: number;
  count: number;
  earliest_retain_until: string | null;
  latest_retain_until: string | null;
}

export function protectionInWindow(state: StateDb, w: Partial<Window>): ProtectionRow[] {
  return state.db
    .prepare(
      `SELECT lock_mode, legal_hold, sse, storage_class, sidecar_lock_mode, sidecar_legal_hold, COUNT(*) AS count,
         MIN(retain_until) AS earliest_retain_until, MAX(retain_until) AS latest_retain_until
       FROM calls WHERE status = 'archived' AND ${IN_WINDOW}
       GROUP BY lock_mode, legal_hold, sse, storage_class, sidecar_lock_mode, sidecar_legal_hold
       ORDER BY count DESC`,
    )
    .all(params(w)) as ProtectionRow[];
}

/** The latest finished run of a command (e.g. "verify-deep"); undefined when there is none. */
export function lastFinished(state: StateDb, command: string): RunRow | undefined {
  return state.db
    .prepare(
      "SELECT * FROM runs WHERE command = ? AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1",
    )
    .get(command) as RunRow | undefined;
}
