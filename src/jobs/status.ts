/**
 * `envoy-archiver status`: what the state DB knows, for operators and auditors. Read-only. With `check`, also
 * SQLite's integrity check, which reads the whole DB (a fatal error when it fails).
 */
import { CALL_STATUSES, StateDb, type CallStatus, type FailedCall, type RunRow } from "../state/db.js";
import { countSourceChanges, recentSourceChanges, type SourceChange } from "../state/source-changes.js";
import { redactText } from "../base/redact.js";
import { checkIntegrity } from "../state/integrity.js";
import { readCompleteness, type StoredCompleteness } from "./completeness.js";
import { readLag } from "../state/lag.js";
import { ageSeconds, type LagFacts } from "../base/lag.js";
import { formatDuration } from "../base/units.js";

export interface StatusReport {
  db_path: string;
  /** "ok" when the integrity check ran and passed; null when it was not asked for. */
  integrity: "ok" | null;
  counts: Record<CallStatus, number>;
  bytes_archived: number;
  /** Archived recordings by how their stored bytes were proven (s3/write-proof.ts; "unproven" when not). */
  write_proof: Record<string, number>;
  /** Archived recordings whose recorded version is on legal hold, as last read back from the bucket. */
  on_legal_hold: number;
  watermark: string | null;
  lock: { run_id: string; pid: number; host: string; heartbeat_at: string } | null;
  open_multipart_uploads: number;
  /**
   * Failed calls: how many failed permanently (they stay failed, and every run's summary and metrics count them,
   * until `run --retry-failed` archives them) and the latest few, each with its call id and reason.
   */
  failures: { count: number; permanent: number; recent: FailedCall[] };
  /** How far behind: the oldest waiting recording, the watermark, the last (successful) run, waiting by state. */
  lag: {
    oldest_pending_since: string | null;
    oldest_pending_age_s: number | null;
    watermark_lag_s: number | null;
    last_run: { finished_at: string; outcome: string } | null;
    last_success_at: string | null;
    since_last_success_s: number | null;
    pending: LagFacts["pending"];
  };
  /** Sources that changed after their recording was archived (originals kept), with the latest few. */
  source_changes: { count: number; recent: SourceChange[] };
  /** The last per-day check against the source (an incremental run's or `verify --source`'s); null: none yet. */
  completeness: StoredCompleteness | null;
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
  const state = StateDb.openReadOnly(dbPath);
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
      write_proof: state.countsByProof(),
      on_legal_hold: state.countOnHold(),
      watermark: state.getMeta("watermark"),
      lock,
      open_multipart_uploads: state.trackedUploads().length,
      failures: failuresOf(state, counts.failed),
      lag: lagReport(readLag(state), Date.now()),
      source_changes: { count: countSourceChanges(state), recent: recentSourceChanges(state, 5) },
      completeness: readCompleteness(state),
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

/** The failed calls `status` lists. */
const FAILURES_LISTED = 20;

function failuresOf(state: StateDb, count: number): StatusReport["failures"] {
  const { permanent, recent } = state.failedCalls(FAILURES_LISTED);
  // Redacted again on the way out, like the runs' errors.
  const shown = recent.map((f) => ({
    ...f,
    last_error: f.last_error === null ? null : redactText(f.last_error),
  }));
  return { count, permanent, recent: shown };
}

/** The failures section: each call id with its reason (what an operator acts on). */
function failureLines(f: StatusReport["failures"]): string[] {
  if (f.count === 0) return [];
  const more = f.count - f.recent.length;
  return [
    "",
    `failed  ${f.count} (${f.permanent} permanently: \`run --retry-failed\` tries them again; the others retry on the next run)`,
    ...f.recent.map(
      (x) =>
        `  ${x.updated_at}  ${x.call_id}  ${x.error_kind ?? "?"}, ${x.attempts} attempt${x.attempts === 1 ? "" : "s"}: ${x.last_error ?? "(no reason recorded)"}`,
    ),
    ...(more > 0 ? [`  … and ${more} more (status --json, or the log)`] : []),
  ];
}

function lagReport(f: LagFacts, now: number): StatusReport["lag"] {
  return {
    oldest_pending_since: f.oldestPendingSince,
    oldest_pending_age_s: ageSeconds(f.oldestPendingSince, now),
    watermark_lag_s: ageSeconds(f.watermark, now),
    last_run: f.lastRun && { finished_at: f.lastRun.finishedAt, outcome: f.lastRun.outcome },
    last_success_at: f.lastSuccessAt,
    since_last_success_s: ageSeconds(f.lastSuccessAt, now),
    pending: f.pending,
  };
}

/** "3h 12m" for a person; "-" when there is nothing to measure. */
const ago = (s: number | null) => (s === null ? "-" : `${formatDuration(s * 1000) || "0s"} ago`);

export function formatStatus(s: StatusReport): string {
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  const lines = [
    `state DB   ${s.db_path}`,
    `watermark  ${s.watermark ?? "(none: the next incremental run lists everything)"}`,
    ...(s.integrity ? [`integrity  ${s.integrity} (quick_check)`] : []),
    `lock       ${s.lock ? `held by run ${s.lock.run_id} (pid ${s.lock.pid} on ${s.lock.host}, heartbeat ${s.lock.heartbeat_at})` : "free"}`,
    "",
    "lag",
    `  oldest waiting   ${s.lag.oldest_pending_since ? `${s.lag.oldest_pending_since} (${ago(s.lag.oldest_pending_age_s)})` : "(nothing waiting)"}`,
    `  watermark        ${ago(s.lag.watermark_lag_s)}`,
    `  last run         ${s.lag.last_run ? `${s.lag.last_run.finished_at} ${s.lag.last_run.outcome}` : "(none)"}`,
    `  last success     ${s.lag.last_success_at ? `${s.lag.last_success_at} (${ago(s.lag.since_last_success_s)})` : "(none)"}`,
    `  waiting          ${s.lag.pending.pending} pending, ${s.lag.pending.not_ready} not ready, ${s.lag.pending.failed_retryable} failed (retried next run), ${s.lag.pending.failed_permanent} failed permanently`,
    "",
    "recordings",
    ...CALL_STATUSES.map((k) => `  ${k.padEnd(13)} ${s.counts[k]}`),
    `  bytes archived ${mib(s.bytes_archived)}`,
    `  write proof    ${proofLine(s.write_proof)}`,
    `  on legal hold  ${s.on_legal_hold}`,
    ...failureLines(s.failures),
    "",
    `source changed after archiving  ${s.source_changes.count}${s.source_changes.count ? " (archived originals kept)" : ""}`,
    ...s.source_changes.recent.map(
      (c) =>
        `  ${c.detected_at}  ${c.key}: archived ${c.archived_sha256.slice(0, 12)}…, source now ${c.source_sha256.slice(0, 12)}…${c.new_key ? `, new bytes in ${c.new_key}` : " (only reported)"}`,
    ),
    "",
    ...completenessLines(s.completeness),
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

function completenessLines(c: StoredCompleteness | null): string[] {
  if (!c) return ["completeness  (not checked yet: incremental runs check ARCHIVER_COMPLETENESS_DAYS days)"];
  if (c.error) return [`completeness  not checked by ${c.by} at ${c.checked_at}: ${c.error}`];
  return [
    `completeness  ${c.days_checked} days ${c.first_day ?? ""}..${c.last_day ?? ""} checked against the source by ${c.by} at ${c.checked_at}`,
    `  calls at the source not in the archive  ${c.missing_calls}${c.oldest_gap_day ? ` (oldest day ${c.oldest_gap_day})` : ""}`,
    ...c.days.map(
      (d) =>
        `  ${d.day}  source ${d.source}, archived ${d.archived}, no recording ${d.no_recording}, not ready ${d.not_ready}, failed ${d.failed}, pending ${d.pending}${d.source < d.known ? "  (fewer at the source: deleted upstream, archive kept)" : ""}`,
    ),
  ];
}

/** "12 by ETag (MD5 of the bytes sent), 1 read back": how the run's recordings were proven stored. */
export function proofLine(counts: Record<string, number>): string {
  const said: Record<string, string> = {
    checksum: "by the checksum the server verified",
    etag: "by ETag (MD5 of the bytes sent)",
    "read-back": "read back and hashed",
    unproven: "not proven by a write (archived before write proofs, reconciled, or an original kept)",
  };
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${said[k] ?? k}`);
  return parts.length ? parts.join(", ") : "(nothing stored)";
}
