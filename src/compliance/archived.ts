/** Archived recordings from the state DB, in call-id order, in batches (no cursor held across awaits). */
import type { StateDb, CallRow } from "../state/db.js";
import type { Window } from "../dates.js";

const BATCH = 500;

/** The recording's day (UTC) as used in its key: recording start, or the call's time. */
const DAY_SQL = "date(COALESCE(recording_start_time, call_time))";

export function* archivedRows(state: StateDb, window: Partial<Window> = {}): Generator<CallRow> {
  const stmt = state.db.prepare(
    `SELECT * FROM calls WHERE status = 'archived' AND call_id > ?
       AND (? IS NULL OR ${DAY_SQL} >= ?) AND (? IS NULL OR ${DAY_SQL} <= ?)
     ORDER BY call_id LIMIT ${BATCH}`,
  );
  const since = window.startDate ?? null;
  const until = window.endDate ?? null;
  let after = "";
  for (;;) {
    const rows = stmt.all(after, since, since, until, until) as CallRow[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]!.call_id;
  }
}
