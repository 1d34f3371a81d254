/**
 * Completeness against the source, one UTC day at a time: Envoy's count of a day's calls (`GET /calls` with
 * start_date = end_date = the day and page_size=1: its pagination.total_count; both dates are inclusive and
 * filter on the UTC day of call_time) beside what the state knows of that day, by status (state/days.ts).
 *
 * - A day whose count differs from the calls the state knows is a gap: an incremental run lists it in full
 *   (the listing path and its guards, listing.ts), so calls that appeared late are archived by the next run.
 * - A day whose source count exceeds what the archive holds (archived, or known to have no recording) is short:
 *   `verify --source` names it and exits 3.
 * - A day whose source count is below the calls the state knows lost calls upstream: reported, and nothing is
 *   deleted from the archive because of it.
 * Counts prove counts, not identities: a call deleted and another added on the same day leave the count as it was.
 */
import { addDays, type Window } from "../base/dates.js";
import { BoundedQueue } from "../base/concurrency.js";
import { ArchiverError, classify } from "../base/errors.js";
import { redactText } from "../base/redact.js";
import type { EnvoyClient } from "../envoy/envoy-client.js";
import type { CompletenessFigures } from "../observe/tally.js";
import type { CallStatus, StateDb } from "../state/db.js";
import { scheduleListed, type Schedule } from "./listing.js";
import type { RunContext } from "./run-context.js";

/** One UTC day: the source's count beside the calls the state knows, by status. */
export interface DayCount extends Record<CallStatus, number> {
  day: string;
  source: number;
  /** Every call of the day the state has a row for, whatever its status. */
  known: number;
}

/** The last completeness check (a run's or `verify --source`'s), as the state keeps it for `status`. */
export interface StoredCompleteness extends CompletenessFigures {
  checked_at: string;
  by: string;
  first_day: string | null;
  last_day: string | null;
  /** The days that are not complete (short, or fewer at the source), oldest first; at most MAX_DAYS_KEPT. */
  days: DayCount[];
}

const META_KEY = "completeness";
const MAX_DAYS_KEPT = 400;
/** Days counted at once (each is one small request; the API's rate gate paces them like any other). */
const COUNTS_AT_ONCE = 4;

/** Calls of the day the archive holds: archived, or known to have no recording. */
const held = (d: DayCount) => d.archived + d.no_recording;
export const isShort = (d: DayCount) => d.source > held(d);
export const isGap = (d: DayCount) => d.source !== d.known;
export const fewerAtSource = (d: DayCount) => d.source < d.known;

/** Every day from `first` to `last`, inclusive. */
export function daysFrom(first: string, last: string): string[] {
  const out: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) out.push(d);
  return out;
}

/** The `n` days before the window an incremental run lists anyway; none when it lists everything. */
export function daysBefore(window: Window, n: number): string[] {
  if (!window.startDate || n <= 0) return [];
  return daysFrom(addDays(window.startDate, -n), addDays(window.startDate, -1));
}

/** Each day's count at the source: one request a day. A source that gives no total_count cannot be checked. */
export async function countAtSource(client: EnvoyClient, days: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const queue = new BoundedQueue(COUNTS_AT_ONCE);
  await queue.run(async () => {
    for (const day of days)
      await queue.add(async () => {
        const page = await client.listCalls({
          page: 1,
          pageSize: 1,
          window: { startDate: day, endDate: day },
        });
        if (page.totalCount === null || page.totalCount < 0)
          throw new ArchiverError(
            "permanent",
            "no_total_count",
            `GET /calls for ${day} gave ${page.totalCount === null ? "no" : "a negative"} pagination.total_count: the source's per-day counts cannot be checked`,
          );
        counts.set(day, page.totalCount);
      });
  });
  return counts;
}

/** Each day's source count beside what the state knows of it, in day order. */
export function compareDays(state: StateDb, source: Map<string, number>): DayCount[] {
  return [...source.keys()].sort().map((day) => {
    const known = state.knownOnDay(day);
    const total = Object.values(known).reduce((a, b) => a + b, 0);
    return { day, source: source.get(day)!, known: total, ...known };
  });
}

/** The figures of a set of compared days (gap_days and gaps_closed are the run's to fill). */
export function figuresOf(days: DayCount[]): CompletenessFigures {
  const short = days.filter(isShort);
  return {
    days_checked: days.length,
    gap_days: 0,
    gaps_closed: 0,
    missing_calls: short.reduce((n, d) => n + d.source - held(d), 0),
    oldest_gap_day: short[0]?.day ?? null,
    fewer_at_source_days: days.filter(fewerAtSource).map((d) => d.day),
  };
}

/** Keep the check for `status` (the run's or verify's latest). */
export function storeCompleteness(
  state: StateDb,
  by: string,
  days: DayCount[],
  f: CompletenessFigures,
): void {
  const stored: StoredCompleteness = {
    ...f,
    checked_at: new Date().toISOString(),
    by,
    first_day: days[0]?.day ?? null,
    last_day: days[days.length - 1]?.day ?? null,
    days: days.filter((d) => isShort(d) || fewerAtSource(d)).slice(0, MAX_DAYS_KEPT),
  };
  state.setMeta(META_KEY, JSON.stringify(stored));
}

export function readCompleteness(state: StateDb): StoredCompleteness | null {
  const v = state.getMeta(META_KEY);
  return v === null ? null : (JSON.parse(v) as StoredCompleteness);
}

/** What a run learned before listing: the source's counts of the checked days, and which of them have a gap. */
export interface SourceCheck {
  counts: Map<string, number>;
  /** Days whose count differs from the calls the state knows: listed in full. */
  gaps: string[];
  /** Of those, days with calls the state did not know (the others have fewer at the source). */
  unknownCalls: string[];
  error?: string;
}

/**
 * Before an incremental run lists its window: the ARCHIVER_COMPLETENESS_DAYS days before it, counted at the
 * source. Off with 0, for a backfill or a first run (they list their whole window) and for a shard (its state
 * holds only its own calls). A check that fails (other than fatally) is logged and the run goes on without it.
 */
export async function checkSource(
  ctx: RunContext,
  window: Window,
  backfill: boolean,
): Promise<SourceCheck | null> {
  const days = backfill || ctx.shard ? [] : daysBefore(window, ctx.config.completenessDays);
  if (days.length === 0) return null;
  try {
    const counts = await countAtSource(ctx.client, days);
    const compared = compareDays(ctx.state, counts);
    for (const d of compared.filter(fewerAtSource))
      ctx.logger.warn(
        { day: d.day, source: d.source, known: d.known },
        `${d.day}: the source now counts ${d.source} calls, the archive knows ${d.known}: calls were deleted upstream (the archive keeps them)`,
      );
    return {
      counts,
      gaps: compared.filter(isGap).map((d) => d.day),
      unknownCalls: compared.filter((d) => d.source > d.known).map((d) => d.day),
    };
  } catch (err) {
    const c = classify(err);
    if (c.kind === "fatal" || ctx.signal.aborted) throw err;
    const error = redactText(c.message);
    ctx.logger.error({ code: c.code }, `completeness check not made: ${error}`);
    return { counts: new Map(), gaps: [], unknownCalls: [], error };
  }
}

/** List every day with a gap in full: late calls are scheduled like any other. */
export async function closeGaps(ctx: RunContext, check: SourceCheck, schedule: Schedule): Promise<void> {
  for (const day of check.gaps) {
    if (ctx.signal.aborted) return;
    ctx.logger.info(
      { day },
      `${day}: the source's count differs from the archive's: listing the day in full`,
    );
    await scheduleListed(ctx, { startDate: day, endDate: day }, schedule, true);
  }
}

/** After the run: the checked days against the state as it is now (kept for `status` unless a dry run). */
export function settleCheck(ctx: RunContext, check: SourceCheck): CompletenessFigures {
  const days = compareDays(ctx.state, check.counts);
  const unknown = new Set(check.unknownCalls);
  const figures: CompletenessFigures = check.error
    ? { ...figuresOf([]), error: check.error }
    : {
        ...figuresOf(days),
        gap_days: check.gaps.length,
        gaps_closed: days.filter((d) => unknown.has(d.day) && d.known >= d.source).length,
      };
  if (!ctx.dryRun) storeCompleteness(ctx.state, ctx.runId, days, figures);
  return figures;
}
