/**
 * The run: plan the window, page the calls, and move each recording that is not archived yet through
 * metadata → download → S3 → sidecar → state, with bounded concurrency. State is written after the bytes are
 * stored and counted, never before, so a kill at any instant costs at most a re-transfer, never a recording.
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import { secretsOf, type Config } from "../base/config.js";
import { newRunId, NO_COUNTS, startCommandRun } from "../state/audit.js";
import { BoundedQueue } from "../base/concurrency.js";
import { backfillWindow, incrementalWindow, type Window } from "../base/dates.js";
import { ArchiverError, classify, StopRequested } from "../base/errors.js";
import { callIdOfKey, isValidCallId, recordingKey } from "../base/keys.js";
import { PACKAGE_VERSION } from "../base/paths.js";
import { RateGate } from "../envoy/rate-limit.js";
import { redactJson, redactText, registerSecrets } from "../base/redact.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../base/retry.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import { objectParamsFor } from "../s3/object-params.js";
import { clearSpool } from "../s3/spool.js";
import { EnvoyClient, type Call, type ListedCall } from "../envoy/envoy-client.js";
import { MediaFetcher } from "../envoy/media.js";
import { GROUP_COMMIT_MS, StateDb, type RunCounts } from "../state/db.js";
import { acquireRunLock, HEARTBEAT_MS, openState } from "../state/integrity.js";
import { waitingCalls } from "../state/scans.js";
import { refreshingOpener } from "../envoy/url-refresh.js";
import { objectMetadata, storedContentType } from "./recording-meta.js";
import type { LiveRun, RunObserver } from "../observe/observer.js";
import type { TransferResult } from "../s3/s3.js";
import { markArchivedWithEvidence } from "../state/evidence.js";
import { learnBucket, type BucketRules } from "./protect.js";
import { recordingIO } from "./recording-io.js";
import { inShard, type Shard } from "../base/shard.js";
import { describeOffset, ServerClock, SKEW_THRESHOLD_MS } from "../base/clock.js";
import { SourceChanged } from "../s3/conflict.js";
import { handleSourceChanged, type SourceChangeEvent } from "./source-changed.js";

export interface RunOptions {
  since?: string | undefined;
  until?: string | undefined;
  dryRun?: boolean;
  /** Also retry recordings that failed permanently in earlier runs. */
  retryFailed?: boolean;
  /** Only the calls of this shard (a stable hash of the call id); others are skipped without a trace. */
  shard?: Shard | undefined;
}

export type RunOutcome = "ok" | "failures" | "fatal" | "interrupted";

export interface RunSummary extends RunCounts {
  run_id: string;
  mode: "incremental" | "backfill";
  window: Window;
  dry_run: boolean;
  /** Dry run only: recordings that a real run would download. */
  would_archive: number;
  /** Calls that failed permanently in an earlier run and were left alone (see --retry-failed). */
  previously_failed: number;
  /** Calls listed that belong to other shards. */
  other_shards: number;
  /** Recordings whose source changed after they were archived (the originals are kept: source-changed.ts). */
  source_changed: number;
  /** How far the S3 server's and the Envoy API's clocks are from this machine's (ms, + when theirs is ahead). */
  clock_offset_ms: { s3: number; api: number };
  api_requests: number;
  rate_limited: number;
  retries: number;
  duration_ms: number;
  outcome: RunOutcome;
  error?: string;
}

export interface RunDeps {
  logger: Logger;
  /** Aborting it stops the run gracefully: no new work, in-flight transfers aborted, state saved. */
  signal?: AbortSignal;
  now?: () => Date;
  policy?: RetryPolicy;
  /** Progress lines and metrics listen here. */
  observer?: RunObserver;
}

const WATERMARK = "watermark";
/** Uploads under our prefix that no state DB tracks (a lost DB, another shard) are left this long before abort. */
const UNTRACKED_UPLOAD_MAX_AGE_MS = 24 * 3600_000;

/**
 * Multipart uploads left by runs that were stopped or died (no other run can be using them: we hold the lock).
 * For each recording not archived yet, the one with the most recorded parts is kept for its transfer to continue
 * (`resumable`); every other tracked upload is aborted, and so are untracked ones under our prefix for calls
 * this state DB knows, or older than a day. Kept uploads that this run never gets to are aborted at its end
 * (`abortUnclaimedUploads`).
 */
async function sweepOrphanedUploads(
  state: StateDb,
  sink: S3Sink,
  prefix: string,
  logger: Logger,
): Promise<{ aborted: number; resumable: Set<string> }> {
  let aborted = 0;
  const tracked = state.trackedUploads();
  const resumable = new Set<string>();
  for (const callId of new Set(tracked.map((u) => u.call_id))) {
    const best = state.uploadsFor(callId)[0];
    if (best && best.parts.length > 0 && state.getCall(callId)?.status !== "archived")
      resumable.add(best.uploadId);
  }
  for (const u of tracked) if (!resumable.has(u.upload_id) && (await abortTracked(state, sink, u))) aborted++;
  if (resumable.size > 0)
    logger.info({ uploads: resumable.size }, "interrupted multipart uploads kept to be resumed");
  const trackedIds = new Set(tracked.map((u) => u.upload_id));
  const cutoff = Date.now() - UNTRACKED_UPLOAD_MAX_AGE_MS;
  let open: Awaited<ReturnType<S3Sink["listUploads"]>> = [];
  try {
    open = await sink.listUploads(prefix);
  } catch (err) {
    const c = classify(err);
    if (c.kind === "fatal") throw c;
    logger.warn(
      { code: c.code },
      "the S3 endpoint cannot list multipart uploads: untracked leftovers are not swept",
    );
  }
  for (const u of open) {
    if (trackedIds.has(u.uploadId)) continue;
    // Ours although untracked: a run killed between S3 creating the upload and the state DB recording it. Only
    // this state DB lists this call (shards partition calls; the lock keeps other runs of this DB out).
    const callId = callIdOfKey(u.key);
    const ours = callId !== null && state.getCall(callId) !== undefined;
    const stale = u.initiated !== undefined && u.initiated.getTime() <= cutoff;
    if (!ours && !stale) continue;
    if (await sink.abortUpload(u.key, u.uploadId)) aborted++;
  }
  if (aborted > 0) logger.info({ aborted }, "aborted multipart uploads left by an interrupted run");
  return { aborted, resumable };
}

/** Abort a tracked upload and forget it; false when S3 could not abort it (the next run tries again). */
async function abortTracked(state: StateDb, sink: S3Sink, u: { key: string; upload_id: string }) {
  if (!(await sink.abortUpload(u.key, u.upload_id))) return false;
  state.untrackUpload(u.upload_id);
  return true;
}

/** After a run that went through all its work: abort the kept uploads that no transfer took over. */
async function abortUnclaimedUploads(state: StateDb, sink: S3Sink, runId: string, logger: Logger) {
  let aborted = 0;
  for (const u of state.trackedUploads())
    if (u.run_id !== runId && (await abortTracked(state, sink, u))) aborted++;
  if (aborted > 0)
    logger.info({ aborted }, "aborted interrupted multipart uploads that this run had no work for");
}

export async function runArchive(config: Config, opts: RunOptions, deps: RunDeps): Promise<RunSummary> {
  const started = deps.now?.() ?? new Date();
  const t0 = performance.now();
  const { logger } = deps;
  const policy: RetryPolicy = { ...(deps.policy ?? DEFAULT_RETRY_POLICY), retries: config.maxRetries };
  const backfill = opts.since !== undefined || opts.until !== undefined;
  const dryRun = opts.dryRun ?? false;
  registerSecrets(secretsOf(config));

  // A dry run records nothing, not even that an earlier command died.
  const state = dryRun ? StateDb.open(config.dbPath) : openState(config.dbPath);
  const runId = newRunId("run", started);
  if (!dryRun) {
    const holder = acquireRunLock(state, config.dbPath, runId);
    if (holder) {
      state.close();
      throw new ArchiverError(
        "fatal",
        "locked",
        `another run holds the state DB ${config.dbPath}: run ${holder.run_id}, pid ${holder.pid} on ${holder.host}, started ${holder.acquired_at}, last heartbeat ${holder.heartbeat_at}. Wait for it to finish (a lock left by a dead process is taken over automatically).`,
      );
    }
  }
  if (!dryRun) state.startGroupCommit(GROUP_COMMIT_MS);
  const heartbeat = dryRun ? undefined : setInterval(() => state.heartbeat(runId), HEARTBEAT_MS);
  heartbeat?.unref();
  const window = backfill
    ? backfillWindow(opts.since, opts.until, started)
    : incrementalWindow(state.getMeta(WATERMARK), config.overlapDays, started);

  const summary: RunSummary = {
    run_id: runId,
    mode: backfill ? "backfill" : "incremental",
    window,
    dry_run: dryRun,
    ...NO_COUNTS,
    would_archive: 0,
    previously_failed: 0,
    other_shards: 0,
    source_changed: 0,
    clock_offset_ms: { s3: 0, api: 0 },
    api_requests: 0,
    rate_limited: 0,
    retries: 0,
    duration_ms: 0,
    outcome: "ok",
  };

  const observer = deps.observer ?? {};
  const live: LiveRun = { summary, receivedBytes: 0, totalCalls: null, inflight: 0, startedAt: Date.now() };

  // Internal abort: a fatal error anywhere stops every worker; the caller's signal does the same for SIGTERM.
  const fatalAbort = new AbortController();
  const signal = deps.signal ? AbortSignal.any([deps.signal, fatalAbort.signal]) : fatalAbort.signal;
  // Every request, part upload and retry wait listens on it while it runs (and stops listening after): a few per
  // transfer, so Node's default limit of 10 would warn about a leak that is not one.
  setMaxListeners(16 + config.concurrency * (config.s3.queueSize + 6), signal);
  let fatal: ArchiverError | undefined;

  const gate = new RateGate(config.envoy.rps);
  // Media URL expiry (expires_at) is the API's time: judged by its clock, learned from its Date headers.
  const apiClock = new ServerClock((offset) =>
    logger.warn(
      { offset_ms: offset },
      `this machine's clock is ${describeOffset(offset)} the Envoy API's: media URL expiry is judged by the API's clock`,
    ),
  );
  /** Source changes seen by this run, for its audit record (the state's source_changes table holds them all). */
  const sourceChanges: SourceChangeEvent[] = [];
  const client = new EnvoyClient({
    baseUrl: config.envoy.apiUrl,
    apiKey: config.envoy.apiKey,
    token: config.envoy.token,
    organizationId: config.envoy.organizationId,
    gate,
    policy,
    logger,
    userAgent: `envoy-archiver/${PACKAGE_VERSION}`,
    signal,
    connections: config.concurrency + 2,
    maxPages: config.envoy.maxPages,
    onResponse: (status) => observer.apiResponse?.(status),
    onRetry: () => observer.retried?.("api"),
    onRateLimit: () => observer.rateLimited?.(),
    clock: apiClock,
  });
  const media = new MediaFetcher({
    policy: { allowInsecure: config.allowInsecureUrls },
    userAgent: `envoy-archiver/${PACKAGE_VERSION}`,
    connections: config.concurrency,
    limits: config.media,
  });
  const sink = openSink(config, policy, logger, signal);
  let s3Retries = 0;
  sink.onRetry = () => {
    s3Retries++;
    observer.retried?.("s3");
  };
  const readySet = new Set(config.envoy.readyStatuses);

  if (!dryRun) {
    startCommandRun(state, config, "run", window, { id: runId, mode: summary.mode, dryRun });
  }
  logger.info(
    { run_id: runId, mode: summary.mode, window, dry_run: dryRun, shard: opts.shard },
    "run started",
  );
  observer.runStarted?.(live);

  const setFatal = (err: ArchiverError) => {
    if (!fatal) {
      fatal = err;
      logger.error({ code: err.code, err }, err.message);
      fatalAbort.abort(err);
    }
  };

  const fail = (callId: string, err: unknown, key?: string) => {
    if (err instanceof StopRequested || signal.aborted) return;
    let c = classify(err);
    if (c.kind === "fatal") return setFatal(c);
    // A size that still disagrees after every retry is a fact about the source, not a transient fault.
    if (c.code === "size_mismatch") c = new ArchiverError("permanent", c.code, c.message);
    const kind = c.kind === "permanent" ? "permanent" : "retryable";
    const message = redactText(c.message);
    summary.failed++;
    observer.recordingFinished?.("failed", 0, 0);
    if (!dryRun) state.markStatus(callId, "failed", { kind, message });
    logger.error(
      { call_id: callId, key, code: c.code, status: c.status, kind },
      `recording failed: ${message}`,
    );
  };

  /** The upload an interrupted run left for this call, if the sweep kept one; each is taken over at most once. */
  let resumable = new Set<string>();
  /** Versioning and lock evidence (protect.ts), learned at the start of a run that writes. */
  let bucket: BucketRules | undefined;
  const claimResumable = (callId: string) => {
    if (resumable.size === 0) return undefined;
    const up = state.uploadsFor(callId).find((u) => resumable.has(u.uploadId));
    if (up) resumable.delete(up.uploadId);
    return up;
  };

  /** Everything that happens to one call whose recording is not archived yet. */
  const processCall = async (call: Call, raw: unknown): Promise<void> => {
    const id = call.id;
    let key: string | undefined;
    try {
      const rec = await client.getRecording(id);
      if (rec === null) {
        summary.no_recording++;
        observer.recordingFinished?.("no_recording", 0, 0);
        if (!dryRun) state.markStatus(id, "no_recording");
        logger.debug({ call_id: id }, "no recording");
        return;
      }
      const status = (rec.recording_status ?? "").toUpperCase();
      if (!rec.url && readySet.has(status))
        throw new ArchiverError(
          "retryable",
          "ready_without_url",
          `recording_status ${status} but the metadata has no url: nothing to download (tried again next run)`,
        );
      if (!rec.url || !readySet.has(status)) {
        summary.not_ready++;
        observer.recordingFinished?.("not_ready", 0, 0);
        if (!dryRun)
          state.markStatus(id, "not_ready", {
            kind: "not_ready",
            message: `recording_status ${status || "(none)"}`,
          });
        logger.debug({ call_id: id, recording_status: rec.recording_status }, "recording not ready");
        return;
      }
      const contentType = storedContentType(rec);
      const objectKey = recordingKey({
        prefix: config.s3.prefix,
        callId: id,
        recordingStartTime: rec.recording_start_time ?? null,
        callTime: call.call_time ?? null,
        contentType,
      });
      key = objectKey;
      if (dryRun) {
        summary.would_archive++;
        logger.info({ call_id: id, key, bytes: rec.file_size_bytes }, "would archive");
        return;
      }
      const recordingStart = rec.recording_start_time ?? call.call_time ?? null;
      const objectParams = objectParamsFor(config.storage, recordingStart, sink.now());
      const opener = refreshingOpener({
        initial: rec,
        refresh: async () => {
          const fresh = await client.getRecording(id);
          if (!fresh?.url)
            throw new ArchiverError(
              "permanent",
              "recording_gone",
              "recording disappeared while refreshing its URL",
            );
          return fresh;
        },
        media,
        maxRefreshes: policy.urlRefreshes,
        limits: config.media,
        signal,
        onRefresh: (reason) => logger.info({ call_id: id, reason }, "refreshing media URL"),
        now: () => apiClock.now(),
      });
      const metadata = objectMetadata(id, rec);
      const expectedBytes = rec.file_size_bytes ?? null;
      const t0 = performance.now();
      const io = recordingIO({
        state,
        bucket: bucket!,
        runId,
        callId: id,
        call: raw,
        contentType,
        metadata,
        objectParams,
        open: opener.open,
        recording: opener.current,
        expectedBytes,
        signal,
        onBytes: (n) => {
          live.receivedBytes += n;
        },
      });
      live.inflight++;
      observer.transferStarted?.();
      let result: TransferResult | undefined;
      let adopted = false;
      let changed: SourceChanged | undefined;
      try {
        const resume = claimResumable(id);
        // The store decides first whether the recording is there already (an interrupted run's completion that
        // landed, or the same bytes: adopted). In a versioned bucket some servers ignore If-None-Match: small
        // recordings are looked for too.
        result = await sink.transfer({
          ...io.transferInput(objectKey),
          resume,
          checkBeforeWrite: bucket!.checkBeforeWrite,
        });
        if (result.completedEarlier)
          logger.info(
            { call_id: id, key: objectKey, bytes: result.bytes },
            "an interrupted run's completion had landed (the object is exactly its recorded parts): recorded, nothing downloaded or uploaded again",
          );
        adopted = result.adopted === true;
        if (result.resumedBytes)
          logger.info(
            { call_id: id, key: objectKey, resumed_bytes: result.resumedBytes, bytes: result.bytes },
            "resumed an interrupted upload",
          );
        if (adopted)
          logger.info(
            { call_id: id, key: objectKey },
            "already in S3 with the same SHA-256: adopted, not uploaded",
          );
      } catch (err) {
        if (!(err instanceof SourceChanged)) throw err;
        changed = err;
      } finally {
        live.inflight--;
        observer.transferEnded?.();
      }
      if (changed) {
        // The archived original stays as it is, and is what this call's state records.
        const { event, original } = await handleSourceChanged(
          {
            sink,
            state,
            logger,
            runId,
            callId: id,
            mode: config.onSourceChange,
            archiveAs: async (key, supersedes) => {
              const r = await sink.transfer(io.transferInput(key));
              const { evidence } = await io.protectAndDescribe(key, r, r.adopted === true, supersedes);
              return { ...r, etag: evidence.etag, versionId: evidence.versionId };
            },
          },
          changed,
        );
        sourceChanges.push(event);
        summary.source_changed++;
        observer.sourceChanged?.();
        [result, adopted] = [original, true];
      }
      // Version, ETag, retention, hold and tags as the bucket shows them (never what was asked): the sidecar and
      // the state record these. A lock the server would not hold fails the recording here.
      const stored: TransferResult = result!;
      const { evidence, sidecar } = await io.protectAndDescribe(objectKey, stored, adopted);
      const fields = {
        key: objectKey,
        contentType,
        recordingStartTime: rec.recording_start_time ?? null,
        durationSeconds: rec.duration_seconds ?? null,
        sha256: stored.sha256,
        bytes: stored.bytes,
        storageClass: objectParams.StorageClass ?? null,
        sse: objectParams.ServerSideEncryption ?? null,
      };
      markArchivedWithEvidence(state, id, fields, evidence, sidecar);
      const seconds = (performance.now() - t0) / 1000;
      if (adopted) {
        summary.already_archived++;
        observer.recordingFinished?.("already_archived", 0, seconds);
      } else {
        summary.archived++;
        summary.bytes += stored.bytes;
        observer.recordingFinished?.("archived", stored.bytes, seconds);
      }
      logger.debug({ call_id: id, key: objectKey, bytes: stored.bytes, sha256: stored.sha256 }, "archived");
    } catch (err) {
      fail(id, err, key);
    }
  };

  // Bounded concurrency, and bounded look-ahead: listing never runs more than a few pages ahead of the workers.
  const queue = new BoundedQueue(config.concurrency);
  const schedule = (call: Call, raw: unknown) =>
    queue.add(() => (signal.aborted ? Promise.resolve() : processCall(call, raw)));

  /** Decide what to do with one listed call. Returns the call to process, or null when there is nothing to do. */
  const triage = (listed: ListedCall): Call | null => {
    const rawId = (listed.raw as { id?: unknown } | null)?.id;
    if (!listed.call || !isValidCallId(listed.call.id)) {
      const shown = JSON.stringify(rawId ?? null).slice(0, 80);
      summary.listed++;
      summary.failed++;
      // Never build a key, a path or a state row from an id that is not call_<uuid>.
      logger.error(
        { call_id: shown, problem: listed.problem },
        `listed call has an invalid id ${shown}: skipped`,
      );
      return null;
    }
    const call = listed.call;
    if (!inShard(call.id, opts.shard)) {
      summary.other_shards++;
      return null;
    }
    const { previous, duplicate } = dryRun
      ? { previous: state.getCall(call.id), duplicate: false }
      : state.recordListed(call.id, call.call_time ?? null, JSON.stringify(redactJson(listed.raw)), runId);
    if (duplicate) return null;
    summary.listed++;
    switch (previous?.status) {
      case "archived":
        summary.already_archived++;
        return null;
      case "no_recording":
        summary.no_recording++;
        return null;
      case "failed":
        if (previous.error_kind === "permanent" && !opts.retryFailed) {
          summary.previously_failed++;
          return null;
        }
    }
    return call;
  };

  let outcomeError: string | undefined;
  try {
    if (!dryRun) {
      await sink.checkBucket();
      // The S3 server's time, learned from its Date header (the SDK corrects its offset on a skew error).
      const s3Offset = sink.clockOffsetMs();
      if (Math.abs(s3Offset) >= SKEW_THRESHOLD_MS)
        logger.warn(
          { offset_ms: s3Offset },
          `this machine's clock is ${describeOffset(s3Offset)} the S3 server's: requests are signed with the server's time`,
        );
      if (config.storage.lockMode || config.storage.legalHold) await sink.checkObjectLock();
      bucket = await learnBucket(sink, logger);
      ({ resumable } = await sweepOrphanedUploads(state, sink, `${config.s3.prefix}recordings/`, logger));
      // Bodies a killed run left on disk (we hold the lock: no other run of this state DB is using them).
      if (config.s3.spoolDir) await clearSpool(config.s3.spoolDir);
    }
    for await (const page of client.iterateCalls(window, config.envoy.pageSize, (total) => {
      live.totalCalls = total;
    })) {
      for (const listed of page) {
        if (signal.aborted) break;
        const call = triage(listed);
        if (call) await schedule(call, listed.raw);
      }
      if (signal.aborted) break;
    }
    // Calls from earlier runs that are still waiting (not ready, failed retryably) but were not in this window.
    if (!dryRun && !signal.aborted) {
      for (const row of waitingCalls(state, runId, opts.retryFailed ?? false)) {
        if (signal.aborted) break;
        const raw = JSON.parse(row.call_json) as unknown;
        await schedule({ ...(raw as Call), id: row.call_id }, raw);
      }
    }
    await queue.drain();
    if (!dryRun && !signal.aborted) await abortUnclaimedUploads(state, sink, runId, logger);
  } catch (err) {
    await queue.settle();
    if (!(err instanceof StopRequested) && !signal.aborted) setFatal(classify(err));
    else if (err instanceof ArchiverError && err.kind === "fatal") setFatal(err);
  } finally {
    await Promise.allSettled([client.close(), media.close()]);
    sink.close();
    if (heartbeat) clearInterval(heartbeat);
  }

  const interrupted = deps.signal?.aborted === true && !fatal;
  summary.outcome = fatal ? "fatal" : interrupted ? "interrupted" : summary.failed > 0 ? "failures" : "ok";
  if (fatal) outcomeError = redactText(fatal.message);
  if (outcomeError) summary.error = outcomeError;
  summary.api_requests = client.stats.requests;
  summary.rate_limited = client.stats.rateLimited;
  summary.retries = client.stats.retries + s3Retries;
  summary.duration_ms = Math.round(performance.now() - t0);
  summary.clock_offset_ms = {
    s3: Math.round(sink.clockOffsetMs()),
    api: apiClock.offsetMs,
  };

  if (!dryRun) {
    state.stopGroupCommit();
    if (summary.mode === "incremental" && !fatal && !interrupted)
      state.setMeta(WATERMARK, started.toISOString());
    const details = sourceChanges.length > 0 ? { source_changed: sourceChanges.slice(0, 1000) } : undefined;
    state.finishRun(runId, summary, summary.outcome, outcomeError ?? null, details);
    state.releaseLock(runId);
  }
  state.close();
  logger.info({ ...summary }, `run ${summary.outcome}`);
  observer.runFinished?.(summary);
  return summary;
}
