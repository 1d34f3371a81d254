/**
 * The state DB: SQLite in WAL mode through better-sqlite3. The schema lives in migrations/NNN_name.sql, applied in
 * order and recorded in schema_migrations. Every state transition is one statement or one transaction, so a run
 * killed at any instant leaves either the old state or the new one, never half of each.
 */
import Database from "better-sqlite3";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { userInfo } from "node:os";
import { packageRoot } from "../base/paths.js";
import { ArchiverError } from "../base/errors.js";
import { redactText } from "../base/redact.js";
import { checkSchemaVersion, stateDbOpenError } from "./schema-guard.js";
import type { ResumableUpload, StoredPart } from "../s3/s3.js";
import type { EvidenceColumns } from "./evidence.js";

export type CallStatus = "pending" | "archived" | "not_ready" | "no_recording" | "failed";
export const CALL_STATUSES: readonly CallStatus[] = [
  "archived",
  "pending",
  "not_ready",
  "no_recording",
  "failed",
];

export interface CallRow extends EvidenceColumns {
  call_id: string;
  call_time: string | null;
  call_json: string;
  status: CallStatus;
  error_kind: string | null;
  last_error: string | null;
  attempts: number;
  key: string | null;
  content_type: string | null;
  recording_start_time: string | null;
  duration_seconds: number | null;
  sha256: string | null;
  bytes: number | null;
  etag: string | null;
  version_id: string | null;
  lock_mode: string | null;
  retain_until: string | null;
  legal_hold: number;
  storage_class: string | null;
  sse: string | null;
  first_seen_at: string;
  updated_at: string;
  archived_at: string | null;
  last_run_id: string | null;
}

export interface RunCounts {
  listed: number;
  archived: number;
  already_archived: number;
  not_ready: number;
  no_recording: number;
  failed: number;
  bytes: number;
}

export interface RunRow extends RunCounts {
  id: string;
  command: string;
  mode: string;
  window_start: string | null;
  window_end: string | null;
  dry_run: number;
  started_at: string;
  finished_at: string | null;
  outcome: string;
  error: string | null;
  pid: number | null;
  host: string | null;
  archiver_version: string | null;
  config_fingerprint: string | null;
  actor: string | null;
  details: string | null;
}

export interface LockHolder {
  run_id: string;
  pid: number;
  host: string;
  acquired_at: string;
  heartbeat_at: string;
}

export interface ArchivedFields {
  key: string;
  contentType: string;
  recordingStartTime: string | null;
  durationSeconds: number | null;
  sha256: string;
  bytes: number;
  etag: string | null;
  versionId: string | null;
  lockMode?: string | null;
  retainUntil?: string | null;
  legalHold?: boolean;
  storageClass?: string | null;
  sse?: string | null;
}

const now = () => new Date().toISOString();

/** State changes are committed together this often by a run or reconcile (startGroupCommit). */
export const GROUP_COMMIT_MS = 200;

/** Is a process on this host alive? (EPERM: alive, owned by another user.) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Who ran a command, for the audit trail: the OS user and host. */
function actor(host: string): string {
  let user = process.env.USER ?? process.env.LOGNAME ?? "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers running as an arbitrary uid): keep the environment's answer
  }
  return `${user}@${host}`;
}

export class StateDb {
  readonly db: Database.Database;

  private readonly statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Prepared statements are compiled once per connection. */
  private st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Open (creating if needed) and migrate. A file that is not a usable SQLite DB is a fatal error. The integrity
   * check that reads the whole DB is not done here: see integrity.ts for where it runs.
   */
  static open(path: string): StateDb {
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      const db = new Database(path, { timeout: 5000 });
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      const state = new StateDb(db);
      state.migrate();
      return state;
    } catch (err) {
      if (err instanceof ArchiverError) throw err;
      throw stateDbOpenError(path, err);
    }
  }

  private migrate(): void {
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    );
    const applied = new Set(
      this.db
        .prepare("SELECT version FROM schema_migrations")
        .pluck()
        .all()
        .map((v) => Number(v)),
    );
    const dir = join(packageRoot(), "migrations");
    const files = readdirSync(dir)
      .filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f))
      .sort();
    checkSchemaVersion(this.db, applied, files);
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      if (applied.has(version)) continue;
      const sql = readFileSync(join(dir, file), "utf8");
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db
          .prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
          .run(version, file, now());
      })();
    }
  }

  private groupCommit: NodeJS.Timeout | undefined;

  /**
   * Group commit: from now on, state changes are committed together every `intervalMs` instead of one commit
   * each (a WAL write apiece, the largest state cost of a run of small recordings). Other processes see them at
   * the next commit. A kill loses at most the last interval's changes, which the next run redoes: a recording
   * whose "archived" was lost is found in S3 and adopted (same SHA-256), not uploaded again. Nested transactions
   * become savepoints.
   */
  startGroupCommit(intervalMs: number): void {
    if (this.groupCommit) return;
    this.db.exec("BEGIN");
    this.groupCommit = setInterval(() => {
      try {
        this.commitNow();
      } catch {
        // Busy (another process writing): still open, the next tick or stopGroupCommit commits.
      }
    }, intervalMs);
    this.groupCommit.unref();
  }

  private commitNow(): void {
    if (this.db.inTransaction) this.db.exec("COMMIT");
    this.db.exec("BEGIN");
  }

  /** Make what is pending durable now (before a step whose outcome a kill must not lose). */
  flush(): void {
    if (!this.groupCommit) return;
    try {
      this.commitNow();
    } catch {
      // Busy (another process writing): the next tick commits.
    }
  }

  /** Commit what is pending and go back to one commit per change. */
  stopGroupCommit(): void {
    if (!this.groupCommit) return;
    clearInterval(this.groupCommit);
    this.groupCommit = undefined;
    if (this.db.inTransaction) this.db.exec("COMMIT");
  }

  close(): void {
    if (!this.db.open) return;
    this.stopGroupCommit();
    this.db.close();
  }

  // ---- runs -------------------------------------------------------------------------------------------------

  startRun(run: {
    id: string;
    command: string;
    mode: string;
    windowStart: string | null;
    windowEnd: string | null;
    dryRun: boolean;
    version: string;
    configFingerprint: string;
    host: string;
  }): void {
    this.db
      .prepare(
        `INSERT INTO runs (id, command, mode, window_start, window_end, dry_run, started_at, pid, host, archiver_version, config_fingerprint, actor)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        run.id,
        run.command,
        run.mode,
        run.windowStart,
        run.windowEnd,
        run.dryRun ? 1 : 0,
        now(),
        process.pid,
        run.host,
        run.version,
        run.configFingerprint,
        actor(run.host),
      );
  }

  finishRun(id: string, counts: RunCounts, outcome: string, error: string | null, details?: unknown): void {
    this.db
      .prepare(
        `UPDATE runs SET finished_at = ?, outcome = ?, error = ?, listed = ?, archived = ?, already_archived = ?,
           not_ready = ?, no_recording = ?, failed = ?, bytes = ?, details = ? WHERE id = ?`,
      )
      .run(
        now(),
        outcome,
        error === null ? null : redactText(error),
        counts.listed,
        counts.archived,
        counts.already_archived,
        counts.not_ready,
        counts.no_recording,
        counts.failed,
        counts.bytes,
        details === undefined ? null : redactText(JSON.stringify(details)),
        id,
      );
  }

  recentRuns(limit: number): RunRow[] {
    return this.db
      .prepare("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?")
      .all(limit) as RunRow[];
  }

  getMeta(key: string): string | null {
    const v = this.db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(key);
    return typeof v === "string" ? v : null;
  }

  setMeta(key: string, value: string): void {
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .run(key, value);
  }

  // ---- calls ------------------------------------------------------------------------------------------------

  getCall(callId: string): CallRow | undefined {
    return this.st("SELECT * FROM calls WHERE call_id = ?").get(callId) as CallRow | undefined;
  }

  /**
   * Record a call seen in a listing. Returns its row as it stood before, and whether this run had already seen
   * it (a call can be listed twice when new calls shift pages while we page). A finished row (archived, no
   * recording) listed unchanged is not rewritten: the run remembers it in a temporary table instead, which SQLite
   * keeps in a bounded cache and a temp file, so re-listing a million archived calls writes nothing to the DB.
   */
  recordListed(
    callId: string,
    callTime: string | null,
    callJson: string,
    runId: string,
  ): { previous: CallRow | undefined; duplicate: boolean } {
    return this.db.transaction(() => {
      const previous = this.getCall(callId);
      if (previous?.last_run_id === runId) return { previous, duplicate: true };
      const finished = previous?.status === "archived" || previous?.status === "no_recording";
      if (finished && previous.call_time === callTime && previous.call_json === callJson)
        return { previous, duplicate: !this.firstListing(callId, runId) };
      const t = now();
      this.st(
        `INSERT INTO calls (call_id, call_time, call_json, first_seen_at, updated_at, last_run_id)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (call_id) DO UPDATE SET call_time = excluded.call_time, call_json = excluded.call_json,
             last_run_id = excluded.last_run_id`,
      ).run(callId, callTime, callJson, t, t, runId);
      return { previous, duplicate: false };
    })();
  }

  private listingRun: string | undefined;

  /** True the first time this run lists this (unchanged, finished) call. */
  private firstListing(callId: string, runId: string): boolean {
    if (this.listingRun !== runId) {
      this.db.exec(
        "CREATE TEMP TABLE IF NOT EXISTS listed_unchanged (call_id TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.listed_unchanged",
      );
      this.listingRun = runId;
    }
    return (
      this.st("INSERT OR IGNORE INTO temp.listed_unchanged (call_id) VALUES (?)").run(callId).changes === 1
    );
  }

  markArchived(callId: string, f: ArchivedFields): void {
    const t = now();
    this.st(
      `UPDATE calls SET status = 'archived', error_kind = NULL, last_error = NULL, attempts = attempts + 1,
           key = ?, content_type = ?, recording_start_time = ?, duration_seconds = ?, sha256 = ?, bytes = ?,
           etag = ?, version_id = ?, archived_at = ?, updated_at = ?, lock_mode = ?, retain_until = ?,
           legal_hold = ?, storage_class = ?, sse = ?
         WHERE call_id = ?`,
    ).run(
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
      callId,
    );
  }

  /** Record a call as archived from what S3 holds (reconcile), creating its row when the DB has none. */
  adoptArchived(
    callId: string,
    callTime: string | null,
    callJson: string,
    f: ArchivedFields,
  ): "adopted" | "unchanged" {
    return this.db.transaction(() => {
      const row = this.getCall(callId);
      if (row?.status === "archived" && row.sha256 === f.sha256 && row.key === f.key)
        return "unchanged" as const;
      const t = now();
      this.st(
        `INSERT INTO calls (call_id, call_time, call_json, first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (call_id) DO NOTHING`,
      ).run(callId, callTime, callJson, t, t);
      this.markArchived(callId, f);
      return "adopted" as const;
    })();
  }

  markStatus(
    callId: string,
    status: Exclude<CallStatus, "archived">,
    error?: { kind: string; message: string },
  ): void {
    this.st(
      `UPDATE calls SET status = ?, error_kind = ?, last_error = ?, attempts = attempts + 1, updated_at = ?
         WHERE call_id = ? AND status <> 'archived'`,
    ).run(status, error?.kind ?? null, error ? redactText(error.message) : null, now(), callId);
  }

  // ---- run lock ---------------------------------------------------------------------------------------------

  /**
   * Take the run lock, or say who holds it. A holder on this host whose pid is gone, or any holder whose
   * heartbeat is older than `staleMs`, is dead: its lock is taken over.
   */
  acquireLock(
    runId: string,
    host: string,
    staleMs: number,
    isAlive: (pid: number) => boolean,
    onTakeover?: (dead: LockHolder) => void,
  ): LockHolder | null {
    let takenFrom: LockHolder | undefined;
    const holder = this.db
      .transaction((): LockHolder | null => {
        const held = this.st("SELECT * FROM run_lock WHERE id = 1").get() as LockHolder | undefined;
        if (held) {
          const age = Date.now() - Date.parse(held.heartbeat_at);
          const dead = held.host === host ? !isAlive(held.pid) || held.pid === process.pid : age > staleMs;
          if (!dead) return held;
          takenFrom = held;
        }
        const t = now();
        this.st(
          `INSERT INTO run_lock (id, run_id, pid, host, acquired_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, pid = excluded.pid, host = excluded.host,
           acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at`,
        ).run(runId, process.pid, host, t, t);
        return null;
      })
      .immediate();
    if (takenFrom) onTakeover?.(takenFrom);
    return holder;
  }

  heartbeat(runId: string): void {
    this.st("UPDATE run_lock SET heartbeat_at = ? WHERE id = 1 AND run_id = ?").run(now(), runId);
  }

  releaseLock(runId: string): void {
    this.st("DELETE FROM run_lock WHERE id = 1 AND run_id = ?").run(runId);
  }

  // ---- multipart uploads in flight ---------------------------------------------------------------------------

  trackUpload(u: {
    uploadId: string;
    key: string;
    callId: string;
    runId: string;
    fingerprint?: string | null;
  }): void {
    this.st(
      "INSERT OR REPLACE INTO uploads (upload_id, key, call_id, run_id, started_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(u.uploadId, u.key, u.callId, u.runId, now(), u.fingerprint ?? null);
    // Never group-committed: an upload that a kill kept out of the DB would be left open in S3, untracked.
    if (this.groupCommit) this.commitNow();
  }

  /** Forget an upload (completed or aborted), its parts with it. */
  untrackUpload(uploadId: string): void {
    this.st("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
  }

  /** A part S3 confirmed, so that a run that dies can be resumed after it. */
  recordPart(uploadId: string, p: StoredPart): void {
    this.st(
      `INSERT OR REPLACE INTO upload_parts
         (upload_id, part_number, start_offset, end_offset, etag, checksum_crc32c, checksum_sha256, prefix_sha256)
       SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?)`,
    ).run(
      uploadId,
      p.partNumber,
      p.start,
      p.end,
      p.etag,
      p.checksumCRC32C ?? null,
      p.checksumSHA256 ?? null,
      p.prefixSha256,
      uploadId,
    );
  }

  /** The uploads tracked for a call, with their recorded parts in order (most parts first). */
  uploadsFor(callId: string): ResumableUpload[] {
    const ups = this.st(
      "SELECT upload_id, key, fingerprint FROM uploads WHERE call_id = ? ORDER BY started_at DESC",
    ).all(callId) as { upload_id: string; key: string; fingerprint: string | null }[];
    const parts = this.st(
      `SELECT part_number, start_offset, end_offset, etag, checksum_crc32c, checksum_sha256, prefix_sha256
         FROM upload_parts WHERE upload_id = ? ORDER BY part_number`,
    );
    return ups
      .map((u) => ({
        uploadId: u.upload_id,
        key: u.key,
        fingerprint: u.fingerprint,
        parts: (
          parts.all(u.upload_id) as {
            part_number: number;
            start_offset: number;
            end_offset: number;
            etag: string;
            checksum_crc32c: string | null;
            checksum_sha256: string | null;
            prefix_sha256: string;
          }[]
        ).map((p) => ({
          partNumber: p.part_number,
          start: p.start_offset,
          end: p.end_offset,
          etag: p.etag,
          checksumCRC32C: p.checksum_crc32c ?? undefined,
          checksumSHA256: p.checksum_sha256 ?? undefined,
          prefixSha256: p.prefix_sha256,
        })),
      }))
      .sort((a, b) => b.parts.length - a.parts.length);
  }

  trackedUploads(): { upload_id: string; key: string; call_id: string; run_id: string }[] {
    return this.st("SELECT upload_id, key, call_id, run_id FROM uploads").all() as {
      upload_id: string;
      key: string;
      call_id: string;
      run_id: string;
    }[];
  }

  countsByStatus(): Record<CallStatus, { count: number; bytes: number }> {
    const out = Object.fromEntries(CALL_STATUSES.map((s) => [s, { count: 0, bytes: 0 }])) as Record<
      CallStatus,
      { count: number; bytes: number }
    >;
    const rows = this.st(
      "SELECT status, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM calls GROUP BY status",
    ).all() as { status: CallStatus; n: number; b: number }[];
    for (const r of rows) out[r.status] = { count: r.n, bytes: r.b };
    return out;
  }
}
