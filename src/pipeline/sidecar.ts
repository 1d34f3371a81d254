/** The sidecar stored next to each recording: what Envoy said about the call and the recording, and the archive's account of the object. */
import { PACKAGE_VERSION } from "../paths.js";
import type { ObjectParams, TransferResult } from "../sink/s3.js";

export function sidecarDocument(a: {
  call: unknown;
  /** The recording metadata, without its signed URL. */
  recording: object;
  key: string;
  contentType: string;
  result: TransferResult;
  archivedAt: string;
  runId: string;
  objectParams: ObjectParams;
  /** A versioned key's sidecar names the archived original whose source changed. */
  supersedes?: { key: string; sha256: string } | undefined;
}): object {
  const p = a.objectParams;
  return {
    call: a.call,
    recording: a.recording,
    archive: {
      sha256: a.result.sha256,
      bytes: a.result.bytes,
      key: a.key,
      content_type: a.contentType,
      etag: a.result.etag,
      version_id: a.result.versionId,
      archived_at: a.archivedAt,
      archiver_version: PACKAGE_VERSION,
      run_id: a.runId,
      object_lock: p.ObjectLockMode
        ? { mode: p.ObjectLockMode, retain_until: p.ObjectLockRetainUntilDate?.toISOString() }
        : null,
      legal_hold: p.ObjectLockLegalHoldStatus === "ON",
      storage_class: p.StorageClass ?? "STANDARD",
      sse: p.ServerSideEncryption ?? null,
      ...(a.supersedes ? { supersedes: a.supersedes } : {}),
    },
  };
}
