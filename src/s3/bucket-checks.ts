/** Before a run writes: the bucket is there, reachable with these credentials, and locks when asked to. */
import { ArchiverError, classify } from "../base/errors.js";
import type { Requests } from "./requests.js";

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
 * With lock settings, the bucket must have Object Lock enabled (it can only be enabled at creation, or by
 * AWS support). Missing is fatal; an endpoint that cannot answer (501, or no permission to ask) is a warning.
 */
export async function checkObjectLock(sink: Requests): Promise<"enabled" | "unknown"> {
  try {
    const lock = await sink.s3("GetObjectLockConfiguration", () => sink.store.objectLock());
    if (lock === "enabled") return "enabled";
  } catch (err) {
    const c = classify(err);
    sink.logger.warn(
      { code: c.code, status: c.status },
      "could not read the bucket's Object Lock configuration (the endpoint does not support it, or s3:GetBucketObjectLockConfiguration is not granted): uploads carry lock headers regardless",
    );
    return "unknown";
  }
  throw new ArchiverError(
    "fatal",
    "object_lock_disabled",
    `bucket "${sink.settings.bucket}" does not have Object Lock enabled, so ARCHIVER_OBJECT_LOCK_MODE / ARCHIVER_LEGAL_HOLD cannot be honoured. Create the bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket) or unset the lock settings.`,
  );
}
