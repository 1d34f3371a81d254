/**
 * What can stop the state DB from being used, said plainly: a DB written by a newer envoy-archiver (its schema
 * is refused, never used half-understood), a DB that cannot be written (permissions, a read-only mount), and
 * one that is damaged (the only case where moving it aside and reconciling from S3 is the fix).
 */
import type Database from "better-sqlite3";
import { ArchiverError } from "../base/errors.js";
import { redactText } from "../base/redact.js";

/** Refuse a DB whose schema has migrations this version does not know (a newer archiver wrote it). */
export function checkSchemaVersion(db: Database.Database, applied: Set<number>, files: string[]): void {
  const known = Math.max(0, ...files.map((f) => Number(f.slice(0, 3))));
  const newest = Math.max(0, ...applied);
  if (newest <= known) return;
  const name = db.prepare("SELECT name FROM schema_migrations WHERE version = ?").pluck().get(newest);
  throw new ArchiverError(
    "fatal",
    "state_db_newer",
    `state DB ${db.name} has schema version ${newest} (${String(name)}), newer than this envoy-archiver knows (up to ${known}): it was written by a newer release. Upgrade envoy-archiver (this one is not used on it, so nothing is changed), or point ARCHIVER_DB_PATH elsewhere.`,
  );
}

const READ_ONLY_CODES = new Set([
  "SQLITE_READONLY",
  "SQLITE_CANTOPEN",
  "SQLITE_PERM",
  "EACCES",
  "EROFS",
  "EPERM",
]);

/** The fatal error for a DB that could not be opened, naming the real cause and its fix. */
export function stateDbOpenError(path: string, err: unknown, why?: string): ArchiverError {
  const e = err as { code?: string; message?: string };
  const message = redactText(e.message ?? String(err)) + (why ? `; ${why}` : "");
  const code = e.code ?? "";
  if (READ_ONLY_CODES.has(code) || code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_CANTOPEN"))
    return new ArchiverError(
      "fatal",
      "state_db_read_only",
      `state DB ${path} cannot be opened for writing (${code}: ${message}): it, its directory or the filesystem is read-only, or owned by another user. Give the archiver write access to ${path}, its directory and the ${path}-wal / ${path}-shm files SQLite keeps beside it.`,
      { cause: err },
    );
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED")
    return new ArchiverError(
      "fatal",
      "state_db_busy",
      `state DB ${path} is locked by another process (${code}: ${message}): wait for it, or find what holds it.`,
      { cause: err },
    );
  return stateDbUnusable(path, message, err);
}

/** The fatal error for a DB a command needs to exist (it only reads, or checks what was archived). */
export function stateDbMissing(path: string): ArchiverError {
  return new ArchiverError(
    "fatal",
    "state_db_missing",
    `state DB ${path} does not exist: check ARCHIVER_DB_PATH (or --db). This command only reads the state and never creates it; \`run\` or \`reconcile\` makes it.`,
  );
}

/** The fatal error for a DB that opened but cannot be used (corrupt, failed its integrity check). */
export function stateDbUnusable(path: string, detail: string, cause?: unknown): ArchiverError {
  return new ArchiverError(
    "fatal",
    "state_db_unusable",
    `state DB ${path} is unusable: ${detail} (move it aside and run \`envoy-archiver reconcile\`, or restore a backup)`,
    { cause },
  );
}
