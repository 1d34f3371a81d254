/**
 * The run's steps between "the recording's bytes are stored" and "the state row says archived": read back the
 * recording's version, ETag and protection (repairing what the server ignored), store its sidecar carrying that
 * evidence, and read back the sidecar's own.
 */
import type { Logger } from "pino";
import { settleEvidence, RepairLog, type EvidenceContext, type ObjectEvidence } from "../s3/lock-evidence.js";
import { parseTagging, wantedProtection } from "../s3/protection.js";
import type { ObjectParams, S3Sink, TransferResult } from "../s3/s3.js";
import { checkBeforeWrite, type Versioning } from "../s3/versioning.js";

/** What the run learns about the bucket once, at its start. */
export interface BucketRules {
  sink: S3Sink;
  /** Ask for a key before writing it (a versioned bucket, or one that cannot say). */
  checkBeforeWrite: boolean;
  repairs: RepairLog;
}

export function learnBucket(sink: S3Sink, logger: Logger, versioning: Versioning): BucketRules {
  return { sink, checkBeforeWrite: checkBeforeWrite(versioning), repairs: new RepairLog(logger) };
}

function contextFor(rules: BucketRules, objectParams: ObjectParams): EvidenceContext {
  return {
    sink: rules.sink,
    wanted: wantedProtection(objectParams),
    versioned: rules.checkBeforeWrite,
    repairs: rules.repairs,
  };
}

/** The recording's evidence, read back after its transfer (or its adoption). */
export function protectRecording(
  rules: BucketRules,
  objectParams: ObjectParams,
  key: string,
  result: TransferResult,
  adopted: boolean,
): Promise<ObjectEvidence> {
  const writtenBy = adopted
    ? "an earlier run's write"
    : result.multipart
      ? "CreateMultipartUpload"
      : "PutObject";
  return settleEvidence(contextFor(rules, objectParams), { key, ...result }, writtenBy);
}

/**
 * Store the sidecar (an adopted recording keeps the sidecar it has: no second version) and read back its
 * evidence.
 */
export async function storeSidecar(
  rules: BucketRules,
  objectParams: ObjectParams,
  key: string,
  adopted: boolean,
  doc: () => unknown,
  metadata: Record<string, string>,
): Promise<ObjectEvidence> {
  const ctx = contextFor(rules, objectParams);
  const existing = adopted ? await rules.sink.head(key) : null;
  if (existing) return settleEvidence(ctx, { key, ...existing }, "an earlier run's sidecar PutObject");
  const out = await rules.sink.putJson(key, doc(), objectParams, metadata);
  return settleEvidence(ctx, { key, ...out }, "the sidecar's PutObject");
}

/** How the sidecar describes the recording's stored version: as read back from the bucket. */
export function sidecarEvidence(e: ObjectEvidence) {
  return {
    etag: e.etag,
    version_id: e.versionId,
    object_lock: e.lockMode ? { mode: e.lockMode, retain_until: e.retainUntil } : null,
    legal_hold: e.legalHold,
    tags: e.tags === null ? null : Object.fromEntries(parseTagging(e.tags)),
    protection_applied_after_write: e.repairedWith,
  };
}
