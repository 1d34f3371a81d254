/**
 * The store: what the jobs ask of S3 (head, transfer, putJson, uploads, bucket checks, its clock), over the
 * ObjectStore port (object-store.ts) with the archiver's one retry policy around every request. `openSink` puts it
 * on the AWS SDK (sdk-store.ts); the tests also put it on an in-memory store.
 *
 * The transfer streams a recording into one object while hashing it, never holding more than
 * partSize × (queueSize + 1) bytes of it in memory (transfer.ts, transfer-run.ts), and decides first whether
 * the recording is in S3 already (already-stored.ts).
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { RetryPolicy } from "../base/retry.js";
import { checkBucket, checkObjectLock } from "./bucket-checks.js";
import { bodyChecksum, knownSha256 } from "./body.js";
import { writeOnce, writtenAs, type WrittenAs } from "./lost-answer.js";
import { sameEtag } from "./multipart-etag.js";
import { Requests } from "./requests.js";
import { createS3Client, type S3ClientSettings } from "./sdk-client.js";
import { S3ObjectStore } from "./sdk-store.js";
import { runTransfer } from "./transfer-run.js";
import { landedProof, proofBasis, provePut } from "./write-proof.js";
import type { Versioning } from "./versioning.js";
import type { ObjectParams, SinkSettings, TransferInput, TransferResult } from "./types.js";

export type {
  ObjectParams,
  ResumableUpload,
  SinkSettings,
  SourceStream,
  StoredPart,
  TransferInput,
  TransferResult,
} from "./types.js";
export { contiguousParts, uploadFingerprint } from "./resume.js";
export { createS3Client, type S3ClientSettings } from "./sdk-client.js";
export type { StoredObject } from "./requests.js";

/** The store for a configuration, on the AWS SDK: used by run, manifest, verify and reconcile alike. */
export function openSink(
  config: {
    concurrency: number;
    s3: {
      bucket: string | undefined;
      forcePathStyle: boolean;
      partSize: number;
      queueSize: number;
      spoolDir?: string | undefined;
    } & Partial<Pick<S3ClientSettings, "region" | "endpoint" | "profile" | "credentials">>;
    storage: { checksum: SinkSettings["checksum"] };
  },
  policy: RetryPolicy,
  logger: Logger,
  signal?: AbortSignal,
): S3Sink {
  const client = createS3Client({
    forcePathStyle: config.s3.forcePathStyle,
    maxSockets: config.concurrency * (config.s3.queueSize + 1) + 4,
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    profile: config.s3.profile,
    credentials: config.s3.credentials,
  });
  const bucket = config.s3.bucket ?? "";
  const settings: SinkSettings = {
    bucket,
    partSize: config.s3.partSize,
    queueSize: config.s3.queueSize,
    checksum: config.storage.checksum,
    spoolDir: config.s3.spoolDir,
  };
  return new S3Sink(new S3ObjectStore(client, bucket), settings, policy, logger, signal);
}

export class S3Sink extends Requests {
  /** Check the bucket exists and is reachable with these credentials; fatal otherwise. */
  checkBucket(): Promise<void> {
    return checkBucket(this);
  }

  /** With lock settings (`asked` names them), the bucket must show Object Lock: bucket-checks.ts. */
  checkObjectLock(asked: string, versioning: () => Promise<Versioning>): Promise<"enabled" | "unknown"> {
    return checkObjectLock(this, asked, versioning);
  }

  /** Write a small JSON document (sidecars, manifests). */
  async putJson(
    key: string,
    value: unknown,
    objectParams: ObjectParams,
    metadata: Record<string, string> = {},
  ): Promise<WrittenAs> {
    const body = Buffer.from(JSON.stringify(value, null, 2) + "\n");
    const sha256 = createHash("sha256").update(body).digest("hex");
    // A PUT whose answer was lost is not sent twice: the object with this body's MD5 is the one that landed.
    const md5 = createHash("md5").update(body).digest("hex");
    const landed = (h: { size: number; etag: string | null }) =>
      h.size === body.length && sameEtag(h.etag, md5);
    const { checksum } = this.settings;
    const sums = { ...bodyChecksum(checksum, body), ...knownSha256(checksum, sha256) };
    const sent = { key, md5, checksumSHA256: sums.checksumSHA256, ...proofBasis(checksum, objectParams) };
    // Proven like a recording's PUT (write-proof.ts): a sidecar S3 stored wrong is deleted and sent again.
    const put = async () => {
      const out = await this.putObject({
        key,
        body,
        length: body.length,
        contentType: "application/json",
        metadata,
        params: objectParams,
        ...sums,
      });
      await provePut(this, sent, out, sha256);
      return out;
    };
    const written = await writeOnce(this, `PutObject ${key}`, key, landed, put);
    if (written.landed) await landedProof(this, key, written.landed.versionId, sha256, sent);
    return writtenAs(written);
  }

  /**
   * Store one recording under `key`, deciding first whether it is there already (`resume`, `checkBeforeWrite`).
   * Resolves only when every byte is stored and counted.
   */
  transfer(input: TransferInput): Promise<TransferResult> {
    return runTransfer(this, input);
  }
}
