/**
 * The run: open the state DB (locked, with a heartbeat), plan the window, start the store and the source, page
 * and triage the calls (listing.ts), move each recording that is not archived yet through archiveRecording
 * (archive-recording.ts) with bounded concurrency, drain, and record how the run ended. State is written after
 * the bytes are stored and counted, never before, so a kill at any instant costs at most a re-transfer, never a
 * recording.
 */
import type { Logger } from "pino";
import { secretsOf, type Config } from "../base/config.js";
import { SKEW_THRESHOLD_MS, describeOffset } from "../base/clock.js";
import { BoundedQueue } from "../base/concurrency.js";
import type { Window } from "../base/dates.js";
import { ArchiverError, classify, StopRequested } from "../base/errors.js";
import { redactText, registerSecrets } from "../base/redact.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../base/retry.js";
import type { Shard } from "../base/shard.js";
import { clearSpool } from "../s3/spool.js";
import { startCommandRun } from "../state/audit.js";
import type { ChainLink } from "../state/db.js";
import { anchorLink } from "./audit.js";
import type { RunObserver } from "../observe/observer.js";
import type { CompletenessFigures, RunOutcome, TallyCounts } from "../observe/tally.js";
import { archiveRecording } from "./archive-recording.js";
import { checkSource, closeGaps, settleCheck, type SourceCheck } from "./completeness.js";
import { scheduleListed, scheduleWaiting, type Schedule } from "./listing.js";
import { learnBucket } from "./protect.js";
import { holdLease } from "./run-lease.js";
import { RunBudget, type BudgetSettings } from "./budget.js";
import type { LagFacts } from "../base/lag.js";
import { readLag } from "../state/lag.js";
import { bucketVersioning, type Versioning } from "../s3/versioning.js";
import {
  advanceWatermark,
  connectRun,
  openRunState,
  planWindow,
  type OpenedState,
  type RunContext,
} from "./run-context.js";

export type { RunOutcome } from "../observe/tally.js";

export interface RunOptions {
  since?: string | undefined;
  until?: string | undefined;
  dryRun?: boolean;
  /** Also retry recordings that failed permanently in earlier runs. */
  retryFailed?: boolean;
  /** Only the calls of this shard (a stable hash of the call id); others are skipped without a trace. */
  shard?: Shard | undefined;
  /** The run's budget; default: the configuration's (ARCHIVER_MAX_DURATION, ARCHIVER_MAX_BYTES, ARCHIVER_CUTOFF). */
  budget?: BudgetSettings;
}

/** The run's counts (the tally's: observe/tally.ts), what it was, and how it ended. */
export interface RunSummary extends TallyCounts {
  run_id: string;
  mode: "incremental" | "backfill";
  window: Window;
  dry_run: boolean;
  /** How far the S3 server's and the Envoy API's clocks are from this machine's (ms, + when theirs is ahead). */
  clock_offset_ms: { s3: number; api: number };
  /** This run's archived and adopted recordings by how their stored bytes were proven (s3/write-proof.ts). */
  write_proof: Record<string, number>;
  api_requests: number;
  duration_ms: number;
  outcome: RunOutcome;
  error?: string;
  /** Incremental runs: the days before the window counted at the source (completeness.ts). */
  completeness?: CompletenessFigures;
  /** Present when a budget ended the run: which, and what is left for the next run. */
  budget?: BudgetReport;
}

export interface BudgetReport {
  spent: "duration" | "bytes";
  limit: string;
  /** Calls the state DB holds as waiting (listed, not archived yet; not ready; failed retryably). */
  left_pending: number;
  /** Whether the window's listing was gone through before the budget was spent (if not, more may be unlisted). */
  listing_complete: boolean;
}

export interface RunDeps {
  logger: Logger;
  /** Aborting it stops the run gracefully: no new work, in-flight transfers aborted, state saved. */
  signal?: AbortSignal;
  now?: () => Date;
  policy?: RetryPolicy;
  /** Progress lines and metrics listen here. */
  observer?: RunObserver;
  /**
   * The summary's fields in the run's last log record (default); false when the caller prints the summary
   * itself to the same person (a terminal): the record then names only the run and its outcome.
   */
  summaryInLog?: boolean;
}

/** When the run started, and what it lists. */
interface RunPlan {
  started: Date;
  t0: number;
  mode: "incremental" | "backfill";
  window: Window;
}

export async function runArchive(config: Config, opts: RunOptions, deps: RunDeps): Promise<RunSummary> {
  const started = deps.now?.() ?? new Date();
  const t0 = performance.now();
  const { logger } = deps;
  const dryRun = opts.dryRun ?? false;
  registerSecrets(secretsOf(config));
  const opened = openRunState(config.dbPath, dryRun, started);
  const plan: RunPlan = { started, t0, ...planWindow(opts, opened.state, config.overlapDays, started) };
  const observer = deps.observer ?? {};
  const budget = new RunBudget(opts.budget ?? config.budget, (limit) =>
    logger.warn({ limit }, `run budget spent (${limit}): no new recording is started`),
  );
  const ctx = connectRun(config, opened, {
    dryRun,
    shard: opts.shard,
    retryFailed: opts.retryFailed ?? false,
    logger,
    policy: { ...(deps.policy ?? DEFAULT_RETRY_POLICY), retries: config.maxRetries },
    observer,
    signal: deps.signal ? AbortSignal.any([deps.signal, budget.stopAll]) : budget.stopAll,
    noNewWork: budget.noNewWork,
  });
  const { runId, state } = ctx;
  const { mode, window } = plan;
  if (!dryRun) startCommandRun(state, config, "run", window, { id: runId, mode, dryRun });
  logger.info({ run_id: runId, mode, window, dry_run: dryRun, shard: opts.shard }, "run started");
  observer.runStarted?.(ctx.tally.live);
  budget.start(() => ctx.tally.live.receivedBytes);
  const { listed, completeness } = await work(ctx, opened, plan).finally(() => budget.stop());
  ctx.tally.failedPermanently(ctx.state.failedCalls(0).permanent);
  const summary = summarize(ctx, plan, deps.signal?.aborted === true);
  if (completeness) summary.completeness = completeness;
  if (budget.spent && summary.outcome === "budget") summary.budget = budgetReport(ctx, budget, listed);
  const { link, lag } = finish(ctx, plan, summary, deps.summaryInLog ?? true);
  try {
    if (link) await anchorLink(config, link, logger, ctx.sink);
  } finally {
    ctx.sink.close();
  }
  observer.runFinished?.(summary);
  observer.lagRead?.(lag);
  return summary;
}

/** What the work of a run leaves: whether the window's listing was gone through, the completeness check's figures. */
interface WorkDone {
  listed: boolean;
  completeness: CompletenessFigures | undefined;
}

/**
 * Everything between the start and the end: the store made ready, the days before the window checked against the
 * source, the calls listed (the window, then each day with a gap) and archived, drained.
 */
async function work(ctx: RunContext, opened: OpenedState, plan: RunPlan): Promise<WorkDone> {
  const { window } = plan;
  // Bounded concurrency, and bounded look-ahead: listing never runs more than a few pages ahead of the workers.
  const queue = new BoundedQueue(ctx.config.concurrency);
  const schedule: Schedule = (call, raw) =>
    queue.add(() => (ctx.noNewWork.aborted ? Promise.resolve() : archiveRecording(ctx, call, raw)));
  let releaseLease: (() => Promise<void>) | undefined;
  const done: WorkDone = { listed: false, completeness: undefined };
  let check: SourceCheck | null = null;
  try {
    await queue.run(async () => {
      // A dry run is the pre-flight check: the bucket and the credentials are checked too (nothing is written).
      if (ctx.dryRun) await checkStore(ctx, lockAsked(ctx.config.storage));
      else releaseLease = await prepareStore(ctx);
      check = await checkSource(ctx, window, plan.mode === "backfill");
      await scheduleListed(ctx, window, schedule);
      if (check && !ctx.noNewWork.aborted) await closeGaps(ctx, check, schedule);
      done.listed = !ctx.noNewWork.aborted;
      if (!ctx.dryRun && !ctx.noNewWork.aborted) await scheduleWaiting(ctx, schedule);
    });
    // Uploads kept for resume stay kept when the run was cut short: the next run continues them.
    if (!ctx.dryRun && !ctx.noNewWork.aborted) await ctx.ledger.abortUnclaimed();
    if (check) done.completeness = settleCheck(ctx, check);
  } catch (err) {
    if (!(err instanceof StopRequested) && !ctx.signal.aborted) ctx.halt.raise(classify(err));
    else if (err instanceof ArchiverError && err.kind === "fatal") ctx.halt.raise(err);
  } finally {
    await releaseLease?.();
    // The store stays open for the trail's head (runArchive closes it).
    await Promise.allSettled([ctx.client.close(), ctx.media.close()]);
    if (opened.heartbeat) clearInterval(opened.heartbeat);
  }
  return done;
}

/**
 * The bucket exists and these credentials reach it; with lock settings (`asked` names them), it has Object Lock.
 * Read only: a dry run's pre-flight check, and the start of every run that writes. The versioning it read, if any.
 */
async function checkStore(ctx: RunContext, asked: string): Promise<() => Promise<Versioning>> {
  const { sink, logger } = ctx;
  await sink.checkBucket();
  let versioning: Promise<Versioning> | undefined;
  const readVersioning = () => (versioning ??= bucketVersioning(sink, logger));
  if (asked) await sink.checkObjectLock(asked, readVersioning);
  return readVersioning;
}

/**
 * Before a run that writes: the bucket checked, its rules learned, the lease on the prefix and shard taken (what
 * releases it is returned), leftovers of killed runs swept.
 */
async function prepareStore(ctx: RunContext): Promise<() => Promise<void>> {
  const { sink, config, logger } = ctx;
  const readVersioning = await checkStore(ctx, lockAsked(config.storage));
  // The S3 server's time, learned from its Date header (the SDK corrects its offset on a skew error).
  const s3Offset = sink.clockOffsetMs();
  if (Math.abs(s3Offset) >= SKEW_THRESHOLD_MS)
    logger.warn(
      { offset_ms: s3Offset },
      `this machine's clock is ${describeOffset(s3Offset)} the S3 server's: requests are signed with the server's time`,
    );
  const versioned = await readVersioning();
  ctx.bucket = learnBucket(sink, logger, versioned);
  const release = await holdLease(ctx, versioned === "off");
  try {
    await ctx.ledger.sweep(`${config.s3.prefix}recordings/`);
    // Bodies a killed run left on disk (we hold the lock: no other run of this state DB is using them).
    if (config.s3.spoolDir) await clearSpool(config.s3.spoolDir);
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}

/** The lock settings the run asks for, by name ("" when none): what a bucket without Object Lock is told. */
function lockAsked(s: Config["storage"]): string {
  const named = [
    ...(s.lockMode ? [`ARCHIVER_OBJECT_LOCK_MODE=${s.lockMode}`] : []),
    ...(s.legalHold ? ["ARCHIVER_LEGAL_HOLD=true"] : []),
  ];
  return named.join(" and ");
}

/** The run's summary: its counts from the tally, its clocks and API figures, how it ended. */
function summarize(ctx: RunContext, plan: RunPlan, stopped: boolean): RunSummary {
  const fatal = ctx.halt.error;
  const { rate_limited, retries, ...counts } = ctx.tally.counts;
  const interrupted = stopped && !fatal;
  const summary: RunSummary = {
    run_id: ctx.runId,
    mode: plan.mode,
    window: plan.window,
    dry_run: ctx.dryRun,
    ...counts,
    clock_offset_ms: { s3: Math.round(ctx.sink.clockOffsetMs()), api: ctx.apiClock.offsetMs },
    write_proof: { ...ctx.tally.proofs },
    api_requests: ctx.client.stats.requests,
    rate_limited,
    retries,
    duration_ms: Math.round(performance.now() - plan.t0),
    outcome: fatal
      ? "fatal"
      : interrupted
        ? "interrupted"
        : ctx.noNewWork.aborted
          ? "budget"
          : counts.failed > 0
            ? "failures"
            : "ok",
  };
  if (fatal) summary.error = redactText(fatal.message);
  return summary;
}

/** What a spent budget leaves for the next run. */
function budgetReport(ctx: RunContext, budget: RunBudget, listed: boolean): BudgetReport {
  const by = ctx.state.countsByStatus();
  return {
    spent: budget.spent!,
    limit: budget.describe(),
    left_pending: by.pending.count + by.not_ready.count + by.failed.count,
    listing_complete: listed,
  };
}

/** The run's end in the state DB (watermark, audit record, lock released) and in the log; what it leaves. */
function finish(
  ctx: RunContext,
  plan: RunPlan,
  summary: RunSummary,
  inLog: boolean,
): { link: ChainLink | undefined; lag: LagFacts } {
  const { state } = ctx;
  let link: ChainLink | undefined;
  if (!ctx.dryRun) {
    state.stopGroupCommit();
    // The watermark moves only past a window gone through: not after a stop, a fatal error or a spent budget.
    if (summary.mode === "incremental" && (summary.outcome === "ok" || summary.outcome === "failures"))
      advanceWatermark(state, plan.started);
    const details =
      ctx.sourceChanges.length > 0 || summary.completeness
        ? {
            ...(ctx.sourceChanges.length > 0 ? { source_changed: ctx.sourceChanges.slice(0, 1000) } : {}),
            ...(summary.completeness ? { completeness: summary.completeness } : {}),
          }
        : undefined;
    link = state.finishRun(ctx.runId, summary, summary.outcome, summary.error ?? null, details);
    state.releaseLock(ctx.runId);
  }
  const lag = readLag(state);
  state.close();
  ctx.logger.info(inLog ? { ...summary } : { run_id: summary.run_id }, `run ${summary.outcome}`);
  return { link, lag };
}
