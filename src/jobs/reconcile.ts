/**
 * `envoy-archiver reconcile`: S3 is the source of truth. Rebuilds or repairs the state DB from what the bucket
 * holds — each recording's key, size and ETag from the bucket listing, its SHA-256 from its sidecar — so a lost
 * state volume or a new shard count never causes a re-upload. A recording the state already records with the
 * listed size and ETag costs no request; one whose sidecar does not describe the listed object (or records a
 * version, which only the bucket can confirm) is asked for with a HEAD. Commits are grouped, as a run's are.
 */
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { NO_COUNTS } from "../observe/tally.js";
import { startCommandRun } from "../state/audit.js";
import { anchorLink } from "./audit.js";
import { BoundedQueue } from "../base/concurrency.js";
import { inWindow, type Window } from "../base/dates.js";
import { ArchiverError, classify } from "../base/errors.js";
import { isValidCallId, recordingsListing, sidecarKey } from "../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../base/retry.js";
import { inShard, type Shard } from "../base/shard.js";
import { readJson } from "../s3/read-back.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import { listObjects, sameEtag, type ListedObject } from "../s3/listing.js";
import { GROUP_COMMIT_MS, type StateDb } from "../state/db.js";
import { acquireRunLock, HEARTBEAT_MS, openState } from "../state/integrity.js";
import { redactJson } from "../base/redact.js";

export interface ReconcileResult {
  /** Recording objects found under {prefix}recordings/ (in the window and shard). */
  objects: number;
  /** State rows created or corrected from S3. */
  adopted: number;
  /** State rows that already agreed with S3. */
  unchanged: number;
  /** Objects that could not be adopted (no checksum, unreadable sidecar, a size that disagrees). */
  skipped: number;
  errors: number;
}

const KEY_RE = /recordings\/(\d{4})\/(\d{2})\/(\d{2})\/([^/]+)\.(m4a|mp4|bin)$/;

/** Does the state already record this listed object: archived under this key, with its size and ETag? */
function knownObjects(state: StateDb): (callId: string, o: ListedObject) => boolean {
  return (callId, o) => {
    const row = state.storedAs(callId);
    return (
      row?.status === "archived" && row.key === o.key && row.bytes === o.size && sameEtag(row.etag, o.etag)
    );
  };
}

/** Reconcile writes call state: it must not race a run on the same DB. */
function takeRunLock(state: StateDb, dbPath: string, runId: string): void {
  const holder = acquireRunLock(state, dbPath, runId);
  if (!holder) return;
  state.finishRun(runId, NO_COUNTS, "fatal", "locked");
  state.close();
  throw new ArchiverError(
    "fatal",
    "locked",
    `another run holds the state DB ${dbPath}: run ${holder.run_id}, pid ${holder.pid} on ${holder.host}; try again when it has finished`,
  );
}

export async function reconcile(
  config: Config,
  opts: { window?: Partial<Window>; shard?: Shard | undefined },
  deps: { logger: Logger },
): Promise<ReconcileResult> {
  const { logger } = deps;
  const state = openState(config.dbPath);
  const runId = startCommandRun(state, config, "reconcile", opts.window);
  takeRunLock(state, config.dbPath, runId);
  state.startGroupCommit(GROUP_COMMIT_MS);
  const heartbeat = setInterval(() => state.heartbeat(runId), HEARTBEAT_MS);
  heartbeat.unref();
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger);
  const result: ReconcileResult = { objects: 0, adopted: 0, unchanged: 0, skipped: 0, errors: 0 };
  const window: Window = {
    endDate: opts.window?.endDate ?? "9999-12-31",
    ...(opts.window?.startDate ? { startDate: opts.window.startDate } : {}),
  };

  const queue = new BoundedQueue(config.concurrency * 2);
  let outcome = "fatal";
  try {
    await queue.run(async () => {
      const known = knownObjects(state);
      const listing = recordingsListing(config.s3.prefix, window.startDate);
      for await (const o of listObjects(sink, listing.prefix, { startAfter: listing.startAfter })) {
        const m = KEY_RE.exec(o.key);
        if (!m || o.key.endsWith(".json")) continue;
        const day = `${m[1]}-${m[2]}-${m[3]}`;
        if (day > window.endDate) break; // keys sort by day: nothing after this is in the window
        const callId = m[4]!;
        if (!isValidCallId(callId) || !inShard(callId, opts.shard) || !inWindow(day, window)) continue;
        result.objects++;
        if (known(callId, o)) {
          result.unchanged++;
          continue;
        }
        await queue.add(async () => {
          try {
            result[await adopt(state, sink, o, callId, logger)]++;
          } catch (err) {
            const c = classify(err);
            if (c.kind === "fatal") throw c;
            result.errors++;
            logger.error(
              { key: o.key, call_id: callId, code: c.code },
              `could not reconcile ${o.key}: ${c.message}`,
            );
          }
        });
      }
    });
    outcome = result.errors > 0 ? "errors" : "ok";
    return result;
  } finally {
    clearInterval(heartbeat);
    state.stopGroupCommit();
    const link = state.finishRun(
      runId,
      {
        ...NO_COUNTS,
        listed: result.objects,
        archived: result.adopted,
        already_archived: result.unchanged,
        failed: result.skipped + result.errors,
      },
      outcome,
      null,
      result,
    );
    state.releaseLock(runId);
    state.close();
    await anchorLink(config, link, logger, sink);
    sink.close();
  }
}

/**
 * Record one listed recording from its sidecar. The sidecar's SHA-256 is taken for the listed object when the
 * sidecar records that object's size and ETag and no version; otherwise a HEAD reads size, ETag, version and
 * sha256 metadata from the bucket, as they are now.
 */
async function adopt(
  state: StateDb,
  sink: S3Sink,
  o: ListedObject,
  callId: string,
  logger: Logger,
): Promise<"adopted" | "unchanged" | "skipped"> {
  const sidecar = await readJson(sink, sidecarKey(o.key));
  const archive = (sidecar?.archive ?? {}) as Record<string, unknown>;
  const recording = (sidecar?.recording ?? {}) as Record<string, unknown>;
  const call = (sidecar?.call ?? { id: callId }) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const describesListed =
    str(archive.sha256) !== null &&
    archive.bytes === o.size &&
    sameEtag(str(archive.etag), o.etag) &&
    !str(archive.version_id);
  const head = describesListed
    ? { size: o.size, sha256: undefined, etag: o.etag, versionId: null }
    : await sink.head(o.key);
  if (!head) return "skipped"; // deleted since it was listed
  const sha256 = head.sha256 ?? str(archive.sha256) ?? undefined;
  const problem =
    !sha256 || !/^[0-9a-f]{64}$/.test(sha256)
      ? "no sha256 in metadata or sidecar"
      : typeof archive.sha256 === "string" && archive.sha256 !== sha256
        ? "sidecar and object metadata disagree on sha256"
        : typeof archive.bytes === "number" && archive.bytes !== head.size
          ? `object is ${head.size} bytes, sidecar says ${String(archive.bytes)}`
          : null;
  if (problem || !sha256) {
    logger.warn({ key: o.key, call_id: callId }, `not adopted: ${problem}; the next run archives it again`);
    return "skipped";
  }
  const lock = archive.object_lock as Record<string, unknown> | null | undefined;
  // Sidecars written by earlier releases may hold signed URLs: call_json gets the one redaction either way.
  return state.adoptArchived(callId, str(call.call_time), JSON.stringify(redactJson(call)), {
    key: o.key,
    contentType: str(recording.content_type) ?? str(archive.content_type) ?? "application/octet-stream",
    recordingStartTime: str(recording.recording_start_time),
    durationSeconds: typeof recording.duration_seconds === "number" ? recording.duration_seconds : null,
    sha256,
    bytes: head.size,
    etag: head.etag,
    versionId: head.versionId,
    lockMode: str(lock?.mode),
    retainUntil: str(lock?.retain_until),
    legalHold: archive.legal_hold === true,
    storageClass: str(archive.storage_class),
    sse: str(archive.sse),
  });
}
