/**
 * The `runs` table (the audit trail: every command, who ran it, its outcome and counts, each finished one a link
 * of the hash chain in audit-chain.ts) and the `meta` table
 * (small named values the archiver keeps between runs).
 */
import { userInfo } from "node:os";
import { redactText } from "../base/redact.js";
import { appendLink, type ChainLink } from "./audit-chain.js";
import { isoNow, type Sql } from "./sql.js";
import type { RunCounts, RunRow, RunStart } from "./types.js";

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

export function startRun(sql: Sql, run: RunStart): void {
  sql.db
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
      isoNow(),
      process.pid,
      run.host,
      run.version,
      run.configFingerprint,
      actor(run.host),
    );
}

/**
 * A command's end: its outcome, counts and details (the error and details redacted), made the next link of the
 * audit trail's hash chain in the same transaction (audit-chain.ts). A run already finished keeps its record.
 */
export function finishRun(
  sql: Sql,
  id: string,
  counts: RunCounts,
  outcome: string,
  error: string | null,
  details?: unknown,
): ChainLink {
  const finish = sql.db.transaction((): ChainLink => {
    // The write comes first: it takes the write lock, so the head read after it is the latest.
    sql
      .st(
        `UPDATE runs SET finished_at = ?, outcome = ?, error = ?, listed = ?, archived = ?, already_archived = ?,
           not_ready = ?, no_recording = ?, failed = ?, bytes = ?, details = ? WHERE id = ? AND chain_seq IS NULL`,
      )
      .run(
        isoNow(),
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
    return appendLink(sql, id);
  });
  return finish.immediate();
}

/** A command whose process ended without finishing: recorded as `died`, with the counts it had written. */
export function markDied(sql: Sql, id: string, error: string): ChainLink {
  const counts = sql
    .st(
      "SELECT listed, archived, already_archived, not_ready, no_recording, failed, bytes FROM runs WHERE id = ?",
    )
    .get(id) as RunCounts;
  return finishRun(sql, id, counts, "died", error);
}

export function recentRuns(sql: Sql, limit: number): RunRow[] {
  return sql.db
    .prepare("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?")
    .all(limit) as RunRow[];
}

export function getMeta(sql: Sql, key: string): string | null {
  const v = sql.db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(key);
  return typeof v === "string" ? v : null;
}

export function setMeta(sql: Sql, key: string, value: string): void {
  sql.db
    .prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .run(key, value);
}
