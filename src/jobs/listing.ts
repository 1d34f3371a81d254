/**
 * The run's work list: the calls Envoy lists in the window, each triaged against what the state DB knows, then
 * the calls earlier runs left waiting (not ready, failed retryably) that this window did not list.
 */
import type { Window } from "../base/dates.js";
import { isValidCallId } from "../base/keys.js";
import { redactJson } from "../base/redact.js";
import { inShard } from "../base/shard.js";
import type { Call, ListedCall } from "../envoy/envoy-client.js";
import { waitingCalls } from "../state/scans.js";
import type { RunContext } from "./run-context.js";

/** Queue one call for archiveRecording (waits while the queue is full). */
export type Schedule = (call: Call, raw: unknown) => Promise<void>;

/**
 * Page the window's calls and schedule each that needs work, until the run is stopped. `more`: a listing besides
 * the run's window (a day with a gap: completeness.ts), whose calls add to the run's total.
 */
export async function scheduleListed(
  ctx: RunContext,
  window: Window,
  schedule: Schedule,
  more = false,
): Promise<void> {
  const pages = ctx.client.iterateCalls(window, ctx.config.envoy.pageSize, (total) =>
    more ? ctx.tally.moreCalls(total) : ctx.tally.totalCalls(total),
  );
  for await (const page of pages) {
    for (const listed of page) {
      if (ctx.noNewWork.aborted) break;
      const call = triage(ctx, listed);
      if (call) await schedule(call, listed.raw);
    }
    if (ctx.noNewWork.aborted) break;
  }
}

/** Calls from earlier runs that are still waiting (not ready, failed retryably) but were not in this window. */
export async function scheduleWaiting(ctx: RunContext, schedule: Schedule): Promise<void> {
  for (const row of waitingCalls(ctx.state, ctx.runId, ctx.retryFailed)) {
    if (ctx.noNewWork.aborted) break;
    const raw = JSON.parse(row.call_json) as unknown;
    ctx.tally.fromEarlierRun();
    await schedule({ ...(raw as Call), id: row.call_id }, raw);
  }
}

/** Decide what to do with one listed call. Returns the call to process, or null when there is nothing to do. */
export function triage(ctx: RunContext, listed: ListedCall): Call | null {
  const { tally, state } = ctx;
  if (!listed.call || !isValidCallId(listed.call.id)) {
    const rawId = (listed.raw as { id?: unknown } | null)?.id;
    const shown = JSON.stringify(rawId ?? null).slice(0, 80);
    tally.listedInvalid();
    // Never build a key, a path or a state row from an id that is not call_<uuid>.
    ctx.logger.error(
      { call_id: shown, problem: listed.problem },
      `listed call has an invalid id ${shown}: skipped`,
    );
    return null;
  }
  const call = listed.call;
  if (!inShard(call.id, ctx.shard)) {
    tally.skipped("other_shards");
    return null;
  }
  const { previous, duplicate } = ctx.dryRun
    ? { previous: state.getCall(call.id), duplicate: false }
    : state.recordListed(call.id, call.call_time ?? null, JSON.stringify(redactJson(listed.raw)), ctx.runId);
  if (duplicate) return null;
  tally.listed();
  switch (previous?.status) {
    case "archived":
      tally.known("already_archived");
      return null;
    case "no_recording":
      tally.known("no_recording");
      return null;
    case "failed":
      if (previous.error_kind === "permanent" && !ctx.retryFailed) {
        tally.skipped("previously_failed");
        return null;
      }
  }
  return call;
}
