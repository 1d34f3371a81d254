/**
 * Whether the bucket keeps versions. In a versioned bucket every write is a new version (undeletable under Object
 * Lock), and some servers ignore `If-None-Match: *` there (Ceph RGW 16.2 answers 200 and adds a version), so the
 * archiver asks for the key before writing instead of relying on the condition. Asked once per run.
 */
import type { Logger } from "pino";
import { classify } from "../base/errors.js";
import type { Requests } from "./requests.js";

export type Versioning = "enabled" | "suspended" | "off" | "unknown";

/** The bucket's versioning; "unknown" (logged) when the endpoint cannot say or the credentials may not ask. */
export async function bucketVersioning(sink: Requests, logger: Logger): Promise<Versioning> {
  try {
    const status = await sink.s3("GetBucketVersioning", () => sink.store.versioning());
    return status === "Enabled" ? "enabled" : status === "Suspended" ? "suspended" : "off";
  } catch (err) {
    const c = classify(err);
    if (c.kind === "retryable" || c.code === "NoSuchBucket") throw c;
    logger.info(
      { code: c.code, status: c.status },
      "could not read the bucket's versioning (the endpoint does not support it, or s3:GetBucketVersioning is not granted): each key is checked before it is written",
    );
    return "unknown";
  }
}

/** Ask for the key before writing it: anything but a bucket known never to have kept versions. */
export const checkBeforeWrite = (v: Versioning): boolean => v !== "off";
