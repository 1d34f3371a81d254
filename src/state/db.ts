/**
 * The state DB: SQLite in WAL mode through better-sqlite3. The schema lives in migrations/NNN_name.sql
 * (migrate.ts). Every state transition is one statement or one transaction, so a run killed at any instant
 * leaves either the old state or the new one, never half of each.
 *
 * `StateDb` owns the connection: opening, closing and when changes are committed (group commit). What each
 * table holds and how it changes lives beside it: calls.ts, uploads.ts, runs.ts (with meta), run-lock.ts.
 */
import Database from "better-sqlite3";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { ArchiverError } from "../base/errors.js";
import { copyFilePrivate, ensurePrivateFile, mkdirPrivate } from "../base/private-fs.js";
import { stateDbMissing, stateDbOpenError } from "./schema-guard.js";
import { migrate, pendingMigrations } from "./migrate.js";
import { Sql } from "./sql.js";
import * as calls from "./calls.js";
import * as uploads from "./uploads.js";
import * as runs from "./runs.js";
import * as runLock from "./run-lock.js";
import { knownOnDay } from "./days.js";
import * as chain from "./audit-chain.js";
import type { ChainCheck, ChainLink } from "./audit-chain.js";
import { markArchivedWithEvidence, type FieldsBesideEvidence } from "./evidence.js";
import type {
  ArchivedFields,
  CallRow,
  CallStatus,
  EvidenceRecord,
  LockHolder,
  PartRecord,
  RunCounts,
  RunRow,
  RunStart,
  TrackedUploadRow,
  UploadRecord,
} from "./types.js";

export * from "./types.js";
export { GENESIS, type BrokenLink, type ChainCheck, type ChainLink } from "./audit-chain.js";
export { pidAlive } from "./run-lock.js";
export type { FailedCall, RepairKind } from "./calls.js";

/** State changes are committed together this often by a run or reconcile (startGroupCommit). */
export const GROUP_COMMIT_MS = 200;

/** No such file (not: a file this process may not see, which the open names as what it is). */
function isMissing(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
}

export class StateDb {
  readonly db: Database.Database;

  private readonly sql: Sql;
  private readonly unchanged: calls.UnchangedListings;
  private groupCommit: NodeJS.Timeout | undefined;
  /** A read-only copy's temporary folder (readOnly), removed on close. */
  private copyDir: string | undefined;

  private constructor(db: Database.Database) {
    this.db = db;
    this.sql = new Sql(db);
    this.unchanged = new calls.UnchangedListings(this.sql);
  }

  /**
   * Open (creating if needed) and migrate. A file that is not a usable SQLite DB is a fatal error. The integrity
   * check that reads the whole DB is not done here: see integrity.ts for where it runs.
   */
  static open(path: string, opts: { mustExist?: boolean } = {}): StateDb {
    if (opts.mustExist && path !== ":memory:" && isMissing(path)) throw stateDbMissing(path);
    try {
      if (path !== ":memory:" && path !== "") {
        // Created 0600 before SQLite opens it: the DB's -wal and -shm take its mode (base/private-fs.ts).
        mkdirPrivate(dirname(path));
        ensurePrivateFile(path);
      }
      const db = new Database(path, { timeout: 5000 });
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      const state = new StateDb(db);
      migrate(db);
      return state;
    } catch (err) {
      if (err instanceof ArchiverError) throw err;
      throw stateDbOpenError(path, err);
    }
  }

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

  /**
   * Open an existing DB only to read it (`status`, `manifest`, an auditor's copy): never created, migrated or
   * written. A copy of a WAL-mode DB in a folder this process cannot write (no -shm beside it, none can be made)
   * is read from a private copy of its files. A DB older than this release's schema is migrated first when it
   * can be written; otherwise refused, naming why.
   */
  static openReadOnly(path: string): StateDb {
    if (isMissing(path)) throw stateDbMissing(path);
    let state: StateDb;
    try {
      state = new StateDb(new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 }));
      state.db.pragma("schema_version"); // SQLite opens lazily: this is where an unreadable folder shows
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (!code.startsWith("SQLITE_READONLY") && !code.startsWith("SQLITE_CANTOPEN"))
        throw stateDbOpenError(path, err);
      state = StateDb.privateCopy(path);
    }
    const pending = pendingMigrations(state.db);
    if (pending === 0) return state;
    state.close();
    try {
      StateDb.open(path, { mustExist: true }).close();
    } catch (err) {
      throw stateDbOpenError(path, err, `its schema is ${pending} migration(s) older than this release`);
    }
    return StateDb.openReadOnly(path);
  }

  /** A read-only DB (and its -wal, if any) copied to a private folder, opened read-only there. */
  private static privateCopy(path: string): StateDb {
    const dir = mkdtempSync(join(tmpdir(), "envoy-archiver-state-"));
    try {
      const copy = join(dir, basename(path));
      copyFilePrivate(path, copy);
      if (existsSync(`${path}-wal`)) copyFilePrivate(`${path}-wal`, `${copy}-wal`);
      const state = new StateDb(new Database(copy, { readonly: true, fileMustExist: true, timeout: 5000 }));
      state.copyDir = dir;
      state.db.pragma("schema_version");
      return state;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw stateDbOpenError(path, err);
    }
  }

  close(): void {
    if (!this.db.open) return;
    this.stopGroupCommit();
    this.db.close();
    if (this.copyDir) rmSync(this.copyDir, { recursive: true, force: true });
  }

  // ---- runs and meta (runs.ts) ------------------------------------------------------------------------------

  startRun(run: RunStart): void {
    runs.startRun(this.sql, run);
  }

  /** The command's end, appended to the audit trail's hash chain: the new link (the chain's head). */
  finishRun(
    id: string,
    counts: RunCounts,
    outcome: string,
    error: string | null,
    details?: unknown,
  ): ChainLink {
    return runs.finishRun(this.sql, id, counts, outcome, error, details);
  }

  /** A command whose process ended without finishing, recorded as `died` (a record of the trail). */
  markDied(id: string, error: string): ChainLink {
    return runs.markDied(this.sql, id, error);
  }

  /** The audit trail's links in order. */
  auditTrail(): ChainLink[] {
    return chain.chainLinks(this.sql);
  }

  /** This state DB's trail id, as the bucket's head keys name it; null before its first record. */
  auditTrailId(): string | null {
    return chain.trailId(this.sql);
  }

  /** The audit trail checked link by link: the first broken one, or the head. */
  checkAuditTrail(): ChainCheck {
    return chain.checkChain(this.sql);
  }

  recentRuns(limit: number): RunRow[] {
    return runs.recentRuns(this.sql, limit);
  }

  getMeta(key: string): string | null {
    return runs.getMeta(this.sql, key);
  }

  setMeta(key: string, value: string): void {
    runs.setMeta(this.sql, key, value);
  }

  // ---- calls (calls.ts) -------------------------------------------------------------------------------------

  markForRepair(callId: string, kind: calls.RepairKind, message: string): boolean {
    return calls.markForRepair(this.sql, callId, kind, message);
  }

  failedCalls(limit: number): { permanent: number; recent: calls.FailedCall[] } {
    return calls.failedCalls(this.sql, limit);
  }

  repairOf(callId: string): calls.RepairKind | undefined {
    return calls.repairOf(this.sql, callId);
  }

  getCall(callId: string): CallRow | undefined {
    return calls.getCall(this.sql, callId);
  }

  /** Record a call seen in a listing: its row as it stood before, and whether this run had already seen it. */
  recordListed(
    callId: string,
    callTime: string | null,
    callJson: string,
    runId: string,
  ): { previous: CallRow | undefined; duplicate: boolean } {
    return calls.recordListed(this.sql, this.unchanged, { callId, callTime, callJson, runId });
  }

  /** A call's status, key, size and ETag only (reconcile reads one per listed object). */
  storedAs(callId: string): ReturnType<typeof calls.storedAs> {
    return calls.storedAs(this.sql, callId);
  }

  markArchived(callId: string, f: ArchivedFields): void {
    calls.markArchived(this.sql, callId, f);
  }

  /** Archived, with what the bucket showed for the recording and its sidecar, in one transaction. */
  markArchivedWithEvidence(
    callId: string,
    fields: FieldsBesideEvidence,
    recording: EvidenceRecord,
    sidecar: EvidenceRecord,
  ): void {
    markArchivedWithEvidence(this.sql, callId, fields, recording, sidecar);
  }

  /** Record a call as archived from what S3 holds (reconcile), creating its row when the DB has none. */
  adoptArchived(
    callId: string,
    callTime: string | null,
    callJson: string,
    f: ArchivedFields,
  ): "adopted" | "unchanged" {
    return calls.adoptArchived(this.sql, { callId, callTime, callJson }, f);
  }

  markStatus(
    callId: string,
    status: Exclude<CallStatus, "archived">,
    error?: { kind: string; message: string },
  ): void {
    calls.markStatus(this.sql, callId, status, error);
  }

  countsByStatus(): Record<CallStatus, { count: number; bytes: number }> {
    return calls.countsByStatus(this.sql);
  }

  /** The calls of one UTC day (of call_time) the state knows, by status (days.ts). */
  knownOnDay(day: string): Record<CallStatus, number> {
    return knownOnDay(this.sql, day);
  }

  /** Archived recordings by the proof their bytes carry (write_proof). */
  countsByProof(): Record<string, number> {
    return calls.countsByProof(this.sql);
  }

  /** A legal hold as the bucket showed it after `hold` (null: that object was not read). */
  recordHold(callId: string, recording: boolean | null, sidecar: boolean | null): void {
    calls.recordHold(this.sql, callId, recording, sidecar);
  }

  /** Archived recordings on legal hold. */
  countOnHold(): number {
    return calls.countOnHold(this.sql);
  }

  // ---- run lock (run-lock.ts) -------------------------------------------------------------------------------

  /** Take the run lock, or say who holds it (a dead holder's lock is taken over). */
  acquireLock(
    runId: string,
    host: string,
    staleMs: number,
    isAlive: (pid: number) => boolean,
    onTakeover?: (dead: LockHolder) => void,
  ): LockHolder | null {
    return runLock.acquireLock(this.sql, { runId, host, staleMs, isAlive, onTakeover });
  }

  /** Who holds the run lock; null when it is free. */
  lockHolder(): LockHolder | null {
    return runLock.lockHolder(this.sql);
  }

  heartbeat(runId: string): void {
    runLock.heartbeat(this.sql, runId);
  }

  releaseLock(runId: string): void {
    runLock.releaseLock(this.sql, runId);
  }

  // ---- multipart uploads in flight (uploads.ts) -------------------------------------------------------------

  trackUpload(u: {
    uploadId: string;
    key: string;
    callId: string;
    runId: string;
    fingerprint?: string | null;
  }): void {
    uploads.trackUpload(this.sql, u);
    // Never group-committed: an upload that a kill kept out of the DB would be left open in S3, untracked.
    if (this.groupCommit) this.commitNow();
  }

  /** Forget an upload (completed or aborted), its parts with it. */
  untrackUpload(uploadId: string): void {
    uploads.untrackUpload(this.sql, uploadId);
  }

  /** A part S3 confirmed, so that a run that dies can be resumed after it. */
  recordPart(uploadId: string, p: PartRecord): void {
    uploads.recordPart(this.sql, uploadId, p);
  }

  /** The uploads tracked for a call, with their recorded parts in order (most parts first). */
  uploadsFor(callId: string): UploadRecord[] {
    return uploads.uploadsFor(this.sql, callId);
  }

  trackedUploads(): TrackedUploadRow[] {
    return uploads.trackedUploads(this.sql);
  }
}
