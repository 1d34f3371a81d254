/**
 * What the state knows of one UTC day of calls (the day of `call_time`, as Envoy's start_date/end_date filter
 * them): how many of its calls are in each status. One covering index search a day (calls_call_day, migration
 * 010), so a day costs the calls it has, never a scan of the table.
 */
import type { Sql } from "./sql.js";
import { CALL_STATUSES, type CallStatus } from "./types.js";

export const DAY_SQL = "SELECT status, COUNT(*) AS n FROM calls WHERE date(call_time) = ? GROUP BY status";

export function knownOnDay(sql: Sql, day: string): Record<CallStatus, number> {
  const out = Object.fromEntries(CALL_STATUSES.map((s) => [s, 0])) as Record<CallStatus, number>;
  for (const r of sql.st(DAY_SQL).all(day) as { status: CallStatus; n: number }[]) out[r.status] = r.n;
  return out;
}
