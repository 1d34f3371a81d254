/** How each object is stored (lock, hold, encryption, class, tags), from the storage settings. Pure. */
import type { StorageSettings } from "../base/config.js";
import type { ObjectParams } from "./types.js";

const DAY_MS = 86_400_000;

/**
 * Retain-until is the recording's start plus the retention period, in UTC. A recording archived after its
 * period already ended (a late backfill) cannot be given a date in the past — S3 refuses it — so it is kept for
 * one more day from now; `clamped` says so.
 */
export function retainUntil(
  retentionDays: number,
  recordingStart: string | null | undefined,
  now: Date,
): { date: Date; clamped: boolean } {
  const startMs = recordingStart ? Date.parse(recordingStart) : NaN;
  const base = Number.isNaN(startMs) ? now.getTime() : startMs;
  const until = base + retentionDays * DAY_MS;
  const floor = now.getTime() + DAY_MS;
  return until < floor ? { date: new Date(floor), clamped: true } : { date: new Date(until), clamped: false };
}

export function tagging(tags: readonly [string, string][]): string | undefined {
  if (tags.length === 0) return undefined;
  return tags.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}

export function objectParamsFor(
  s: StorageSettings,
  recordingStart: string | null | undefined,
  now: Date,
): ObjectParams {
  const p: ObjectParams = {};
  if (s.sse) p.ServerSideEncryption = s.sse;
  if (s.sseKmsKeyId) p.SSEKMSKeyId = s.sseKmsKeyId;
  if (s.storageClass) p.StorageClass = s.storageClass;
  if (s.lockMode && s.retentionDays) {
    p.ObjectLockMode = s.lockMode;
    p.ObjectLockRetainUntilDate = retainUntil(s.retentionDays, recordingStart, now).date;
  }
  if (s.legalHold) p.ObjectLockLegalHoldStatus = "ON";
  const t = tagging(s.tags);
  if (t) p.Tagging = t;
  return p;
}
