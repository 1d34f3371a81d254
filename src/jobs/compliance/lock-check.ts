/**
 * verify's lock check: for a recording (or a sidecar) whose state records a retention or a legal hold, the
 * bucket must still show at least that on the recorded version — mode as strong, retain-until no earlier, legal
 * hold on. One HeadObject per such object; none for the others.
 */
import { lockShown } from "../../s3/lock-evidence.js";
import { shortfalls, type Protection } from "../../s3/protection.js";
import type { S3Sink } from "../../s3/s3.js";
import type { CallRow } from "../../state/db.js";
import { sidecarKey } from "../../base/keys.js";

type LockRow = Pick<CallRow, "key" | "version_id" | "lock_mode" | "retain_until" | "legal_hold">;

export const recordsLock = (r: LockRow): boolean => r.lock_mode !== null || r.legal_hold === 1;

type SidecarLockRow = Pick<
  CallRow,
  "key" | "sidecar_version_id" | "sidecar_lock_mode" | "sidecar_retain_until" | "sidecar_legal_hold"
>;

/** The sidecar's recorded lock, in the shape the recording's is checked in. */
export function sidecarLock(r: SidecarLockRow): LockRow {
  return {
    key: sidecarKey(r.key!),
    version_id: r.sidecar_version_id,
    lock_mode: r.sidecar_lock_mode,
    retain_until: r.sidecar_retain_until,
    legal_hold: r.sidecar_legal_hold,
  };
}

/** Does the state record a lock or hold on the recording or on its sidecar (checked with a HEAD each)? */
export const recordsAnyLock = (r: LockRow & SidecarLockRow): boolean =>
  recordsLock(r) || recordsLock(sidecarLock(r));

/** The first lock the bucket no longer holds as recorded: the recording's, then its sidecar's. */
export async function anyLockProblem(
  sink: S3Sink,
  r: LockRow & SidecarLockRow,
): Promise<{ kind: "missing" | "mismatched"; reason: string } | null> {
  const own = recordsLock(r) ? await lockProblem(sink, r) : null;
  if (own) return own;
  const side = sidecarLock(r);
  const problem = recordsLock(side) ? await lockProblem(sink, side) : null;
  return problem && { kind: problem.kind, reason: `sidecar ${side.key}: ${problem.reason}` };
}

/** What the state says the recording holds. */
export function recordedLock(r: LockRow): Protection {
  const retention =
    r.lock_mode && r.retain_until ? { mode: r.lock_mode, until: new Date(r.retain_until) } : null;
  return { retention, legalHold: r.legal_hold === 1, tags: null };
}

/** Why the recorded version is weaker than the state says (or gone); null when it holds the recorded lock. */
export async function lockProblem(
  sink: S3Sink,
  r: LockRow,
): Promise<{ kind: "missing" | "mismatched"; reason: string } | null> {
  const head = await sink.headObject(r.key!, r.version_id);
  if (!head)
    return { kind: "missing", reason: `no version ${r.version_id ?? "(latest)"} to check the lock of` };
  const weaker = shortfalls(recordedLock(r), lockShown(head), "archived");
  return weaker.length === 0
    ? null
    : { kind: "mismatched", reason: `lock weaker than archived: ${weaker.join("; ")}` };
}
