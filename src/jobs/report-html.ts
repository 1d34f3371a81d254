/**
 * The attestation report as one self-contained HTML document: inline CSS and an inline SVG chart, no script, and
 * a Content-Security-Policy that forbids every fetch, so it opens the same offline, in ten years, and printed.
 * Every value is escaped. Pure: data in, text out.
 */
import type { StoredCompleteness } from "./completeness.js";
import { formatBytes } from "../observe/progress.js";
import type { DayCount, ProtectionRow } from "../state/attest.js";
import type { TrailCheck } from "./audit.js";

/** The report's facts (report.ts gathers them; --json prints them as they are). */
export interface ReportData {
  generated_at: string;
  version: string;
  window: { since: string | null; until: string | null };
  scope: { bucket: string | null; prefix: string };
  archived: { count: number; bytes: number; per_day: DayCount[] };
  calls_by_status: { status: string; kind: string | null; count: number }[];
  protection: ProtectionRow[];
  on_legal_hold: number;
  last_deep_verify: {
    id: string;
    finished_at: string | null;
    outcome: string;
    window: string;
    details: unknown;
  } | null;
  /** SHA-256 of `manifest --format csv` over the same window: an auditor can reproduce it. */
  manifest_sha256: string;
  audit: Pick<TrailCheck, "records" | "head" | "broken" | "bucket">;
  /** The last check of the archive against the source's per-day counts (a run's, or `verify --source`). */
  completeness: StoredCompleteness | null;
  /** The settings that decide how recordings are stored and checked; no secret is among them. */
  settings: Record<string, string | number | boolean | null>;
}

const esc = (v: unknown): string => String(v ?? "—").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const bytesText = (b: number): string =>
  b < 1024 ? `${b} bytes` : `${formatBytes(b)} (${b.toLocaleString("en-US")} bytes)`;

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;max-width:900px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
.meta{color:#555}.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{border:1px solid #ccc;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#555}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{font:12px ui-monospace,monospace;word-break:break-all}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#b00020;font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#444}
@media print{body{margin:0;max-width:none}.card,table,svg{break-inside:avoid}}
`;

/** Every day of the window when it is bounded and short enough to draw; otherwise the days with recordings. */
function chartDays(d: ReportData): DayCount[] {
  const { since, until } = d.window;
  const have = new Map(d.archived.per_day.map((x) => [x.day, x]));
  const first = since ?? d.archived.per_day[0]?.day;
  const last = until ?? d.archived.per_day.at(-1)?.day;
  if (!first || !last) return [];
  const out: DayCount[] = [];
  for (let t = Date.parse(`${first}T00:00:00Z`); t <= Date.parse(`${last}T00:00:00Z`); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push(have.get(day) ?? { day, count: 0, bytes: 0 });
    if (out.length > 400) return d.archived.per_day;
  }
  return out;
}

function chart(d: ReportData): string {
  const days = chartDays(d);
  if (days.length === 0) return `<p id="chart-empty">No recordings archived in this window.</p>`;
  const W = 860;
  const H = 180;
  const top = Math.max(...days.map((x) => x.count), 1);
  const step = W / days.length;
  const bars = days
    .map((x, i) => {
      const h = Math.round((x.count / top) * (H - 30));
      const label =
        days.length <= 62 && x.count > 0
          ? `<text x="${(i * step + step / 2).toFixed(1)}" y="${H - h - 3}" text-anchor="middle">${x.count}</text>`
          : "";
      return `${label}<rect class="bar" data-day="${esc(x.day)}" data-count="${x.count}" x="${(i * step + 1).toFixed(1)}" y="${H - h}" width="${Math.max(step - 2, 1).toFixed(1)}" height="${h}" fill="#2f6db5"><title>${esc(x.day)}: ${x.count} recordings, ${esc(bytesText(x.bytes))}</title></rect>`;
    })
    .join("");
  return `<svg id="chart" role="img" aria-label="Recordings archived per day" viewBox="0 0 ${W} ${H + 30}" width="100%">
<text x="0" y="10">${top} per day</text><line x1="0" y1="${H}" x2="${W}" y2="${H}" stroke="#999"/>${bars}
<text x="0" y="${H + 20}">${esc(days[0]!.day)}</text><text x="${W}" y="${H + 20}" text-anchor="end">${esc(days.at(-1)!.day)}</text></svg>`;
}

function table(head: string[], rows: unknown[][], id: string): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("");
  return `<table id="${id}"><thead><tr>${th}</tr></thead><tbody>${tr || `<tr><td colspan="${head.length}">none</td></tr>`}</tbody></table>`;
}

function auditSection(d: ReportData): string {
  const a = d.audit;
  const state = a.broken
    ? `<span class="bad">BROKEN at record #${a.broken.seq}: ${esc(a.broken.reason)}</span>`
    : `<span class="ok">intact</span>`;
  const bucket = a.bucket
    ? `the bucket holds ${a.bucket.heads} heads of this trail${a.bucket.latest ? `, the latest #${a.bucket.latest.seq}` : ""}`
    : "not compared with the bucket (no bucket set)";
  return `<p id="audit">Audit trail: ${state}; ${a.records} records before this report; head ${a.head ? `#${a.head.seq} <code>${esc(a.head.sha256)}</code>` : "none"}; ${esc(bucket)}.</p>`;
}

function completenessSection(d: ReportData): string {
  const c = d.completeness;
  if (!c)
    return `<p id="completeness">Not checked against the source yet: incremental runs check the ARCHIVER_COMPLETENESS_DAYS days before their window; <code>envoy-archiver verify --source</code> checks any window.</p>`;
  if (c.error)
    return `<p id="completeness"><span class="bad">Not checked</span> by ${esc(c.by)} at ${esc(c.checked_at)}: ${esc(c.error)}</p>`;
  const state =
    c.missing_calls > 0
      ? `<span class="bad">${c.missing_calls} calls at the source not in the archive</span>${c.oldest_gap_day ? ` (oldest day ${esc(c.oldest_gap_day)})` : ""}`
      : `<span class="ok">every call the source counts is archived or has no recording</span>`;
  const days = c.days.map((x) => [
    x.day,
    x.source,
    x.archived,
    x.no_recording,
    x.not_ready,
    x.failed,
    x.pending,
  ]);
  return `<p id="completeness">Last checked by ${esc(c.by)} at ${esc(c.checked_at)}: ${c.days_checked} UTC days, ${esc(c.first_day)} to ${esc(c.last_day)}: ${state}.</p>
${days.length ? table(["day", "at the source", "archived", "no recording", "not ready", "failed", "pending"], days, "completeness-days") : ""}`;
}

export function renderReport(d: ReportData): string {
  const window = `${d.window.since ?? "the first recording"} to ${d.window.until ?? "the last"}`;
  const failed = d.calls_by_status.filter((s) => s.status === "failed").reduce((n, s) => n + s.count, 0);
  const v = d.last_deep_verify;
  const protection = d.protection.map((p) => [
    p.count,
    p.lock_mode ?? "none",
    p.earliest_retain_until && `${p.earliest_retain_until} … ${p.latest_retain_until}`,
    p.legal_hold ? "ON" : "OFF",
    p.sse ?? "none shown",
    p.storage_class ?? "STANDARD",
    `${p.sidecar_lock_mode ?? "none"}, hold ${p.sidecar_legal_hold ? "ON" : "OFF"}`,
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Attestation report ${esc(window)}</title><style>${CSS}</style></head><body>
<h1>Call recording archive: attestation report</h1>
<p class="meta">Window: <b id="window">${esc(window)}</b> (recording days, UTC) · Scope: <code>s3://${esc(d.scope.bucket)}/${esc(d.scope.prefix)}</code><br>
Generated ${esc(d.generated_at)} by envoy-archiver ${esc(d.version)}</p>
<div class="cards">
<div class="card"><b id="archived-count">${d.archived.count}</b><span>recordings archived</span></div>
<div class="card"><b id="archived-bytes">${esc(bytesText(d.archived.bytes).split(" (")[0])}</b><span>${d.archived.bytes.toLocaleString("en-US")} bytes</span></div>
<div class="card"><b id="failed-count">${failed}</b><span>calls failed (now)</span></div>
<div class="card"><b id="hold-count">${d.on_legal_hold}</b><span>recordings on legal hold</span></div>
</div>
<h2>Recordings archived per day</h2>${chart(d)}
<h2>Calls in the window, by state</h2>
${table(
  ["state", "failure kind", "calls"],
  d.calls_by_status.map((s) => [s.status, s.kind ?? "", s.count]),
  "by-status",
)}
<p>Failed calls stay in the state DB: retryable ones are retried by every run, permanent ones by <code>run --retry-failed</code>.</p>
<h2>Protection, as the bucket showed it when read back</h2>
${table(["recordings", "lock mode", "retain until (earliest … latest)", "legal hold", "encryption", "storage class", "sidecar lock"], protection, "protection")}
<h2>Integrity</h2>
<p id="deep-verify">Last deep verify (every byte read back and hashed): ${v ? `${esc(v.finished_at)}, window ${esc(v.window)}, outcome <b>${esc(v.outcome)}</b>: <code>${esc(JSON.stringify(v.details))}</code>` : "none recorded"}.</p>
<p id="manifest">Manifest of this window: SHA-256 <code>${esc(d.manifest_sha256)}</code> (reproduce: <code>envoy-archiver manifest --format csv${d.window.since ? ` --since ${esc(d.window.since)}` : ""}${d.window.until ? ` --until ${esc(d.window.until)}` : ""} | sha256sum</code>).</p>
${auditSection(d)}
<h2>Completeness against the source</h2>
${completenessSection(d)}
<h2>Settings (no secrets)</h2>
${table(["setting", "value"], Object.entries(d.settings), "settings")}
<p class="meta">This report's own SHA-256 is recorded in the audit trail (<code>envoy-archiver audit</code>, command <code>report</code>).</p>
</body></html>
`;
}
