/**
 * The `calls` table: one row per call the archiver has seen, with its status and, once archived, where its
 * recording is and what it is (key, SHA-256, size, version, lock). Every change is one statement or one
 * transaction.
 */
import { redactText } from "../base/redact.js";
import { isoNow, type Sql } from "./sql.js";
import { CALL_STATUSES, type ArchivedFields, type CallRow, type CallStatus } from "./types.js";

export function getCall(sql: Sql, callId: string): CallRow | undefined {
  return sql.st("SELECT * FROM calls WHERE call_id = ?").get(callId) as CallRow | undefined;
}

/** Where and what a call's row says its recording is (reconcile compares it with each listed object). */
export function storedAs(
  sql: Sql,
  callId: string,
): Pick<CallRow, "status" | "key" | "bytes" | "etag"> | undefined {
  return sql.st("SELECT status, key, bytes, etag FROM calls WHERE call_id = ?").get(callId) as
    Pick<CallRow, "status" | "key" | "bytes" | "etag"> | undefined;
}

/**
 * The finished calls a run has listed unchanged, in a temporary table: SQLite keeps it in a bounded cache and a
 * temp file, so re-listing a million archived calls writes nothing to the DB. Emptied when a new run lists.
 */
export class UnchangedListings {
  private runId: string | undefined;

  constructor(private readonly sql: Sql) {}

  /** True the first time this run lists this (unchanged, finished) call. */
  first(callId: string, runId: string): boolean {
    if (this.runId !== runId) {
      this.sql.db.exec(
        "CREATE TEMP TABLE IF NOT EXISTS listed_unchanged (call_id TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.listed_unchanged",
      );
      this.runId = runId;
    }
    return (
      this.sql.st("INSERT OR IGNORE INTO temp.listed_unchanged (call_id) VALUES (?)").run(callId).changes ===
      1
    );
  }
}

/**
 * Record a call seen in a listing. Returns its row as it stood before, and whether this run had already seen
 * it (a call can be listed twice when new calls shift pages while we page). A finished row (archived, no
 * recording) listed unchanged is not rewritten: `unchanged` remembers it instead.
 */
export function recordListed(
  sql: Sql,
  unchanged: UnchangedListings,
  listed: { callId: string; callTime: string | null; callJson: string; runId: string },
): { previous: CallRow | undefined; duplicate: boolean } {
  const { callId, callTime, callJson, runId } = listed;
  return sql.db.transaction(() => {
    const previous = getCall(sql, callId);
    if (previous?.last_run_id === runId) return { previous, duplicate: true };
    const finished = previous?.status === "archived" || previous?.status === "no_recording";
    if (finished && previous.call_time === callTime && previous.call_json === callJson)
      return { previous, duplicate: !unchanged.first(callId, runId) };
    const t = isoNow();
    sql
      .st(
        `INSERT INTO calls (call_id, call_time, call_json, first_seen_at, updated_at, last_run_id)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (call_id) DO UPDATE SET call_time = excluded.call_time, call_json = excluded.call_json,
             last_run_id = excluded.last_run_id`,
      )
      .run(callId, callTime, callJson, t, t, runId);
    return { previous, duplicate: false };
  })();
}

export function markArchived(sql: Sql, callId: string, f: ArchivedFields): void {
  const t = isoNow();
  sql
    .st(
      `UPDATE calls SET status = 'archived', error_kind = NULL, last_error = NULL, attempts = attempts + 1,
           key = ?, content_type = ?, recording_start_time = ?, duration_seconds = ?, sha256 = ?, bytes = ?,
           etag = ?, version_id = ?, archived_at = ?, updated_at = ?, lock_mode = ?, retain_until = ?,
           legal_hold = ?, storage_class = ?, sse = ?, write_proof = ?
         WHERE call_id = ?`,
    )
    .run(
      f.key,
      f.contentType,
      f.recordingStartTime,
      f.durationSeconds,
      f.sha256,
      f.bytes,
      f.etag,
      f.versionId,
      t,
      t,
      f.lockMode ?? null,
      f.retainUntil ?? null,
      f.legalHold ? 1 : 0,
      f.storageClass ?? null,
      f.sse ?? null,
      f.writeProof ?? null,
      callId,
    );
}

/** Record a call as archived from what S3 holds (reconcile), creating its row when the DB has none. */
export function adoptArchived(
  sql: Sql,
  call: { callId: string; callTime: string | null; callJson: string },
  f: ArchivedFields,
): "adopted" | "unchanged" {
  const { callId, callTime, callJson } = call;
  return sql.db.transaction(() => {
    const row = getCall(sql, callId);
    if (row?.status === "archived" && row.sha256 === f.sha256 && row.key === f.key)
      return "unchanged" as const;
    const t = isoNow();
    sql
      .st(
        `INSERT INTO calls (call_id, call_time, call_json, first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (call_id) DO NOTHING`,
      )
      .run(callId, callTime, callJson, t, t);
    markArchived(sql, callId, f);
    return "adopted" as const;
  })();
}

/** Any status but archived, with the error that led to it (redacted); an archived row keeps its status. */
export function markStatus(
  sql: Sql,
  callId: string,
  status: Exclude<CallStatus, "archived">,
  error?: { kind: string; message: string },
): void {
  sql
    .st(
      `UPDATE calls SET status = ?, error_kind = ?, last_error = ?, attempts = attempts + 1, updated_at = ?
         WHERE call_id = ? AND status <> 'archived'`,
    )
    .run(status, error?.kind ?? null, error ? redactText(error.message) : null, isoNow(), callId);
}

/** What `verify` found wrong with an archived recording: the next run archives it again from the source. */
export type RepairKind = "verify_missing" | "verify_altered";

/**
 * An archived recording that `verify` found missing or altered goes back to pending, with what was found, so
 * that the next run archives it again from the source (its key, SHA-256 and evidence stay as they were until then).
 * False when the row was not archived (nothing to mark).
 */
export function markForRepair(sql: Sql, callId: string, kind: RepairKind, message: string): boolean {
  return (
    sql
      .st(
        `UPDATE calls SET status = 'pending', error_kind = ?, last_error = ?, updated_at = ?
           WHERE call_id = ? AND status = 'archived'`,
      )
      .run(kind, redactText(message), isoNow(), callId).changes === 1
  );
}

/** The repair a call is waiting for, if `verify` marked it (markForRepair). */
export function repairOf(sql: Sql, callId: string): RepairKind | undefined {
  const kind = sql
    .st("SELECT error_kind FROM calls WHERE call_id = ? AND status = 'pending'")
    .pluck()
    .get(callId);
  return kind === "verify_missing" || kind === "verify_altered" ? kind : undefined;
}

/** A failed call as `status` lists it: what failed, how often, when last. */
export interface FailedCall {
  call_id: string;
  error_kind: string | null;
  last_error: string | null;
  attempts: number;
  updated_at: string;
}

/** The failed calls, latest first (permanent failures stay until a run with --retry-failed archives them). */
export function failedCalls(sql: Sql, limit: number): { permanent: number; recent: FailedCall[] } {
  const permanent = sql
    .st("SELECT COUNT(*) FROM calls WHERE status = 'failed' AND error_kind = 'permanent'")
    .pluck()
    .get() as number;
  const recent = sql
    .st(
      `SELECT call_id, error_kind, last_error, attempts, updated_at FROM calls WHERE status = 'failed'
         ORDER BY updated_at DESC, call_id LIMIT ?`,
    )
    .all(limit) as FailedCall[];
  return { permanent, recent };
}

export function countsByStatus(sql: Sql): Record<CallStatus, { count: number; bytes: number }> {
  const out = Object.fromEntries(CALL_STATUSES.map((s) => [s, { count: 0, bytes: 0 }])) as Record<
    CallStatus,
    { count: number; bytes: number }
  >;
  const rows = sql
    .st("SELECT status, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM calls GROUP BY status")
    .all() as { status: CallStatus; n: number; b: number }[];
  for (const r of rows) out[r.status] = { count: r.n, bytes: r.b };
  return out;
}

/** Archived recordings by how their bytes were proven (write_proof; "unproven" for NULL). */
export function countsByProof(sql: Sql): Record<string, number> {
  const rows = sql
    .st(
      "SELECT COALESCE(write_proof, 'unproven') AS proof, COUNT(*) AS n FROM calls WHERE status = 'archived' GROUP BY 1",
    )
    .all() as { proof: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.proof, r.n]));
}

/** A legal hold as read back from the bucket after `hold`: the recorded version's, and its sidecar's. */
export function recordHold(
  sql: Sql,
  callId: string,
  recording: boolean | null,
  sidecar: boolean | null,
): void {
  const bit = (v: boolean | null) => (v === null ? null : v ? 1 : 0);
  sql
    .st(
      `UPDATE calls SET legal_hold = COALESCE(?, legal_hold), sidecar_legal_hold = COALESCE(?, sidecar_legal_hold),
         updated_at = ? WHERE call_id = ?`,
    )
    .run(bit(recording), bit(sidecar), isoNow(), callId);
}

/** Archived recordings whose recorded version is on legal hold (calls_on_hold, migration 012). */
export function countOnHold(sql: Sql): number {
  return sql
    .st("SELECT COUNT(*) FROM calls WHERE status = 'archived' AND legal_hold = 1")
    .pluck()
    .get() as number;
}
