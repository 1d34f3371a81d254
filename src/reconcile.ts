/**
 * `envoy-archiver reconcile`: S3 is the source of truth. Rebuilds or repairs the state DB from what the bucket
 * holds — each recording's key, size, sha256 metadata and sidecar — so a lost state volume or a new shard count
 * never causes a re-upload.
 */
import { hostname } from "node:os";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { NO_COUNTS, startCommandRun } from "./audit.js";
import { BoundedQueue } from "./concurrency.js";
import { inWindow, type Window } from "./dates.js";
import { ArchiverError, classify } from "./errors.js";
import { isValidCallId, sidecarKey } from "./keys.js";
import { DEFAULT_RETRY_POLICY } from "./retry.js";
import { inShard, type Shard } from "./shard.js";
import { readJson } from "./sink/read-back.js";
import { openSink, type S3Sink } from "./sink/s3.js";
import { pidAlive, StateDb } from "./state/db.js";
import { redactJson } from "./redact.js";

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

async function* listKeys(sink: S3Sink, prefix: string): AsyncGenerator<string> {
  let token: string | undefined;
  do {
    const page = await sink.s3("ListObjectsV2", () =>
      sink.client.send(
        new ListObjectsV2Command({ Bucket: sink.settings.bucket, Prefix: prefix, ContinuationToken: token }),
      ),
    );
    for (const o of page.Contents ?? []) if (o.Key) yield o.Key;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export async function reconcile(
  config: Config,
  opts: { window?: Partial<Window>; shard?: Shard | undefined },
  deps: { logger: Logger },
): Promise<ReconcileResult> {
  const { logger } = deps;
  const state = StateDb.open(config.dbPath);
  const runId = startCommandRun(state, config, "reconcile", opts.window);
  // Reconcile writes call state: it must not race a run on the same DB.
  const holder = state.acquireLock(runId, hostname(), 60_000, pidAlive);
  if (holder) {
    state.finishRun(runId, NO_COUNTS, "fatal", "locked");
    state.close();
    throw new ArchiverError(
      "fatal",
      "locked",
      `another run holds the state DB ${config.dbPath}: run ${holder.run_id}, pid ${holder.pid} on ${holder.host}; try again when it has finished`,
    );
  }
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger);
  const result: ReconcileResult = { objects: 0, adopted: 0, unchanged: 0, skipped: 0, errors: 0 };
  const window: Window = {
    endDate: opts.window?.endDate ?? "9999-12-31",
    ...(opts.window?.startDate ? { startDate: opts.window.startDate } : {}),
  };

  const adopt = async (key: string, callId: string): Promise<void> => {
    const head = await sink.head(key);
    if (!head) return;
    const sidecar = await readJson(sink, sidecarKey(key));
    const archive = (sidecar?.archive ?? {}) as Record<string, unknown>;
    const recording = (sidecar?.recording ?? {}) as Record<string, unknown>;
    const call = (sidecar?.call ?? { id: callId }) as Record<string, unknown>;
    const sha256 = head.sha256 ?? (typeof archive.sha256 === "string" ? archive.sha256 : undefined);
    const problem =
      !sha256 || !/^[0-9a-f]{64}$/.test(sha256)
        ? "no sha256 in metadata or sidecar"
        : typeof archive.sha256 === "string" && archive.sha256 !== sha256
          ? "sidecar and object metadata disagree on sha256"
          : typeof archive.bytes === "number" && archive.bytes !== head.size
            ? `object is ${head.size} bytes, sidecar says ${String(archive.bytes)}`
            : null;
    if (problem || !sha256) {
      result.skipped++;
      logger.warn({ key, call_id: callId }, `not adopted: ${problem}; the next run archives it again`);
      return;
    }
    const str = (v: unknown) => (typeof v === "string" ? v : null);
    // Sidecars written by earlier releases may hold signed URLs: call_json gets the one redaction either way.
    const outcome = state.adoptArchived(callId, str(call.call_time), JSON.stringify(redactJson(call)), {
      key,
      contentType: str(recording.content_type) ?? str(archive.content_type) ?? "application/octet-stream",
      recordingStartTime: str(recording.recording_start_time),
      durationSeconds: typeof recording.duration_seconds === "number" ? recording.duration_seconds : null,
      sha256,
      bytes: head.size,
      etag: head.etag,
      versionId: head.versionId,
      lockMode: str((archive.object_lock as Record<string, unknown> | null)?.mode),
      retainUntil: str((archive.object_lock as Record<string, unknown> | null)?.retain_until),
      legalHold: archive.legal_hold === true,
      storageClass: str(archive.storage_class),
      sse: str(archive.sse),
    });
    result[outcome]++;
  };

  const queue = new BoundedQueue(config.concurrency * 2);
  let outcome = "ok";
  try {
    for await (const key of listKeys(sink, `${config.s3.prefix}recordings/`)) {
      const m = KEY_RE.exec(key);
      if (!m || key.endsWith(".json")) continue;
      const callId = m[4]!;
      if (
        !isValidCallId(callId) ||
        !inShard(callId, opts.shard) ||
        !inWindow(`${m[1]}-${m[2]}-${m[3]}`, window)
      )
        continue;
      result.objects++;
      await queue.add(async () => {
        try {
          await adopt(key, callId);
        } catch (err) {
          const c = classify(err);
          if (c.kind === "fatal") throw c;
          result.errors++;
          logger.error({ key, call_id: callId, code: c.code }, `could not reconcile ${key}: ${c.message}`);
        }
      });
    }
    await queue.drain();
    outcome = result.errors > 0 ? "errors" : "ok";
    return result;
  } catch (err) {
    outcome = "fatal";
    await queue.settle();
    throw err;
  } finally {
    sink.client.destroy();
    state.finishRun(
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
  }
}
