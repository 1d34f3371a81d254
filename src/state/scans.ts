/**
 * Queries that walk many calls, paged by key (keyset): each page continues after the last row of the one before
 * along an index in the order it is read, so a million rows cost a million index steps, never a sort of the table
 * or a re-read of earlier pages. Pages are read whole (no SQLite cursor stays open while callers await), and only
 * the columns used are selected. test/unit/scans.test.ts checks each plan (migrations/006_keyset_indexes.sql).
 */
import type { Window } from "../base/dates.js";
import type { CallRow, StateDb } from "./db.js";

const PAGE = 500;

/** The recording's day (UTC) as used in its key: recording start, or the call's time. */
const DAY_SQL = "date(COALESCE(recording_start_time, call_time))";
export const IN_WINDOW = `(@since IS NULL OR ${DAY_SQL} >= @since) AND (@until IS NULL OR ${DAY_SQL} <= @until)`;

/** What manifest and verify read of an archived recording. */
export type ArchivedRow = Pick<
  CallRow,
  | "call_id"
  | "key"
  | "bytes"
  | "sha256"
  | "content_type"
  | "recording_start_time"
  | "duration_seconds"
  | "archived_at"
  | "etag"
  | "version_id"
  | "lock_mode"
  | "retain_until"
  | "legal_hold"
  | "storage_class"
  | "sse"
  | "tags"
  | "sidecar_version_id"
  | "sidecar_etag"
  | "sidecar_lock_mode"
  | "sidecar_retain_until"
  | "sidecar_legal_hold"
> & { key: string; bytes: number; sha256: string };

const ARCHIVED_COLUMNS =
  "call_id, key, bytes, sha256, content_type, recording_start_time, duration_seconds, archived_at, etag, " +
  "version_id, lock_mode, retain_until, legal_hold, storage_class, sse, tags, sidecar_version_id, sidecar_etag, " +
  "sidecar_lock_mode, sidecar_retain_until, sidecar_legal_hold";

export const SCAN_SQL = {
  /** In call-id order along the primary key (`+status`: not the status index, which would need a sort). */
  archivedByCallId: `SELECT ${ARCHIVED_COLUMNS} FROM calls
     WHERE call_id > @after AND +status = 'archived' AND ${IN_WINDOW}
     ORDER BY call_id LIMIT ${PAGE}`,
  /** As archivedByCallId, with the call as listed (or as its sidecar gave it): what a selection filters on. */
  archivedWithCall: `SELECT ${ARCHIVED_COLUMNS}, call_json FROM calls
     WHERE call_id > @after AND +status = 'archived' AND ${IN_WINDOW}
     ORDER BY call_id LIMIT ${PAGE}`,
  /**
   * In key order (the order of a bucket listing), along calls_archived_key. INDEXED BY: without statistics the
   * planner would rather take calls_status_bytes and sort; this also fails loudly if the index were gone.
   */
  archivedByKey: `SELECT ${ARCHIVED_COLUMNS} FROM calls INDEXED BY calls_archived_key
     WHERE status = 'archived' AND key > @after AND ${IN_WINDOW}
     ORDER BY key LIMIT ${PAGE}`,
  /**
   * A window's archived recordings only, along calls_archived_day: by day, then key (within a prefix, the order
   * of a bucket listing). The day's bound beside the row value, as for `waiting` below.
   */
  archivedInWindow: `SELECT ${ARCHIVED_COLUMNS}, ${DAY_SQL} AS day FROM calls INDEXED BY calls_archived_day
     WHERE status = 'archived' AND ${DAY_SQL} >= @since AND ${DAY_SQL} <= @until
       AND ${DAY_SQL} >= @d AND (${DAY_SQL}, key) > (@d, @k)
     ORDER BY ${DAY_SQL}, key LIMIT ${PAGE}`,
  /** As archivedInWindow, with the call's JSON (a selection in a window). */
  archivedInWindowWithCall: `SELECT ${ARCHIVED_COLUMNS}, call_json, ${DAY_SQL} AS day FROM calls INDEXED BY calls_archived_day
     WHERE status = 'archived' AND ${DAY_SQL} >= @since AND ${DAY_SQL} <= @until
       AND ${DAY_SQL} >= @d AND (${DAY_SQL}, key) > (@d, @k)
     ORDER BY ${DAY_SQL}, key LIMIT ${PAGE}`,
  /**
   * Calls still waiting, newest first, along calls_waiting (INDEXED BY: as above). SQLite does not take a row value
   * over an expression index as a range, hence the first column's bound besides it.
   */
  waiting: `SELECT call_id, call_json, IFNULL(call_time, '') AS t FROM calls INDEXED BY calls_waiting
     WHERE status IN ('pending', 'not_ready', 'failed')
       AND IFNULL(call_time, '') <= @t AND (IFNULL(call_time, ''), call_id) < (@t, @id)
       AND (last_run_id IS NULL OR last_run_id <> @runId)
       AND (status <> 'failed' OR error_kind <> 'permanent' OR @retryFailed)
     ORDER BY IFNULL(call_time, '') DESC, call_id DESC LIMIT ${PAGE}`,
  /**
   * Archived recordings that `verify` found missing or altered and no run has archived again yet (pending, with
   * what was found), along calls_waiting: as few as there are waiting calls.
   */
  awaitingRepair: `SELECT ${ARCHIVED_COLUMNS}, IFNULL(call_time, '') AS t FROM calls INDEXED BY calls_waiting
     WHERE status IN ('pending', 'not_ready', 'failed')
       AND IFNULL(call_time, '') <= @t AND (IFNULL(call_time, ''), call_id) < (@t, @id)
       AND status = 'pending' AND error_kind IN ('verify_missing', 'verify_altered')
       AND key IS NOT NULL AND sha256 IS NOT NULL AND bytes IS NOT NULL AND ${IN_WINDOW}
     ORDER BY IFNULL(call_time, '') DESC, call_id DESC LIMIT ${PAGE}`,
} as const;

/** Recordings `verify` marked missing or altered that are still waiting for a run to archive them again. */
export function* awaitingRepair(state: StateDb, window: Partial<Window> = {}): Generator<ArchivedRow> {
  const stmt = state.db.prepare(SCAN_SQL.awaitingRepair);
  const w = { since: window.startDate ?? null, until: window.endDate ?? null };
  let t: string | Buffer = Buffer.alloc(0);
  let id = "";
  for (;;) {
    const rows = stmt.all({ t, id, ...w }) as (ArchivedRow & { t: string })[];
    if (rows.length === 0) return;
    for (const { t: _t, ...row } of rows) yield row;
    ({ t, call_id: id } = rows[rows.length - 1]!);
  }
}

/** A window's rows only, by day then key (a window with neither end is every row: see `archived`). */
function* inWindow(state: StateDb, sql: string, window: Partial<Window>): Generator<ArchivedRow> {
  const stmt = state.db.prepare(sql);
  const w = { since: window.startDate ?? "0000-00-00", until: window.endDate ?? "9999-12-31" };
  for (let d = "", k = ""; ;) {
    const rows = stmt.all({ d, k, ...w }) as (ArchivedRow & { day: string })[];
    if (rows.length === 0) return;
    for (const { day: _day, ...row } of rows) yield row as ArchivedRow;
    ({ day: d, key: k } = rows[rows.length - 1]!);
  }
}

function* archived(
  state: StateDb,
  sql: string,
  by: "call_id" | "key",
  window: Partial<Window>,
  windowed: string = SCAN_SQL.archivedInWindow,
): Generator<ArchivedRow> {
  if (window.startDate || window.endDate) {
    yield* inWindow(state, windowed, window);
    return;
  }
  const stmt = state.db.prepare(sql);
  const w = { since: window.startDate ?? null, until: window.endDate ?? null };
  for (let after = ""; ;) {
    const rows = stmt.all({ after, ...w }) as ArchivedRow[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]![by];
  }
}

/**
 * Archived recordings in call-id order (the manifest's order: the same DB content gives the same file); with a
 * window, only its rows, by day then key.
 */
export const archivedByCallId = (state: StateDb, window: Partial<Window> = {}) =>
  archived(state, SCAN_SQL.archivedByCallId, "call_id", window);

/** Archived recordings with their call's JSON, in call-id order (export and hold select from these). */
export const archivedWithCall = (state: StateDb, window: Partial<Window> = {}) =>
  archived(
    state,
    SCAN_SQL.archivedWithCall,
    "call_id",
    window,
    SCAN_SQL.archivedInWindowWithCall,
  ) as Generator<ArchivedRow & { call_json: string }>;

/** Archived recordings in key order (byte order, as S3 lists keys). */
export const archivedByKey = (state: StateDb, window: Partial<Window> = {}) =>
  archived(state, SCAN_SQL.archivedByKey, "key", window);

/**
 * Calls from earlier runs still waiting (pending, not ready, failed retryably; permanent failures too with
 * `retryFailed`) that this run has not listed, newest first. Each is yielded once even when its status changes
 * while the caller works through them.
 */
export function* waitingCalls(
  state: StateDb,
  runId: string,
  retryFailed: boolean,
): Generator<{ call_id: string; call_json: string }> {
  const stmt = state.db.prepare(SCAN_SQL.waiting);
  // An empty BLOB sorts after every TEXT value in SQLite: the first page starts above every row.
  let t: string | Buffer = Buffer.alloc(0);
  let id = "";
  for (;;) {
    const rows = stmt.all({ t, id, runId, retryFailed: retryFailed ? 1 : 0 }) as {
      call_id: string;
      call_json: string;
      t: string;
    }[];
    if (rows.length === 0) return;
    for (const r of rows) yield { call_id: r.call_id, call_json: r.call_json };
    ({ t, call_id: id } = rows[rows.length - 1]!);
  }
}
