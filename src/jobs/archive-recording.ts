/**
 * One call's recording, from its metadata to the state row that says archived, in named steps:
 * fetch its metadata → decide (no recording / not ready / dry run / its key) → transfer (or find it stored
 * already) → protect and describe (read back its evidence, store the sidecar) → record. State is written after the
 * bytes are stored and counted, never before, so a kill at any instant costs at most a re-transfer.
 */
import { ArchiverError, classify, StopRequested } from "../base/errors.js";
import { recordingKey } from "../base/keys.js";
import { redactText } from "../base/redact.js";
import type { Call, Recording } from "../envoy/envoy-client.js";
import { refreshingOpener } from "../envoy/url-refresh.js";
import { SourceChanged } from "../s3/conflict.js";
import { objectParamsFor } from "../s3/object-params.js";
import type { ObjectParams, TransferResult } from "../s3/s3.js";
import { objectMetadata, storedContentType } from "./recording-meta.js";
import { recordingIO } from "./recording-io.js";
import type { RunContext } from "./run-context.js";
import { archiveNewVersion, handleSourceChanged } from "./source-changed.js";
import type { RepairKind } from "../state/db.js";

/** What the metadata says to do with a call's recording. */
type Decision =
  | { kind: "no_recording" }
  | { kind: "not_ready"; rec: Recording; status: string }
  | { kind: "dry_run"; rec: Recording; key: string }
  | { kind: "archive"; rec: Recording; key: string; contentType: string };

/** A recording on its way into the store. */
interface Job {
  call: Call;
  rec: Recording;
  /** Where the bytes go: the recording's key, or for an altered object's repair the next versioned key. */
  key: string;
  /** `verify` found the archived object missing or altered: this run archives it again from the source. */
  repair: RepairKind | undefined;
  /** The object a repair's new key stands in for (named in the sidecar). */
  supersedes?: { key: string; sha256: string };
  contentType: string;
  objectParams: ObjectParams;
  expectedBytes: number | null;
  open: ReturnType<typeof refreshingOpener>["open"];
  io: ReturnType<typeof recordingIO>;
}

/** Everything that happens to one call whose recording is not archived yet. Never throws: a failure is recorded. */
export async function archiveRecording(ctx: RunContext, call: Call, raw: unknown): Promise<void> {
  let key: string | undefined;
  try {
    // 1. fetch the metadata (and a time-limited URL); 2. decide.
    const decision = decide(ctx, call, await ctx.client.getRecording(call.id));
    const repair = ctx.dryRun ? undefined : ctx.state.repairOf(call.id);
    if (decision.kind !== "archive") return settleUnarchived(ctx, call.id, decision, repair);
    key = decision.key;
    const job = prepare(ctx, call, raw, decision, repair);
    const t0 = performance.now();
    const { result, adopted } = await transfer(ctx, job); // 3.
    // 4. Version, ETag, retention, hold and tags as the bucket shows them (never what was asked): the sidecar and
    // the state record these. A lock the server would not hold fails the recording here.
    const proof = await job.io.protectAndDescribe(job.key, result, adopted, job.supersedes);
    record(ctx, job, result, adopted, proof, (performance.now() - t0) / 1000); // 5.
  } catch (err) {
    fail(ctx, call.id, err, key);
  }
}

/** 2. From the metadata, what to do (a recording marked ready without a URL, or a bad content type, throws). */
function decide(ctx: RunContext, call: Call, rec: Recording | null): Decision {
  if (rec === null) return { kind: "no_recording" };
  const status = (rec.recording_status ?? "").toUpperCase();
  if (!rec.url && ctx.readySet.has(status))
    throw new ArchiverError(
      "retryable",
      "ready_without_url",
      `recording_status ${status} but the metadata has no url: nothing to download (tried again next run)`,
    );
  if (!rec.url || !ctx.readySet.has(status)) return { kind: "not_ready", rec, status };
  const contentType = storedContentType(rec);
  const key = recordingKey({
    prefix: ctx.config.s3.prefix,
    callId: call.id,
    recordingStartTime: rec.recording_start_time ?? null,
    callTime: call.call_time ?? null,
    contentType,
  });
  if (ctx.dryRun) return { kind: "dry_run", rec, key };
  return { kind: "archive", rec, key, contentType };
}

/** A recording that is not archived this run: counted, its status recorded (unless a dry run), logged. */
function settleUnarchived(
  ctx: RunContext,
  id: string,
  d: Exclude<Decision, { kind: "archive" }>,
  repair: RepairKind | undefined,
): void {
  const { tally, state, logger, dryRun } = ctx;
  switch (d.kind) {
    case "no_recording":
      if (repair) return lostForGood(ctx, id, repair);
      tally.recordingFinished("no_recording");
      if (!dryRun) state.markStatus(id, "no_recording");
      logger.debug({ call_id: id }, "no recording");
      return;
    case "not_ready":
      tally.recordingFinished("not_ready");
      if (!dryRun && !repair)
        state.markStatus(id, "not_ready", {
          kind: "not_ready",
          message: `recording_status ${d.status || "(none)"}`,
        });
      logger.debug({ call_id: id, recording_status: d.rec.recording_status }, "recording not ready");
      return;
    case "dry_run":
      tally.wouldArchive(d.rec.file_size_bytes ?? null);
      logger.info({ call_id: id, key: d.key, bytes: d.rec.file_size_bytes }, "would archive");
  }
}

/**
 * `verify` found the archived object missing or altered and the source no longer has the recording: a permanent
 * failure that stays visible (status, exit code) until someone deals with it.
 */
function lostForGood(ctx: RunContext, id: string, repair: RepairKind): void {
  const what = repair === "verify_missing" ? "missing from the bucket" : "altered in the bucket";
  const message = `verify found the archived object ${what}, and the source no longer has the recording: restore it from a backup or a bucket version`;
  ctx.tally.recordingFinished("failed");
  ctx.state.markStatus(id, "failed", { kind: "permanent", message });
  ctx.logger.error({ call_id: id, code: "repair_impossible" }, `recording failed: ${message}`);
}

/** The recording's object settings, a source that refreshes its URL, and the transfer's input. */
function prepare(
  ctx: RunContext,
  call: Call,
  raw: unknown,
  d: Extract<Decision, { kind: "archive" }>,
  repair: RepairKind | undefined,
): Job {
  const { config, sink, client, logger, tally } = ctx;
  const { rec, key, contentType } = d;
  const id = call.id;
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
    media: ctx.media,
    maxRefreshes: ctx.policy.urlRefreshes,
    limits: config.media,
    signal: ctx.signal,
    onRefresh: (reason) => logger.info({ call_id: id, reason }, "refreshing media URL"),
    now: () => ctx.apiClock.now(),
  });
  const expectedBytes = rec.file_size_bytes ?? null;
  const io = recordingIO({
    ledger: ctx.ledger,
    bucket: ctx.bucket!,
    runId: ctx.runId,
    callId: id,
    call: raw,
    contentType,
    metadata: objectMetadata(id, rec),
    objectParams,
    open: opener.open,
    recording: opener.current,
    expectedBytes,
    signal: ctx.signal,
    onBytes: (n) => tally.received(n),
  });
  return { call, rec, key, repair, contentType, objectParams, expectedBytes, open: opener.open, io };
}

/**
 * 3. The bytes into the store — or found there already (an interrupted run's completion, or the same bytes
 * from an earlier run: adopted), or found changed at the source, when the archived original is what is recorded.
 */
async function transfer(ctx: RunContext, job: Job): Promise<{ result: TransferResult; adopted: boolean }> {
  let result: TransferResult | undefined;
  let changed: SourceChanged | undefined;
  ctx.tally.transferStarted();
  try {
    result = await storeBytes(ctx, job);
  } catch (err) {
    if (!(err instanceof SourceChanged)) throw err;
    changed = err;
  } finally {
    ctx.tally.transferEnded();
  }
  if (changed && job.repair === "verify_altered") return repairAltered(ctx, job, changed);
  if (changed) return { result: await keepOriginal(ctx, job, changed), adopted: true };
  if (job.repair)
    ctx.logger.warn(
      { call_id: job.call.id, key: job.key, repair: job.repair },
      "verify had found this recording missing from the bucket: archived again from the source",
    );
  return { result: result!, adopted: result!.adopted === true };
}

/**
 * `verify` found the object under the key altered: it is never written over. The source's bytes are archived
 * under the next free versioned key ({call_id}.v2.m4a, …), which the call's state records from now on.
 */
async function repairAltered(
  ctx: RunContext,
  job: Job,
  changed: SourceChanged,
): Promise<{ result: TransferResult; adopted: boolean }> {
  const { sink, state, logger, runId } = ctx;
  const stored = await archiveNewVersion(
    {
      sink,
      state,
      logger,
      runId,
      callId: job.call.id,
      mode: "archive",
      archiveAs: (key) => sink.transfer(job.io.transferInput(key)),
    },
    changed,
  );
  logger.warn(
    { call_id: job.call.id, key: job.key, new_key: stored.key, repair: job.repair },
    `verify had found ${job.key} altered: it is left as it is, and the source's bytes are archived again under ${stored.key}`,
  );
  job.supersedes = { key: job.key, sha256: changed.existing.sha256 ?? "" };
  job.key = stored.key;
  return { result: stored.result, adopted: stored.result.adopted === true };
}

/**
 * The one place a recording's bytes go to the store, which decides first whether they are there already (an
 * interrupted run's completion that landed, or the same SHA-256 under the key) and writes them only if not.
 */
async function storeBytes(ctx: RunContext, job: Job): Promise<TransferResult> {
  const { sink, logger } = ctx;
  const { key } = job;
  const callId = job.call.id;
  const resume = ctx.ledger.claim(callId);
  // In a versioned bucket some servers ignore If-None-Match: small recordings are checked first too.
  const checkBeforeWrite = ctx.bucket!.checkBeforeWrite;
  const result = await sink.transfer({ ...job.io.transferInput(key), resume, checkBeforeWrite });
  if (result.completedEarlier)
    logger.info(
      { call_id: callId, key, bytes: result.bytes },
      "an interrupted run's completion had landed (the object is exactly its recorded parts): recorded, nothing downloaded or uploaded again",
    );
  if (result.resumedBytes)
    logger.info(
      { call_id: callId, key, resumed_bytes: result.resumedBytes, bytes: result.bytes },
      "resumed an interrupted upload",
    );
  if (result.adopted === true)
    logger.info({ call_id: callId, key }, "already in S3 with the same SHA-256: adopted, not uploaded");
  return result;
}

/** The source changed since its recording was archived: the original stays, and is what the call's state records. */
async function keepOriginal(ctx: RunContext, job: Job, changed: SourceChanged): Promise<TransferResult> {
  const { sink, state, logger, runId, config } = ctx;
  const { event, original } = await handleSourceChanged(
    {
      sink,
      state,
      logger,
      runId,
      callId: job.call.id,
      mode: config.onSourceChange,
      archiveAs: async (key, supersedes) => {
        const r = await sink.transfer(job.io.transferInput(key));
        const { evidence } = await job.io.protectAndDescribe(key, r, r.adopted === true, supersedes);
        return { ...r, etag: evidence.etag, versionId: evidence.versionId };
      },
    },
    changed,
  );
  ctx.sourceChanges.push(event);
  ctx.tally.sourceChanged();
  return original;
}

/** 5. The state row says archived, with the evidence read back; then the recording is counted. */
function record(
  ctx: RunContext,
  job: Job,
  stored: TransferResult,
  adopted: boolean,
  proof: Awaited<ReturnType<Job["io"]["protectAndDescribe"]>>,
  seconds: number,
): void {
  const { rec, key, objectParams } = job;
  const fields = {
    key,
    contentType: job.contentType,
    recordingStartTime: rec.recording_start_time ?? null,
    durationSeconds: rec.duration_seconds ?? null,
    sha256: stored.sha256,
    bytes: stored.bytes,
    storageClass: objectParams.StorageClass ?? null,
    sse: objectParams.ServerSideEncryption ?? null,
    writeProof: stored.proof,
  };
  ctx.state.markArchivedWithEvidence(job.call.id, fields, proof.evidence, proof.sidecar);
  if (stored.proof) ctx.tally.proven(stored.proof);
  if (adopted) ctx.tally.recordingFinished("already_archived", 0, seconds);
  else ctx.tally.recordingFinished("archived", stored.bytes, seconds);
  ctx.logger.debug(
    { call_id: job.call.id, key, bytes: stored.bytes, sha256: stored.sha256 },
    adopted ? "adopted: already in S3 with these bytes, recorded as archived" : "archived",
  );
}

/** A recording that failed: counted and recorded with its kind, or, for a fatal error, the run stopped. */
function fail(ctx: RunContext, callId: string, err: unknown, key: string | undefined): void {
  if (err instanceof StopRequested || ctx.signal.aborted) return;
  let c = classify(err);
  if (c.kind === "fatal") return ctx.halt.raise(c);
  // A size that still disagrees after every retry is a fact about the source, not a transient fault.
  if (c.code === "size_mismatch") c = new ArchiverError("permanent", c.code, c.message);
  const kind = c.kind === "permanent" ? "permanent" : "retryable";
  const message = redactText(c.message);
  ctx.tally.failed(c.code, kind);
  if (!ctx.dryRun) ctx.state.markStatus(callId, "failed", { kind, message });
  ctx.logger.error(
    { call_id: callId, key, code: c.code, status: c.status, kind },
    `recording failed: ${message}`,
  );
}
