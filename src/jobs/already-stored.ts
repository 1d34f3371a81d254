/**
 * Before a recording is uploaded: is it in the bucket already? S3 is the source of truth, and nothing in it is
 * ever written over. An interrupted run's completion may have landed (its recorded parts say so), or an earlier
 * run whose state was lost stored it (same SHA-256: adopted), or the key holds an older archive of a source that
 * has changed since (SourceChanged).
 */
import type { Logger } from "pino";
import { inspectKey } from "../s3/existing.js";
import { hashObject } from "../s3/read-back.js";
import { SourceChanged } from "../s3/conflict.js";
import { completedEarlier } from "../s3/lost-answer.js";
import type { ResumableUpload, S3Sink, TransferInput, TransferResult } from "../s3/s3.js";
import type { StateDb } from "../state/db.js";

export async function alreadyStored(a: {
  sink: S3Sink;
  state: StateDb;
  logger: Logger;
  callId: string;
  key: string;
  /** The upload an interrupted run left for this recording, if any. */
  resume: ResumableUpload | undefined;
  open: TransferInput["open"];
  expectedBytes: number | null;
  onBytes: (n: number) => void;
  /** Check small recordings too (a versioned bucket, where some servers ignore If-None-Match). */
  checkBeforeWrite?: boolean | undefined;
}): Promise<TransferResult | undefined> {
  const landed = a.resume && (await completedEarlier(a.sink, a.key, a.resume, a.expectedBytes));
  if (a.resume && landed) {
    a.state.untrackUpload(a.resume.uploadId);
    a.logger.info(
      { call_id: a.callId, key: a.key, bytes: landed.bytes },
      "an interrupted run's completion had landed (the object is exactly its recorded parts): recorded, nothing downloaded or uploaded again",
    );
    return landed;
  }
  // Recordings that fit one PUT are checked by the PUT itself (If-None-Match), without this extra request.
  const singlePut = a.expectedBytes !== null && a.expectedBytes < a.sink.settings.partSize;
  if (singlePut && !a.checkBeforeWrite) return undefined;
  return (await adoptExisting(a.sink, a.key, a.open, a.expectedBytes, a.onBytes)) ?? undefined;
}

/**
 * The object under `key`, adopted when it holds the source's bytes (the source is read once and hashed; nothing
 * is uploaded); SourceChanged when it holds other bytes; null when the key is free.
 */
export async function adoptExisting(
  sink: S3Sink,
  key: string,
  open: TransferInput["open"],
  expectedBytes: number | null,
  onBytes: (n: number) => void,
): Promise<TransferResult | null> {
  let existing = await inspectKey(sink, key, { sidecar: "when-needed" });
  if (!existing) return null;
  const source = await sink.hashSource(open, expectedBytes, key);
  onBytes(source.bytes);
  // Nothing recorded its SHA-256 (a run that died between the object and its sidecar, with its state lost):
  // read it back.
  if (!existing.sha256) existing = { ...existing, sha256: await hashObject(sink, key, existing.versionId) };
  if (existing.sha256 === source.sha256 && existing.size === source.bytes)
    return { ...source, etag: existing.etag, versionId: existing.versionId, multipart: false, adopted: true };
  throw new SourceChanged(existing, source);
}
