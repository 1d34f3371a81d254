/**
 * `envoy-archiver verify --source`: every UTC day of a window, the source's count of calls beside what the archive
 * holds of them (completeness.ts). A day is complete when every call the source counts is archived or known to
 * have no recording; a day with fewer calls at the source than the archive knows is named too (deleted upstream;
 * the archive keeps them). Recorded in the audit trail (the runs table) as `verify-source`.
 */
import type { Logger } from "pino";
import type { Config } from "../../base/config.js";
import { classify } from "../../base/errors.js";
import { DEFAULT_RETRY_POLICY } from "../../base/retry.js";
import { NO_COUNTS } from "../../observe/tally.js";
import { startCommandRun } from "../../state/audit.js";
import { openState } from "../../state/integrity.js";
import {
  compareDays,
  countAtSource,
  daysFrom,
  fewerAtSource,
  figuresOf,
  isShort,
  storeCompleteness,
  type DayCount,
} from "../completeness.js";
import { envoyClientFor } from "../run-context.js";

export interface SourceVerifyResult {
  first_day: string;
  last_day: string;
  days_checked: number;
  /** Calls the source counts over the window, and of them those the archive holds. */
  source_calls: number;
  held_calls: number;
  /** Calls the source counts that the archive does not hold. */
  missing_calls: number;
  /** Days with calls the archive does not hold, each with its counts. */
  short_days: DayCount[];
  /** Days the source counts fewer calls on than the archive knows (deleted upstream; nothing is deleted here). */
  fewer_at_source: DayCount[];
}

export async function verifySource(
  config: Config,
  window: { startDate: string; endDate: string },
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<SourceVerifyResult> {
  const { logger } = deps;
  const state = openState(config.dbPath, { always: true });
  const runId = startCommandRun(state, config, "verify-source", window);
  const client = envoyClientFor(config, { logger, policy: DEFAULT_RETRY_POLICY, signal: deps.signal });
  let outcome = "fatal";
  let error: string | null = null;
  let result: SourceVerifyResult | undefined;
  try {
    const days = compareDays(state, await countAtSource(client, daysFrom(window.startDate, window.endDate)));
    result = resultOf(window, days);
    for (const d of result.short_days)
      logger.error(
        { day: d.day, source: d.source, archived: d.archived, no_recording: d.no_recording, known: d.known },
        `${d.day}: the source counts ${d.source} calls, the archive holds ${d.archived + d.no_recording}`,
      );
    for (const d of result.fewer_at_source)
      logger.warn(
        { day: d.day, source: d.source, known: d.known },
        `${d.day}: the source counts ${d.source} calls, fewer than the ${d.known} the archive knows (deleted upstream; kept)`,
      );
    storeCompleteness(state, runId, days, figuresOf(days));
    outcome = result.short_days.length > 0 ? "failures" : "ok";
    return result;
  } catch (err) {
    error = classify(err).message;
    throw err;
  } finally {
    await client.close();
    state.finishRun(
      runId,
      {
        ...NO_COUNTS,
        listed: result?.source_calls ?? 0,
        archived: result?.held_calls ?? 0,
        failed: result?.missing_calls ?? 0,
      },
      outcome,
      error,
      result && {
        ...result,
        short_days: result.short_days.slice(0, 1000),
        fewer_at_source: result.fewer_at_source.slice(0, 1000),
      },
    );
    state.close();
  }
}

function resultOf(window: { startDate: string; endDate: string }, days: DayCount[]): SourceVerifyResult {
  const source = days.reduce((n, d) => n + d.source, 0);
  const held = days.reduce((n, d) => n + Math.min(d.source, d.archived + d.no_recording), 0);
  return {
    first_day: window.startDate,
    last_day: window.endDate,
    days_checked: days.length,
    source_calls: source,
    held_calls: held,
    missing_calls: source - held,
    short_days: days.filter(isShort),
    fewer_at_source: days.filter(fewerAtSource),
  };
}
