/**
 * `envoy-archiver report`: the attestation report of a window, one self-contained document an auditor can read,
 * print and sign (report-html.ts renders it; --json gives the same facts). Everything in it is read from the state
 * DB, which holds what the bucket showed when each object was read back, and from the bucket (the audit trail's
 * heads); its own SHA-256 is recorded in the audit trail.
 */
import { readCompleteness } from "./completeness.js";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { configFingerprint, type Config } from "../base/config.js";
import { writeFilePrivate } from "../base/private-fs.js";
import type { Window } from "../base/dates.js";
import { PACKAGE_VERSION } from "../base/paths.js";
import { NO_COUNTS } from "../observe/tally.js";
import * as attest from "../state/attest.js";
import { startCommandRun } from "../state/audit.js";
import type { StateDb } from "../state/db.js";
import { openState } from "../state/integrity.js";
import { checkTrail, endCommand, type TrailCheck } from "./audit.js";
import { formatRow, MANIFEST_COLUMNS, manifestRow, manifestRows } from "./compliance/manifest.js";
import { renderReport, type ReportData } from "./report-html.js";

export type { ReportData } from "./report-html.js";

function manifestSha256(state: StateDb, window: Partial<Window>): string {
  const h = createHash("sha256").update(MANIFEST_COLUMNS.join(",") + "\n");
  for (const r of manifestRows(state, window)) h.update(formatRow(manifestRow(r), "csv"));
  return h.digest("hex");
}

function settingsOf(config: Config): ReportData["settings"] {
  const s = config.storage;
  return {
    object_lock_mode: s.lockMode ?? null,
    retention_days: s.retentionDays ?? null,
    legal_hold_on_upload: s.legalHold,
    sse: s.sse ?? null,
    sse_kms_key: s.sseKmsKeyId ? "set" : null,
    storage_class: s.storageClass ?? null,
    tags: s.tags.map(([k, v]) => `${k}=${v}`).join(",") || null,
    checksum: s.checksum,
    on_source_change: config.onSourceChange,
    config_fingerprint: configFingerprint(config),
  };
}

function lastDeepVerify(state: StateDb): ReportData["last_deep_verify"] {
  const v = attest.lastFinished(state, "verify-deep");
  if (!v) return null;
  const window =
    v.window_start || v.window_end ? `${v.window_start ?? "…"} to ${v.window_end ?? "…"}` : "all recordings";
  let details: unknown = null;
  try {
    details = v.details ? JSON.parse(v.details) : null;
  } catch {
    details = v.details;
  }
  return { id: v.id, finished_at: v.finished_at, outcome: v.outcome, window, details };
}

function gather(state: StateDb, config: Config, window: Partial<Window>, trail: TrailCheck): ReportData {
  const perDay = attest.archivedPerDay(state, window);
  return {
    generated_at: new Date().toISOString(),
    version: PACKAGE_VERSION,
    window: { since: window.startDate ?? null, until: window.endDate ?? null },
    scope: { bucket: config.s3.bucket ?? null, prefix: config.s3.prefix },
    archived: {
      count: perDay.reduce((n, d) => n + d.count, 0),
      bytes: perDay.reduce((n, d) => n + d.bytes, 0),
      per_day: perDay,
    },
    calls_by_status: attest.callsByStatus(state, window),
    protection: attest.protectionInWindow(state, window),
    on_legal_hold: state.countOnHold(),
    last_deep_verify: lastDeepVerify(state),
    manifest_sha256: manifestSha256(state, window),
    audit: { records: trail.records, head: trail.head, broken: trail.broken, bucket: trail.bucket },
    completeness: readCompleteness(state),
    settings: settingsOf(config),
  };
}

export interface ReportResult {
  data: ReportData;
  out: string | null;
  /** SHA-256 of the HTML written (null without --out). */
  sha256: string | null;
}

export async function writeReport(
  config: Config,
  opts: { window: Partial<Window>; out?: string | undefined },
  deps: { logger: Logger },
): Promise<ReportResult> {
  // The trail as it stood before this report: checked against the bucket, then this report appended to it.
  const trail = await checkTrail(config, deps);
  const state = openState(config.dbPath);
  const runId = startCommandRun(state, config, "report", opts.window);
  let res: ReportResult | undefined;
  let error: string | null = null;
  try {
    const data = gather(state, config, opts.window, trail);
    let sha256: string | null = null;
    if (opts.out) {
      const html = Buffer.from(renderReport(data));
      sha256 = createHash("sha256").update(html).digest("hex");
      writeFilePrivate(opts.out, html, config.outputReaders);
    }
    res = { data, out: opts.out ?? null, sha256 };
    return res;
  } catch (err) {
    error = (err as Error).message;
    throw err;
  } finally {
    const counts = {
      ...NO_COUNTS,
      archived: res?.data.archived.count ?? 0,
      bytes: res?.data.archived.bytes ?? 0,
    };
    const details = res && { out: res.out, sha256: res.sha256, manifest_sha256: res.data.manifest_sha256 };
    const end = { runId, counts, outcome: res ? "ok" : "fatal", error, details: details ?? undefined };
    await endCommand(config, state, end, deps.logger);
  }
}
