/**
 * `envoy-archiver status`: what the state DB knows, for operators and auditors. Read-only. With `check`, also
 * SQLite's integrity check, which reads the whole DB (a fatal error when it fails).
 */
import { CALL_STATUSES, StateDb, type CallStatus, type RunRow } from "../state/db.js";
import { countSourceChanges, recentSourceChanges, type SourceChange } from "../state/source-changes.js";
import { redactText } from "../base/redact.js";
import { checkIntegrity } from "../state/integrity.js";

export interface StatusReport {
  db_path: string;
  /** "ok" when the integrity check ran and passed; null when it was not asked for. */
  integrity: "ok" | null;
  counts: Record<CallStatus, number>;
  bytes_archived: number;
  /** Archived recordings whose recorded version is on legal hold, as last read back from the bucket. */
  on_legal_hold: number;
  watermark: string | null;
  lock: { run_id: string; pid: number; host: string; heartbeat_at: string } | null;
  open_multipart_uploads: number;
  /** Sources that changed after their recording was archived (originals kept), with the latest few. */
  source_changes: { count: number; recent: SourceChange[] };
  recent_runs: Pick<
    RunRow,
    | "id"
    | "command"
    | "mode"
    | "window_start"
    | "window_end"
    | "started_at"
    | "finished_at"
    | "outcome"
    | "listed"
    | "archived"
    | "failed"
    | "bytes"
    | "error"
  >[];
}

export function readStatus(dbPath: string, runs = 10, opts: { check?: boolean } = {}): StatusReport {
  const state = StateDb.open(dbPath);
  try {
    if (opts.check) checkIntegrity(state, dbPath);
    const byStatus = state.countsByStatus();
    const counts = Object.fromEntries(CALL_STATUSES.map((s) => [s, byStatus[s].count])) as Record<
      CallStatus,
      number
    >;
    const holder = state.lockHolder();
    const lock = holder && {
      run_id: holder.run_id,
      pid: holder.pid,
      host: holder.host,
      heartbeat_at: holder.heartbeat_at,
    };
    return {
      db_path: dbPath,
      integrity: opts.check ? "ok" : null,
      counts,
      bytes_archived: byStatus.archived.bytes,
      on_legal_hold: state.countOnHold(),
      watermark: state.getMeta("watermark"),
      lock,
      open_multipart_uploads: state.trackedUploads().length,
      source_changes: { count: countSourceChanges(state), recent: recentSourceChanges(state, 5) },
      recent_runs: state.recentRuns(runs).map((r) => ({
        id: r.id,
        command: r.command,
        mode: r.mode,
        window_start: r.window_start,
        window_end: r.window_end,
        started_at: r.started_at,
        finished_at: r.finished_at,
        outcome: r.outcome,
        listed: r.listed,
        archived: r.archived,
        failed: r.failed,
        bytes: r.bytes,
        // Redacted again on the way out: rows written by releases that stored errors verbatim.
        error: r.error === null ? null : redactText(r.error),
      })),
    };
  } finally {
    state.close();
  }
}

export function formatStatus(s: StatusReport): string {
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  const lines = [
    `state DB   ${s.db_path}`,
    `watermark  ${s.watermark ?? "(none: the next incremental run lists everything)"}`,
    ...(s.integrity ? [`integrity  ${s.integrity} (quick_check)`] : []),
    `lock       ${s.lock ? `held by run ${s.lock.run_id} (pid ${s.lock.pid} on ${s.lock.host}, heartbeat ${s.lock.heartbeat_at})` : "free"}`,
    "",
    "recordings",
    ...CALL_STATUSES.map((k) => `  ${k.padEnd(13)} ${s.counts[k]}`),
    `  bytes archived ${mib(s.bytes_archived)}`,
    `  on legal hold  ${s.on_legal_hold}`,
    "",
    `source changed after archiving  ${s.source_changes.count}${s.source_changes.count ? " (archived originals kept)" : ""}`,
    ...s.source_changes.recent.map(
      (c) =>
        `  ${c.detected_at}  ${c.key}: archived ${c.archived_sha256.slice(0, 12)}…, source now ${c.source_sha256.slice(0, 12)}…${c.new_key ? `, new bytes in ${c.new_key}` : " (only reported)"}`,
    ),
    "",
    "recent runs",
  ];
  if (s.recent_runs.length === 0) lines.push("  (none)");
  for (const r of s.recent_runs) {
    const window = `${r.window_start ?? "…"}..${r.window_end ?? "…"}`;
    lines.push(
      `  ${r.started_at}  ${r.command.padEnd(8)} ${r.mode.padEnd(11)} ${window.padEnd(22)} ${r.outcome.padEnd(11)} listed ${r.listed}, archived ${r.archived}, failed ${r.failed}, ${mib(r.bytes)}${r.error ? `  (${r.error})` : ""}`,
    );
  }
  return lines.join("\n") + "\n";
}
