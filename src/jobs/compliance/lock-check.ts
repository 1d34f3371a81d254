/**
 * verify's lock check: for a recording whose state records a retention or a legal hold, the bucket must still
 * show at least that on the recorded version — mode as strong, retain-until no earlier, legal hold on. One
 * HeadObject per such recording; none for the others.
 */
import { lockShown } from "../../s3/lock-evidence.js";
import { shortfalls, type Protection } from "../../s3/protection.js";
import type { S3Sink } from "../../s3/s3.js";
import type { CallRow } from "../../state/db.js";

type LockRow = Pick<CallRow, "key" | "version_id" | "lock_mode" | "retain_until" | "legal_hold">;

export const recordsLock = (r: LockRow): boolean => r.lock_mode !== null || r.legal_hold === 1;

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
