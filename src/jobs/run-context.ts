/**
 * What a run works with, made once at its start: the state DB (locked, with a heartbeat), the Envoy client and
 * media fetcher, the store, the upload ledger, the tally, and the abort that a fatal error or the caller's signal
 * trips. The run's steps (run.ts, listing.ts, archive-recording.ts) take this one object.
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { describeOffset, ServerClock } from "../base/clock.js";
import { backfillWindow, incrementalWindow, type Window } from "../base/dates.js";
import { ArchiverError } from "../base/errors.js";
import { Bandwidth } from "../base/bandwidth.js";
import { PACKAGE_VERSION } from "../base/paths.js";
import type { RetryPolicy } from "../base/retry.js";
import type { Shard } from "../base/shard.js";
import { EnvoyClient, type EnvoyClientOptions } from "../envoy/envoy-client.js";
import { MediaFetcher } from "../envoy/media.js";
import { RateGate } from "../envoy/rate-limit.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import { newRunId } from "../state/audit.js";
import { GROUP_COMMIT_MS, StateDb } from "../state/db.js";
import { acquireRunLock, HEARTBEAT_MS, openState } from "../state/integrity.js";
import type { RunObserver } from "../observe/observer.js";
import { Tally } from "../observe/tally.js";
import type { BucketRules } from "./protect.js";
import type { SourceChangeEvent } from "./source-changed.js";
import { UploadLedger } from "./upload-ledger.js";

const WATERMARK = "watermark";

export interface RunContext {
  config: Config;
  runId: string;
  dryRun: boolean;
  /** Only the calls of this shard. */
  shard: Shard | undefined;
  /** Also retry recordings that failed permanently in earlier runs. */
  retryFailed: boolean;
  logger: Logger;
  policy: RetryPolicy;
  state: StateDb;
  client: EnvoyClient;
  media: MediaFetcher;
  /** The Envoy API's clock: media URL expiry is judged by it. */
  apiClock: ServerClock;
  sink: S3Sink;
  ledger: UploadLedger;
  tally: Tally;
  /** Aborted by a fatal error (halt) or by the caller's signal: no new work, in-flight transfers aborted. */
  signal: AbortSignal;
  /** Aborted with `signal`, or when the run's budget is spent: start no new recording (jobs/budget.ts). */
  noNewWork: AbortSignal;
  halt: Halt;
  /** Recording statuses that mean "ready to download". */
  readySet: ReadonlySet<string>;
  /** Versioning and lock evidence (protect.ts), learned at the start of a run that writes. */
  bucket: BucketRules | undefined;
  /** Source changes seen by this run, for its audit record (the state's source_changes table holds them all). */
  sourceChanges: SourceChangeEvent[];
}

/** A fatal error anywhere stops every worker: the first one is kept, logged, and aborts the run's signal. */
export class Halt {
  private readonly abort = new AbortController();
  error: ArchiverError | undefined;
  readonly signal: AbortSignal;

  constructor(
    private readonly logger: Logger,
    external: AbortSignal | undefined,
  ) {
    this.signal = external ? AbortSignal.any([external, this.abort.signal]) : this.abort.signal;
  }

  raise(err: ArchiverError): void {
    if (this.error) return;
    this.error = err;
    this.logger.error({ code: err.code, err }, err.message);
    this.abort.abort(err);
  }
}

/** The state DB a run works in: locked (unless a dry run, which records nothing), with its heartbeat going. */
export interface OpenedState {
  state: StateDb;
  runId: string;
  heartbeat: NodeJS.Timeout | undefined;
}

export function openRunState(dbPath: string, dryRun: boolean, started: Date): OpenedState {
  // A dry run records nothing, not even that an earlier command died.
  const state = dryRun ? StateDb.open(dbPath) : openState(dbPath);
  const runId = newRunId("run", started);
  if (!dryRun) {
    const holder = acquireRunLock(state, dbPath, runId);
    if (holder) {
      state.close();
      throw new ArchiverError(
        "fatal",
        "locked",
        `another run holds the state DB ${dbPath}: run ${holder.run_id}, pid ${holder.pid} on ${holder.host}, started ${holder.acquired_at}, last heartbeat ${holder.heartbeat_at}. Wait for it to finish (a lock left by a dead process is taken over automatically).`,
      );
    }
    state.startGroupCommit(GROUP_COMMIT_MS);
  }
  const heartbeat = dryRun ? undefined : setInterval(() => state.heartbeat(runId), HEARTBEAT_MS);
  heartbeat?.unref();
  return { state, runId, heartbeat };
}

/** The window a run lists: the one asked for (a backfill), or from the watermark with the overlap (incremental). */
export function planWindow(
  opts: { since?: string | undefined; until?: string | undefined },
  state: StateDb,
  overlapDays: number,
  started: Date,
): { mode: "incremental" | "backfill"; window: Window } {
  const backfill = opts.since !== undefined || opts.until !== undefined;
  const window = backfill
    ? backfillWindow(opts.since, opts.until, started)
    : incrementalWindow(state.getMeta(WATERMARK), overlapDays, started);
  return { mode: backfill ? "backfill" : "incremental", window };
}

/** After an incremental run that went through its window: the next one starts from here (less the overlap). */
export function advanceWatermark(state: StateDb, started: Date): void {
  state.setMeta(WATERMARK, started.toISOString());
}

/** The run's connections (Envoy, media, the store), its tally and its abort, around the opened state. */
export function connectRun(
  config: Config,
  opened: OpenedState,
  run: {
    dryRun: boolean;
    shard: Shard | undefined;
    retryFailed: boolean;
    logger: Logger;
    policy: RetryPolicy;
    observer: RunObserver;
    signal: AbortSignal | undefined;
    /** Start no new recording once aborted (a spent budget). */
    noNewWork?: AbortSignal | undefined;
  },
): RunContext {
  const { logger, policy, observer } = run;
  const tally = new Tally(observer);
  const halt = new Halt(logger, run.signal);
  const { signal } = halt;
  // Every request, part upload and retry wait listens on it while it runs (and stops listening after): a few per
  // transfer, so Node's default limit of 10 would warn about a leak that is not one.
  setMaxListeners(16 + config.concurrency * (config.s3.queueSize + 6), signal);
  // Media URL expiry (expires_at) is the API's time: judged by its clock, learned from its Date headers.
  const apiClock = new ServerClock((offset) =>
    logger.warn(
      { offset_ms: offset },
      `this machine's clock is ${describeOffset(offset)} the Envoy API's: media URL expiry is judged by the API's clock`,
    ),
  );
  const client = envoyClientFor(config, {
    logger,
    policy,
    signal,
    connections: config.concurrency + 2,
    onResponse: (status) => observer.apiResponse?.(status),
    onRetry: () => tally.retried("api"),
    onRateLimit: () => tally.rateLimited(),
    clock: apiClock,
  });
  const media = new MediaFetcher({
    policy: { allowInsecure: config.allowInsecureUrls },
    userAgent: `envoy-archiver/${PACKAGE_VERSION}`,
    connections: config.concurrency,
    limits: config.media,
    bandwidth: config.bwLimit.length > 0 ? new Bandwidth(config.bwLimit) : undefined,
  });
  const sink = openSink(config, policy, logger, signal);
  sink.onRetry = () => tally.retried("s3");
  return {
    config,
    runId: opened.runId,
    dryRun: run.dryRun,
    shard: run.shard,
    retryFailed: run.retryFailed,
    logger,
    policy,
    state: opened.state,
    client,
    media,
    apiClock,
    sink,
    ledger: new UploadLedger(opened.state, sink, opened.runId, logger),
    tally,
    signal,
    halt,
    noNewWork: run.noNewWork ? AbortSignal.any([signal, run.noNewWork]) : signal,
    readySet: new Set(config.envoy.readyStatuses),
    bucket: undefined,
    sourceChanges: [],
  };
}

/** The Envoy API client as the settings describe it (every command that talks to Envoy makes it here). */
export function envoyClientFor(
  config: Config,
  opts: Pick<
    EnvoyClientOptions,
    "logger" | "policy" | "signal" | "connections" | "onResponse" | "onRetry" | "onRateLimit" | "clock"
  >,
): EnvoyClient {
  return new EnvoyClient({
    baseUrl: config.envoy.apiUrl,
    apiKey: config.envoy.apiKey,
    token: config.envoy.token,
    organizationId: config.envoy.organizationId,
    gate: new RateGate(config.envoy.rps),
    userAgent: `envoy-archiver/${PACKAGE_VERSION}`,
    maxPages: config.envoy.maxPages,
    ...opts,
  });
}
