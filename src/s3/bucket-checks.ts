/** Before a run writes: the bucket is there, reachable with these credentials, and locks when asked to. */
import { ArchiverError, classify } from "../base/errors.js";
import type { Requests } from "./requests.js";
import type { Versioning } from "./versioning.js";
import { warnOnce } from "../base/say-once.js";

/** Check the bucket exists and is reachable with these credentials; fatal otherwise. */
export async function checkBucket(sink: Requests): Promise<void> {
  const bucket = sink.settings.bucket;
  try {
    await sink.s3("HeadBucket", () => sink.store.headBucket(), {
      notFound: () =>
        new ArchiverError(
          "fatal",
          "NoSuchBucket",
          `S3 bucket "${bucket}" does not exist (or is in another region): create it or fix ARCHIVER_S3_BUCKET / AWS_REGION`,
        ),
    });
  } catch (err) {
    // A HEAD answer has no body, so a 403 does not say whether the secret is wrong, the access key unknown or
    // a permission missing: a ListObjectsV2 (the same permission) names it in its error document.
    if (!(err instanceof ArchiverError) || err.status !== 403) throw err;
    await sink.s3("ListObjectsV2 (to name the HeadBucket refusal)", () => sink.store.probeList());
    throw err;
  }
}

/**
 * With lock settings, the bucket must have Object Lock enabled (it can only be enabled at creation, or by AWS
 * support): checked once, before anything is downloaded, so a bucket that cannot lock fails the run at its start
 * instead of every recording after its upload. `asked` names the settings ("ARCHIVER_OBJECT_LOCK_MODE=COMPLIANCE").
 * An endpoint that cannot answer (501, or no permission to ask) is judged by its versioning, which Object Lock
 * requires: shown off or suspended is fatal; enabled or unreadable too is a warning (each object's lock is read
 * back regardless).
 */
export async function checkObjectLock(
  sink: Requests,
  asked: string,
  versioning: () => Promise<Versioning>,
): Promise<"enabled" | "unknown"> {
  const bucket = sink.settings.bucket;
  const refuse = (showed: string) =>
    new ArchiverError(
      "fatal",
      "object_lock_disabled",
      `bucket "${bucket}" does not have Object Lock enabled (${showed}), so ${asked} cannot be honoured; nothing was downloaded. Create the bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket) or unset the lock settings.`,
    );
  let unanswered: string;
  try {
    const lock = await sink.s3("GetObjectLockConfiguration", () => sink.store.objectLock());
    if (lock === "enabled") return "enabled";
    throw refuse(
      lock === "not-configured"
        ? "GetObjectLockConfiguration answered ObjectLockConfigurationNotFoundError"
        : "GetObjectLockConfiguration shows ObjectLockEnabled other than Enabled",
    );
  } catch (err) {
    if (err instanceof ArchiverError && err.code === "object_lock_disabled") throw err;
    const c = classify(err);
    unanswered = `GetObjectLockConfiguration answered ${c.code}${c.status !== undefined ? ` (HTTP ${c.status})` : ""}`;
  }
  const v = await versioning();
  if (v === "off" || v === "suspended")
    throw refuse(
      `${unanswered}, and GetBucketVersioning shows versioning ${v}: Object Lock needs it enabled`,
    );
  warnOnce(
    sink.logger,
    "object-lock-unreadable",
    { versioning: v },
    `could not read the bucket's Object Lock configuration (${unanswered}: the endpoint does not support it, or s3:GetBucketObjectLockConfiguration is not granted): uploads carry lock headers regardless and each object's lock is read back`,
  );
  return "unknown";
}
