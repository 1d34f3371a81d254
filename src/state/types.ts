/**
 * What the state DB stores and hands back. State owns these types; the two shapes it shares with the S3 layer (a
 * stored part, an object's read-back evidence) live in base/stored.ts, below both.
 */
import type { StoredEvidence, StoredPart } from "../base/stored.js";

export type CallStatus = "pending" | "archived" | "not_ready" | "no_recording" | "failed";
export const CALL_STATUSES: readonly CallStatus[] = [
  "archived",
  "pending",
  "not_ready",
  "no_recording",
  "failed",
];

/** The evidence columns of a calls row (migration 005). */
export interface EvidenceColumns {
  tags: string | null;
  sidecar_version_id: string | null;
  sidecar_etag: string | null;
  sidecar_lock_mode: string | null;
  sidecar_retain_until: string | null;
  sidecar_legal_hold: number;
  sidecar_tags: string | null;
}

export interface CallRow extends EvidenceColumns {
  call_id: string;
  call_time: string | null;
  call_json: string;
  status: CallStatus;
  error_kind: string | null;
  last_error: string | null;
  attempts: number;
  key: string | null;
  content_type: string | null;
  recording_start_time: string | null;
  duration_seconds: number | null;
  sha256: string | null;
  bytes: number | null;
  etag: string | null;
  version_id: string | null;
  lock_mode: string | null;
  retain_until: string | null;
  legal_hold: number;
  storage_class: string | null;
  sse: string | null;
  first_seen_at: string;
  updated_at: string;
  archived_at: string | null;
  last_run_id: string | null;
}

export interface RunCounts {
  listed: number;
  archived: number;
  already_archived: number;
  not_ready: number;
  no_recording: number;
  failed: number;
  bytes: number;
}

export interface RunRow extends RunCounts {
  id: string;
  command: string;
  mode: string;
  window_start: string | null;
  window_end: string | null;
  dry_run: number;
  started_at: string;
  finished_at: string | null;
  outcome: string;
  error: string | null;
  pid: number | null;
  host: string | null;
  archiver_version: string | null;
  config_fingerprint: string | null;
  actor: string | null;
  details: string | null;
}

/** A command as it starts, for the audit trail (runs.ts). */
export interface RunStart {
  id: string;
  command: string;
  mode: string;
  windowStart: string | null;
  windowEnd: string | null;
  dryRun: boolean;
  version: string;
  configFingerprint: string;
  host: string;
}

export interface LockHolder {
  run_id: string;
  pid: number;
  host: string;
  acquired_at: string;
  heartbeat_at: string;
}

export interface ArchivedFields {
  key: string;
  contentType: string;
  recordingStartTime: string | null;
  durationSeconds: number | null;
  sha256: string;
  bytes: number;
  etag: string | null;
  versionId: string | null;
  lockMode?: string | null;
  retainUntil?: string | null;
  legalHold?: boolean;
  storageClass?: string | null;
  sse?: string | null;
  /** How the stored bytes were proven (migration 009): "checksum", "etag", "read-back"; null when not. */
  writeProof?: string | null;
}

/** What the bucket showed for an object after it was written, as a calls row records it (evidence.ts). */
export type EvidenceRecord = StoredEvidence;

/** A part of a multipart upload that S3 confirmed (the upload_parts table). */
export type PartRecord = StoredPart;

/** A multipart upload tracked for a call (the uploads table), with the parts recorded for it in order. */
export interface UploadRecord {
  uploadId: string;
  key: string;
  fingerprint: string | null;
  parts: PartRecord[];
}

/** A tracked upload as the uploads table holds it (the sweep of uploads a run left open). */
export interface TrackedUploadRow {
  upload_id: string;
  key: string;
  call_id: string;
  run_id: string;
}
