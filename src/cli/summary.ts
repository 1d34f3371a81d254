/** The summary `run` prints at the end: one JSON object (`--json`), or lines for a person. */
import { describeOffset } from "../base/clock.js";
import type { RunSummary } from "../jobs/run.js";

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
      previously_failed: s.previously_failed,
      other_shards: s.other_shards,
      source_changed: s.source_changed,
      clock_offset_ms: s.clock_offset_ms,
      api_requests: s.api_requests,
      rate_limited: s.rate_limited,
      retries: s.retries,
      ...(s.error ? { error: s.error } : {}),
      ...(s.budget ? { budget: s.budget } : {}),
    }) + "\n"
  );
}

function textSummary(s: RunSummary): string {
  const mb = (s.bytes / 1024 / 1024).toFixed(1);
  const secs = (s.duration_ms / 1000).toFixed(1);
  const window = `${s.window.startDate ?? "(beginning)"} .. ${s.window.endDate}`;
  const lines = [
    `envoy-archiver ${s.mode} run ${s.run_id}: ${s.outcome}${s.dry_run ? " (dry run: nothing written)" : ""}`,
    `  window            ${window}`,
    `  listed            ${s.listed}`,
    s.dry_run
      ? `  would archive     ${s.would_archive}`
      : `  archived          ${s.archived} (${mb} MiB in ${secs}s)`,
    `  already archived  ${s.already_archived}`,
    `  not ready yet     ${s.not_ready}`,
    `  no recording      ${s.no_recording}`,
    `  failed            ${s.failed}${s.previously_failed ? ` (+${s.previously_failed} failed in earlier runs; --retry-failed retries them)` : ""}`,
    `  API requests      ${s.api_requests} (${s.rate_limited} rate-limited, ${s.retries} retried)`,
  ];
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
  if (s.error) lines.push(`  error             ${s.error}`);
  return lines.join("\n") + "\n";
}
