/** The summary `run` prints at the end: one JSON object (`--json`), or lines for a person. */
import { describeOffset } from "../base/clock.js";
import type { RunSummary } from "../jobs/run.js";
import { proofLine } from "../jobs/status.js";

export function printSummary(s: RunSummary, json: boolean): void {
  process.stdout.write(json ? jsonSummary(s) : textSummary(s));
}

/** The documented fields first, in their documented order; then the extras. */
function jsonSummary(s: RunSummary): string {
  return (
    JSON.stringify({
      run_id: s.run_id,
      listed: s.listed,
      archived: s.archived,
      already_archived: s.already_archived,
      not_ready: s.not_ready,
      no_recording: s.no_recording,
      failed: s.failed,
      bytes: s.bytes,
      duration_ms: s.duration_ms,
      outcome: s.outcome,
      mode: s.mode,
      window: s.window,
      dry_run: s.dry_run,
      would_archive: s.would_archive,
      would_archive_bytes: s.would_archive_bytes,
      would_archive_unsized: s.would_archive_unsized,
      previously_failed: s.previously_failed,
      failed_permanently: s.failed_permanently,
      from_earlier_runs: s.from_earlier_runs,
      other_shards: s.other_shards,
      source_changed: s.source_changed,
      clock_offset_ms: s.clock_offset_ms,
      write_proof: s.write_proof,
      api_requests: s.api_requests,
      rate_limited: s.rate_limited,
      retries: s.retries,
      ...(s.completeness ? { completeness: s.completeness } : {}),
      s3_retries: s.s3_retries,
      ...(s.error ? { error: s.error } : {}),
      ...(s.budget ? { budget: s.budget } : {}),
    }) + "\n"
  );
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function textSummary(s: RunSummary): string {
  const mb = mib(s.bytes);
  const secs = (s.duration_ms / 1000).toFixed(1);
  const window = `${s.window.startDate ?? "(beginning)"} .. ${s.window.endDate}`;
  const lines = [
    `envoy-archiver ${s.mode} run ${s.run_id}: ${s.outcome}${s.dry_run ? " (dry run: nothing written)" : ""}`,
    `  window            ${window}`,
    `  listed            ${s.listed}${s.from_earlier_runs ? ` (and ${s.from_earlier_runs} waiting from earlier runs, looked at again)` : ""}`,
    s.dry_run
      ? `  would archive     ${s.would_archive} (${mib(s.would_archive_bytes)} MiB${s.would_archive_unsized ? `, and ${s.would_archive_unsized} of unknown size` : ""}; bucket and credentials checked)`
      : `  archived          ${s.archived} (${mb} MiB in ${secs}s)`,
    `  already archived  ${s.already_archived}`,
    `  not ready yet     ${s.not_ready}`,
    `  no recording      ${s.no_recording}`,
    `  failed            ${s.failed}`,
    `  write proof       ${proofLine(s.write_proof)}`,
    `  API requests      ${s.api_requests} (${s.rate_limited} rate-limited, ${s.retries - s.s3_retries} retried)`,
    ...(s.s3_retries ? [`  S3 retries        ${s.s3_retries}`] : []),
  ];
  const earlier = s.failed_permanently - Math.min(s.failed, s.failed_permanently);
  if (s.failed_permanently > 0)
    lines.push(
      `  failed for good   ${s.failed_permanently} in the state DB${earlier > 0 ? ` (${earlier} from earlier runs)` : ""}: \`status\` lists them; \`run --retry-failed\` tries them again`,
    );
  if (s.budget)
    lines.push(
      `  budget spent      ${s.budget.limit}: ${s.budget.left_pending} call(s) left waiting${s.budget.listing_complete ? "" : ", the listing not gone through"}; the next run goes on`,
    );
  if (s.source_changed > 0)
    lines.push(
      `  source changed    ${s.source_changed} (archived originals kept; see the log and \`status\`)`,
    );
  for (const [server, ms] of [
    ["S3", s.clock_offset_ms.s3] as const,
    ["Envoy", s.clock_offset_ms.api] as const,
  ])
    if (Math.abs(ms) >= 60_000)
      lines.push(`  clock             ${describeOffset(ms)} ${server}'s (its time is used)`);
  if (s.completeness) lines.push(...completenessLines(s.completeness));
  if (s.error) lines.push(`  error             ${s.error}`);
  return lines.join("\n") + "\n";
}

function completenessLines(c: NonNullable<RunSummary["completeness"]>): string[] {
  if (c.error) return [`  completeness      not checked: ${c.error}`];
  const lines = [
    `  completeness      ${c.days_checked} days checked at the source, ${c.gap_days} with a gap listed in full, ${c.gaps_closed} closed`,
  ];
  if (c.missing_calls > 0)
    lines.push(
      `                    ${c.missing_calls} calls not in the archive, oldest on ${c.oldest_gap_day}`,
    );
  if (c.fewer_at_source_days.length > 0)
    lines.push(
      `                    fewer calls at the source than archived (deleted upstream; kept): ${c.fewer_at_source_days.join(", ")}`,
    );
  return lines;
}
