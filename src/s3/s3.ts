/**
 * The S3 sink: streams a recording into one object while hashing it, never holding more than
 * partSize × (queueSize + 1) bytes of it in memory.
 *
 * Recordings smaller than partSize (the usual call) go up in a single PutObject after the whole body has been
 * read, so the object is created with its final SHA-256 in metadata. Larger ones use a multipart upload, whose
 * metadata is fixed before the hash is known: their SHA-256 lives in the sidecar, the state DB and the manifest
 * (never a CopyObject onto itself, which in a versioned bucket would store every such recording twice). A
 * transfer that fails part way aborts its multipart upload, so no partial object ever becomes visible and no
 * parts are orphaned. A transfer that is stopped (SIGTERM) or killed keeps its stored parts, recorded one by one
 * through `onPartStored`; the next run passes them back as `resume` and the upload continues after its last part
 * (see `continueUpload`).
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { createHash, type Hash } from "node:crypto";
import { Readable } from "node:stream";
import type { MiddlewareStack } from "@smithy/types";
import type { Logger } from "pino";
import { ChecksumEcho } from "./checksum-echo.js";
import { ArchiverError, classify, s3Failure, StopRequested } from "../base/errors.js";
import { withRetry, type RetryPolicy } from "../base/retry.js";
import type { OpenedMedia } from "../envoy/media.js";
import { SpillBuffer, type SealedBody } from "./spool.js";
import { captureProbes, DirectS3, type DirectPartInput, type DirectPutInput } from "./s3-direct.js";
import { markSkewedRefusals, s3Now } from "../base/clock.js";
import { awaitRival, resolveTakenKey } from "./conflict.js";
import { completeUpload, CompletionUnknown, writeOnce, writtenAs } from "./lost-answer.js";
import { multipartEtag, sameEtag } from "./multipart-etag.js";

const MIN_PART_SIZE = 5 * 1024 ** 2;

export interface S3ClientSettings {
  forcePathStyle: boolean;
  maxSockets: number;
  region?: string | undefined;
  /** Otherwise the SDK's own resolution (AWS_ENDPOINT_URL_S3, or AWS's endpoint for the region). */
  endpoint?: string | undefined;
}

export function createS3Client(s: S3ClientSettings): S3Client {
  const agentOpts = { keepAlive: true, maxSockets: s.maxSockets };
  const client = new S3Client({
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    // One retry policy for the whole archiver (retry.ts): the SDK must not retry underneath it.
    maxAttempts: 1,
    // Resolve each command's middleware chain once per command class, not on every request (~3% of the CPU of a
    // run of small recordings). Commands must then carry no middleware of their own: see presetPayloadHash.
    cacheMiddleware: true,
    // Only send/validate checksums when the operation requires them: S3-compatible servers (MinIO releases,
    // s3rver, Ceph) differ in what they accept. Integrity is ours: SHA-256 of every byte, checked end to end.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new HttpsAgent(agentOpts),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
  (client.middlewareStack as unknown as MiddlewareStack<object, object>).add(
    (next) => async (args) => {
      const body = (args.input as { Body?: unknown }).Body;
      const hash = typeof body === "object" && body !== null ? payloadHashes.get(body) : undefined;
      const request = args.request as { headers?: Record<string, string> };
      if (hash && request.headers) request.headers["x-amz-content-sha256"] = hash;
      return next(args);
    },
    { step: "build", name: "presetPayloadHash" },
  );
  // Stops the probe request that teaches s3-direct.ts this client's endpoint and signing scope.
  (client.middlewareStack as unknown as MiddlewareStack<object, object>).add(
    captureProbes as unknown as Parameters<MiddlewareStack<object, object>["add"]>[0],
    { step: "deserialize", priority: "low", name: "captureProbes" },
  );
  // Whether a refused request was signed far off the server's time, precisely (clock.ts).
  (client.middlewareStack as unknown as { add(m: unknown, o: object): void }).add(
    markSkewedRefusals(client.config),
    { step: "build", name: "markSkewedRefusals" },
  );
  // With maxAttempts 1 the SDK's retry middleware only keeps books (tokens, invocation ids) on every request:
  // measured at ~2% of the CPU of a run of small recordings. Retries are retry.ts's job.
  client.middlewareStack.add((next) => next, {
    step: "finalizeRequest",
    name: "retryMiddleware",
    tags: ["RETRY"],
    priority: "high",
    override: true,
  });
  return client;
}

/** The S3 client and sink for a configuration: used by run, manifest and verify alike. */
export function openSink(
  config: {
    concurrency: number;
    s3: {
      bucket: string | undefined;
      forcePathStyle: boolean;
      partSize: number;
      queueSize: number;
      region: string | undefined;
      spoolDir?: string | undefined;
    };
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
  });
  return new S3Sink(
    client,
    {
      bucket: config.s3.bucket ?? "",
      partSize: config.s3.partSize,
      queueSize: config.s3.queueSize,
      checksum: config.storage.checksum,
      spoolDir: config.s3.spoolDir,
    },
    policy,
    logger,
    signal,
  );
}

/** Extra object parameters applied to every object written (encryption, storage class, lock, tags). */
export type ObjectParams = Partial<{
  ServerSideEncryption: "AES256" | "aws:kms";
  SSEKMSKeyId: string;
  StorageClass: StorageClass;
  ObjectLockMode: "GOVERNANCE" | "COMPLIANCE";
  ObjectLockRetainUntilDate: Date;
  ObjectLockLegalHoldStatus: "ON" | "OFF";
  Tagging: string;
}>;

export interface SinkSettings {
  bucket: string;
  partSize: number;
  queueSize: number;
  /** Integrity checksum sent with every body (required by S3 for Object Lock uploads). */
  checksum?: "NONE" | "MD5" | "CRC32C" | "SHA256";
  /** Where bodies above 1 MiB wait for their request (spool.ts); undefined keeps them in memory. */
  spoolDir?: string | undefined;
}

/** SDK-computed checksums (CRC32C, SHA-256) need the body as one Buffer; MD5 and none stream it. */
const sdkChecksum = (alg: SinkSettings["checksum"]): alg is "CRC32C" | "SHA256" =>
  alg === "CRC32C" || alg === "SHA256";

/**
 * A request body, rebuilt for every attempt: streamed from the chunks as they arrived (never concatenated) or
 * from the spool file. With CRC32C/SHA-256 checksums the SDK computes them itself over a Buffer.
 */
function requestBody(alg: SinkSettings["checksum"], body: SealedBody): Buffer | Readable {
  return sdkChecksum(alg) ? body.buffer() : body.stream();
}

/**
 * Payload hashes chosen for commands, keyed by their request body (a fresh stream per attempt; the SDK hands its
 * middleware a copy of the command's input, not the input itself). Read by the client's presetPayloadHash
 * middleware.
 */
const payloadHashes = new WeakMap<object, string>();

/**
 * The payload hash the request is signed with (x-amz-content-sha256). Left to itself the SDK hashes every body
 * with SHA-256 again; we already know a single PUT's SHA-256 (S3 then verifies the body against it), and parts
 * are covered by the object's SHA-256 checked end to end, so they go UNSIGNED-PAYLOAD. Not with SDK-computed
 * checksums, which choose their own signing mode. A client middleware applies it, not one per command, so that
 * the client can reuse its resolved middleware chain (`cacheMiddleware`).
 */
export function presetPayloadHash<C extends { input: { Body?: unknown } }>(
  command: C,
  alg: SinkSettings["checksum"],
  hash: string,
): C {
  const body = command.input.Body;
  if (!sdkChecksum(alg) && typeof body === "object" && body !== null) payloadHashes.set(body, hash);
  return command;
}

/** Checksum parameters for one request body. MD5 is computed here; CRC32C/SHA-256 by the SDK. */
function bodyChecksum(
  alg: SinkSettings["checksum"],
  body: Buffer | SealedBody,
): { ContentMD5?: string; ChecksumAlgorithm?: "CRC32C" | "SHA256" } {
  if (alg === "MD5")
    return {
      ContentMD5: Buffer.isBuffer(body) ? createHash("md5").update(body).digest("base64") : body.md5Base64!,
    };
  if (sdkChecksum(alg)) return { ChecksumAlgorithm: alg };
  return {};
}

function declaredChecksum(alg: SinkSettings["checksum"]): { ChecksumAlgorithm?: "CRC32C" | "SHA256" } {
  return sdkChecksum(alg) ? { ChecksumAlgorithm: alg } : {};
}

/** A part of a multipart upload as S3 confirmed it, and where it sits in the recording. */
export interface StoredPart {
  partNumber: number;
  /** Byte range [start, end) of the recording. */
  start: number;
  end: number;
  etag: string;
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
  /** SHA-256 of the recording's bytes [0, end): checked when the prefix is re-read to resume. */
  prefixSha256: string;
}

/** A multipart upload that a stopped or killed run left, with the parts it recorded. */
export interface ResumableUpload {
  uploadId: string;
  key: string;
  fingerprint: string | null;
  parts: StoredPart[];
}

/**
 * What a multipart upload is created with. A later run continues an upload only when it would create the same
 * object (content type, metadata, encryption, class, lock and retention, tags, checksum algorithm).
 */
export function uploadFingerprint(
  input: Pick<TransferInput, "contentType" | "metadata" | "objectParams">,
  checksum: SinkSettings["checksum"],
): string {
  const sorted = (o: object) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha256")
    .update(
      JSON.stringify([
        input.contentType,
        sorted(input.metadata),
        sorted(input.objectParams),
        checksum ?? "NONE",
      ]),
    )
    .digest("hex")
    .slice(0, 32);
}

/** The parts numbered 1, 2, 3, … without a gap, each starting where the previous one ended. */
export function contiguousParts(parts: readonly StoredPart[]): StoredPart[] {
  const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  const out: StoredPart[] = [];
  for (const p of sorted) {
    const prevEnd = out.at(-1)?.end ?? 0;
    if (p.partNumber !== out.length + 1 || p.start !== prevEnd || p.end <= p.start) break;
    out.push(p);
  }
  return out;
}

const unquote = (etag: string | undefined) => (etag ?? "").replace(/^"|"$/g, "");

export interface TransferInput {
  key: string;
  contentType: string;
  /** User metadata except sha256, which the sink adds to a single PUT once it is known. */
  metadata: Record<string, string>;
  objectParams: ObjectParams;
  /** Open the source at a byte offset (resuming after a reset or a refreshed URL). */
  open: (offset: number) => Promise<OpenedMedia>;
  /** The size the source promised (file_size_bytes), checked against what arrives. */
  expectedBytes: number | null;
  signal?: AbortSignal | undefined;
  /** Progress: bytes received from the source. */
  onBytes?: (n: number) => void;
  /** A multipart upload was created / finished (completed or aborted): the state DB tracks the ones open. */
  onUploadStarted?: (uploadId: string, fingerprint: string) => void;
  onUploadEnded?: (uploadId: string) => void;
  /** A part was stored: recorded so that the upload can be resumed after it. */
  onPartStored?: (uploadId: string, part: StoredPart) => void;
  /** An upload a stopped or killed run left for this key: continued after its last stored part. */
  resume?: ResumableUpload | undefined;
  /** About to complete the multipart upload: what was recorded of its parts must be durable now. */
  onCompleting?: (uploadId: string) => void;
  /** The run writing, named when another writer got to the key first. */
  runId?: string | undefined;
}

export interface TransferResult {
  bytes: number;
  sha256: string;
  etag: string | null;
  versionId: string | null;
  multipart: boolean;
  /** The key already held these exact bytes: nothing was written. */
  adopted?: boolean;
  /** Bytes that an interrupted run had stored already (resumed upload): re-read to hash, not uploaded. */
  resumedBytes?: number;
  /** An interrupted run's completion had landed (lost-answer.ts): nothing was read or written. */
  completedEarlier?: boolean;
}

export class S3Sink {
  constructor(
    readonly client: S3Client,
    readonly settings: SinkSettings,
    private readonly policy: RetryPolicy,
    private readonly logger: Logger,
    private readonly signal?: AbortSignal,
  ) {
    if (settings.partSize < MIN_PART_SIZE)
      throw new Error(`part size must be at least ${MIN_PART_SIZE} bytes`);
    this.checksumEcho = new ChecksumEcho(settings.checksum, logger);
  }

  /** Tells the user when the server does not answer back the CRC32C/SHA-256 checksum it was sent. */
  private readonly checksumEcho: ChecksumEcho;

  /** Called on every retried S3 request or resumed transfer (metrics). */
  onRetry: (() => void) | undefined;

  /** How far the S3 server's clock is from this machine's (ms, + when the server's is ahead), as learned. */
  clockOffsetMs(): number {
    return this.client.config.systemClockOffset ?? 0;
  }

  /** The S3 server's time (retain-until dates are computed from it). */
  now(): Date {
    return s3Now(this.client.config);
  }

  /** Close the connections (the sink is not used after). */
  close(): void {
    this.client.destroy();
  }

  /** An object's size, sha256 metadata, ETag and version; null when there is none. */
  async head(key: string): Promise<{
    size: number;
    sha256: string | undefined;
    etag: string | null;
    versionId: string | null;
    lastModified?: Date | undefined;
  } | null> {
    try {
      const out = await this.s3(`HeadObject ${key}`, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: key })),
      );
      return {
        size: out.ContentLength ?? -1,
        sha256: out.Metadata?.sha256,
        etag: out.ETag ?? null,
        versionId: out.VersionId ?? null,
        lastModified: out.LastModified,
      };
    } catch (err) {
      const c = classify(err);
      if (c.status === 404 || c.code === "NotFound" || c.code === "NoSuchKey") return null;
      throw c;
    }
  }

  /** Read a source to its end and hash it, uploading nothing (to compare with an object already stored). */
  async hashSource(
    open: TransferInput["open"],
    expectedBytes: number | null,
    key: string,
  ): Promise<{ sha256: string; bytes: number }> {
    return withRetry(
      async () => {
        const media = await open(0);
        const h = createHash("sha256");
        let bytes = 0;
        for await (const chunk of media.body) {
          h.update(chunk as Buffer);
          bytes += (chunk as Buffer).length;
        }
        if (
          (media.totalBytes !== null && bytes !== media.totalBytes) ||
          (expectedBytes !== null && bytes !== expectedBytes)
        )
          throw sizeMismatch(key, `read ${bytes} bytes, expected ${expectedBytes ?? media.totalBytes}`);
        return { sha256: h.digest("hex"), bytes };
      },
      this.policy,
      { signal: this.signal, onRetry: () => this.onRetry?.() },
    );
  }

  /** Check the bucket exists and is reachable with these credentials; fatal otherwise. */
  async checkBucket(): Promise<void> {
    const Bucket = this.settings.bucket;
    try {
      await this.s3("HeadBucket", () => this.client.send(new HeadBucketCommand({ Bucket })), {
        notFound: () =>
          new ArchiverError(
            "fatal",
            "NoSuchBucket",
            `S3 bucket "${Bucket}" does not exist (or is in another region): create it or fix ARCHIVER_S3_BUCKET / AWS_REGION`,
          ),
      });
    } catch (err) {
      // A HEAD answer has no body, so a 403 does not say whether the secret is wrong, the access key unknown or
      // a permission missing: a ListObjectsV2 (the same permission) names it in its error document.
      if (!(err instanceof ArchiverError) || err.status !== 403) throw err;
      await this.s3("ListObjectsV2 (to name the HeadBucket refusal)", () =>
        this.client.send(new ListObjectsV2Command({ Bucket })),
      );
      throw err;
    }
  }

  /**
   * With lock settings, the bucket must have Object Lock enabled (it can only be enabled at creation, or by
   * AWS support). Missing is fatal; an endpoint that cannot answer (501, or no permission to ask) is a warning.
   */
  async checkObjectLock(): Promise<"enabled" | "unknown"> {
    try {
      const out = await this.s3("GetObjectLockConfiguration", () =>
        this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.settings.bucket })),
      );
      if (out.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled") return "enabled";
    } catch (err) {
      const c = classify(err);
      if (c.code !== "ObjectLockConfigurationNotFoundError") {
        this.logger.warn(
          { code: c.code, status: c.status },
          "could not read the bucket's Object Lock configuration (the endpoint does not support it, or s3:GetBucketObjectLockConfiguration is not granted): uploads carry lock headers regardless",
        );
        return "unknown";
      }
    }
    throw new ArchiverError(
      "fatal",
      "object_lock_disabled",
      `bucket "${this.settings.bucket}" does not have Object Lock enabled, so ARCHIVER_OBJECT_LOCK_MODE / ARCHIVER_LEGAL_HOLD cannot be honoured. Create the bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket) or unset the lock settings.`,
    );
  }

  /** Write a small JSON document (sidecars, manifests). */
  async putJson(
    key: string,
    value: unknown,
    objectParams: ObjectParams,
    metadata: Record<string, string> = {},
  ) {
    const body = Buffer.from(JSON.stringify(value, null, 2) + "\n");
    const sha256 = createHash("sha256").update(body).digest("hex");
    // A PUT whose answer was lost is not sent twice: the object with this body's MD5 is the one that landed.
    const md5 = createHash("md5").update(body).digest("hex");
    const landed = (h: { size: number; etag: string | null }) =>
      h.size === body.length && sameEtag(h.etag, md5);
    const put = () =>
      this.putObject(
        {
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentType: "application/json",
          Metadata: metadata,
          ...objectParams,
          ...bodyChecksum(this.settings.checksum, body),
        },
        sha256,
      );
    return writtenAs(await writeOnce(this, `PutObject ${key}`, key, landed, put));
  }

  /** Stream one recording into `key`. Resolves only when every byte is stored and counted. */
  async transfer(input: TransferInput): Promise<TransferResult> {
    const t = new Transfer(this, input);
    const writer = { runId: input.runId, startedAt: s3Now(this.client.config).getTime() };
    if (input.resume) await this.continueUpload(t, input, input.resume);
    /** A small recording's finished body, for its single PUT. */
    let sealed: SealedBody | undefined;
    try {
      await withRetry(() => t.attempt(), this.policy, {
        signal: input.signal ?? this.signal,
        onRetry: (err, attempt) => {
          this.onRetry?.();
          this.logger.warn(
            { key: input.key, attempt, code: err.code },
            `transfer interrupted (${err.message}); resuming at byte ${t.checkpoint.offset}`,
          );
          if (["size_mismatch", "stored_prefix_changed", "upload_gone"].includes(err.code)) t.restart();
        },
      });
      if (!t.uploadId) {
        const sha256 = t.hash.digest("hex");
        const metadata = { ...input.metadata, sha256 };
        const body = await t.body.seal();
        sealed = body;
        const length = body.length;
        const alg = this.settings.checksum;
        const checksum = bodyChecksum(alg, body);
        // Never over what is there: a conditional PUT costs nothing when the key is free (the usual case), and a
        // PUT whose answer was lost is looked for in the bucket before it is sent again (lost-answer.ts).
        let out;
        try {
          out = writtenAs(
            await writeOnce(
              this,
              `PutObject ${input.key}`,
              input.key,
              (h) => h.size === length && h.sha256 === sha256,
              () =>
                this.putObject(
                  {
                    Key: input.key,
                    Body: requestBody(alg, body),
                    ContentLength: length,
                    ContentType: input.contentType,
                    Metadata: metadata,
                    IfNoneMatch: "*",
                    ...input.objectParams,
                    ...checksum,
                  },
                  sha256,
                ),
            ),
          );
        } catch (err) {
          if (classify(err).status !== 412) throw err;
          // Ours already (adopted), another writer's, or an older archive of a source that changed (conflict.ts).
          return await resolveTakenKey(this, input.key, { sha256, bytes: length }, writer, input.signal);
        }
        return {
          bytes: t.offset,
          sha256,
          etag: out.ETag || null,
          versionId: out.VersionId || null,
          multipart: false,
        };
      }
      const sha256 = t.hash.digest("hex");
      const parts = [...t.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      const uploadId = t.uploadId;
      input.onCompleting?.(uploadId);
      // Conditional, and safe when its answer is lost (lost-answer.ts).
      const done = await completeUpload(this, { key: input.key, uploadId, parts, bytes: t.offset });
      // Gone between the last part and completion: nothing is stored; a later run does the recording again.
      if (done.kind === "gone") throw done.error;
      if (done.kind === "taken" || done.kind === "yield") {
        await t.abort();
        const ours = { sha256, bytes: t.offset, etag: multipartEtag(parts.map((p) => p.ETag ?? "")) };
        return done.kind === "yield"
          ? await awaitRival(this, input.key, ours, writer, done.rival, input.signal)
          : await resolveTakenKey(this, input.key, ours, { ...writer, concurrent: true }, input.signal);
      }
      const out: { ETag?: string | undefined; VersionId?: string | undefined } = done;
      t.uploadId = undefined; // completed: nothing left to abort
      input.onUploadEnded?.(uploadId);
      // Some servers answer without an ETag (Ceph RGW: empty) or version id: lock-evidence.ts reads them back.
      return {
        bytes: t.offset,
        sha256,
        etag: out.ETag || null,
        versionId: out.VersionId || null,
        multipart: true,
        ...(t.storedPrefix > 0 ? { resumedBytes: t.storedPrefix } : {}),
      };
    } catch (err) {
      // Stopped (SIGTERM/SIGINT) with parts stored: keep them for the next run to continue. Anything else: abort,
      // so that no parts are left behind.
      if (err instanceof StopRequested && (await t.keepForResume())) {
        this.logger.info(
          { key: input.key, bytes: t.checkpoint.offset },
          "stopped: the stored parts are kept and the next run continues this upload",
        );
      } else if (err instanceof CompletionUnknown)
        t.uploadId = undefined; // kept for the next run to settle
      else await t.abort();
      throw err;
    } finally {
      await t.body.discard();
      await sealed?.dispose();
    }
  }

  /**
   * Take over the upload a stopped or killed run left for this recording, when it can be trusted: same key,
   * created with the same settings, and its recorded parts still in S3 with the same ETags. Otherwise abort it
   * and start afresh. Never throws for a stale upload; S3 errors other than "gone" propagate.
   */
  private async continueUpload(t: Transfer, input: TransferInput, up: ResumableUpload): Promise<void> {
    const log = { key: input.key, upload_id: up.uploadId };
    const abandon = async (why: string) => {
      this.logger.info(log, `not resuming the interrupted upload (${why}): starting from byte 0`);
      if (await this.abortUpload(up.key, up.uploadId)) input.onUploadEnded?.(up.uploadId);
    };
    if (up.key !== input.key) return abandon("the recording's key changed");
    if (up.fingerprint !== uploadFingerprint(input, this.settings.checksum))
      return abandon("the object settings changed");
    let parts = contiguousParts(up.parts);
    const inS3 = await this.listParts(up.key, up.uploadId);
    if (inS3 === "gone") {
      this.logger.info(log, "the interrupted upload is gone from S3: starting from byte 0");
      input.onUploadEnded?.(up.uploadId);
      return;
    }
    if (inS3 !== "unsupported") {
      const firstBad = parts.findIndex((p) => {
        const s = inS3.get(p.partNumber);
        return !s || unquote(s.etag) !== unquote(p.etag) || s.size !== p.end - p.start;
      });
      if (firstBad >= 0) parts = parts.slice(0, firstBad);
    }
    if (parts.length === 0) return abandon("no part of it is stored");
    t.resumeAfter(up.uploadId, parts);
    this.logger.info(
      { ...log, parts: parts.length, bytes: t.storedPrefix },
      `resuming the interrupted upload after part ${parts.length} (byte ${t.storedPrefix}): those bytes are re-read from the source to rebuild the SHA-256, not uploaded again`,
    );
  }

  /** The parts S3 holds for an upload; "gone" when the upload no longer exists, "unsupported" when the endpoint cannot say. */
  async listParts(
    key: string,
    uploadId: string,
  ): Promise<Map<number, { etag: string; size: number }> | "gone" | "unsupported"> {
    const out = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    try {
      for (;;) {
        const page = await this.s3(`ListParts ${key}`, () =>
          this.client.send(
            new ListPartsCommand({
              Bucket: this.settings.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumberMarker: marker,
            }),
          ),
        );
        for (const p of page.Parts ?? [])
          if (p.PartNumber !== undefined) out.set(p.PartNumber, { etag: p.ETag ?? "", size: p.Size ?? -1 });
        if (!page.IsTruncated || page.NextPartNumberMarker === undefined) return out;
        marker = page.NextPartNumberMarker;
      }
    } catch (err) {
      const c = classify(err);
      if (c.code === "NoSuchUpload" || c.status === 404) return "gone";
      if (c.status === 501 || c.status === 405 || c.code === "NotImplemented") return "unsupported";
      throw c;
    }
  }

  /** Abort a multipart upload; true when it is gone (aborted now or already). Never throws. */
  async abortUpload(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key, UploadId: uploadId }),
      );
      return true;
    } catch (err) {
      const c = s3Failure(err, `AbortMultipartUpload ${key}`);
      if (c.code === "NoSuchUpload" || c.status === 404) return true;
      this.logger.warn(
        { key, code: c.code, status: c.status },
        `could not abort a multipart upload; the next run retries (${c.message})`,
      );
      return false;
    }
  }

  /** Multipart uploads in progress under a prefix, with their start times. */
  async listUploads(
    prefix: string,
  ): Promise<{ key: string; uploadId: string; initiated: Date | undefined }[]> {
    const out: { key: string; uploadId: string; initiated: Date | undefined }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.s3("ListMultipartUploads", () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.settings.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      );
      for (const u of page.Uploads ?? [])
        if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
      if (!page.IsTruncated) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /**
   * PutObject, through s3-direct.ts when it can serve this bucket (most of the CPU of small recordings is the
   * SDK's per-request stack), else through the SDK. `payloadHash`: the body's SHA-256, hex.
   */
  async putObject(input: DirectPutInput, payloadHash: string) {
    const direct = await this.directS3();
    if (direct) return direct.putObject(input, payloadHash);
    const { bucket, checksum } = this.settings;
    const out = await this.client.send(
      presetPayloadHash(new PutObjectCommand({ Bucket: bucket, ...input }), checksum, payloadHash),
    );
    this.checksumEcho.check(`PutObject ${input.Key}`, out);
    return out;
  }

  /** UploadPart, like putObject. */
  async uploadPart(input: DirectPartInput): Promise<{
    ETag?: string | undefined;
    ChecksumCRC32C?: string | undefined;
    ChecksumSHA256?: string | undefined;
  }> {
    const direct = await this.directS3();
    if (direct) return direct.uploadPart(input);
    const { bucket, checksum } = this.settings;
    const out = await this.client.send(
      presetPayloadHash(new UploadPartCommand({ Bucket: bucket, ...input }), checksum, "UNSIGNED-PAYLOAD"),
    );
    this.checksumEcho.check(`UploadPart ${input.PartNumber} ${input.Key}`, out);
    return out;
  }

  private direct: Promise<DirectS3 | undefined> | undefined;

  /** The direct path for this bucket, learned once; none when the SDK computes the checksums. */
  private directS3(): Promise<DirectS3 | undefined> {
    if (sdkChecksum(this.settings.checksum)) return Promise.resolve(undefined);
    this.direct ??= DirectS3.open(this.client, this.settings.bucket).catch((err: unknown) => {
      this.direct = undefined; // not learned (credentials not resolvable yet?): the next request tries again
      throw err;
    });
    return this.direct;
  }

  /**
   * Run one S3 request under the retry policy. `what` is the S3 operation and its key ("PutObject k"): every
   * failure names it (errors.ts, s3Failure). `notFound` maps a 404 to a specific error.
   */
  s3<T>(what: string, fn: () => Promise<T>, opts: { notFound?: () => ArchiverError } = {}): Promise<T> {
    return withRetry(
      async () => {
        try {
          return await fn();
        } catch (err) {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status === 404 && opts.notFound) throw opts.notFound();
          throw s3Failure(err, what);
        }
      },
      this.policy,
      {
        signal: this.signal,
        onRetry: (err, attempt) => {
          this.onRetry?.();
          this.logger.warn({ what, attempt, code: err.code, status: err.status }, `S3 ${what}: retrying`);
        },
      },
    );
  }
}

/** The mutable state of one object's transfer: bytes hashed, parts uploaded, and where to resume from. */
class Transfer {
  hash: Hash = createHash("sha256");
  offset = 0;
  /** The bytes not yet handed to S3 (the next part, or the whole of a small recording). */
  body: SpillBuffer;
  uploadId: string | undefined;
  parts: CompletedPart[] = [];
  nextPart = 1;
  /** Position and hash state at the start of the buffered (not yet uploaded) bytes. */
  checkpoint: { offset: number; hash: Hash } = { offset: 0, hash: createHash("sha256") };
  /**
   * Resuming an interrupted run's upload: bytes [0, storedPrefix) are in S3 already. They are read again only
   * to rebuild the SHA-256, checked at every part boundary against the digest recorded when the part was stored.
   */
  storedPrefix = 0;
  private boundaries: StoredPart[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private partError: unknown;

  constructor(
    private readonly sink: S3Sink,
    private readonly input: TransferInput,
  ) {
    this.body = this.newBody();
  }

  private newBody(): SpillBuffer {
    const { checksum, spoolDir } = this.sink.settings;
    return new SpillBuffer(sdkChecksum(checksum) ? undefined : spoolDir, checksum === "MD5");
  }

  /** Continue `uploadId` after `parts` (contiguous from part 1), left by a run that was stopped or killed. */
  resumeAfter(uploadId: string, parts: StoredPart[]): void {
    this.uploadId = uploadId;
    this.parts = parts.map((p) => ({
      PartNumber: p.partNumber,
      ETag: p.etag,
      ...(p.checksumCRC32C ? { ChecksumCRC32C: p.checksumCRC32C } : {}),
      ...(p.checksumSHA256 ? { ChecksumSHA256: p.checksumSHA256 } : {}),
    }));
    this.nextPart = parts.length + 1;
    this.boundaries = parts;
    this.storedPrefix = parts.at(-1)!.end;
  }

  /**
   * Hash the part of `chunk` that lies in the already-stored prefix, checking each recorded boundary digest on
   * the way; returns what lies beyond the prefix (to be uploaded). A digest that differs means the source is not
   * the recording whose parts are stored: start again from byte 0.
   */
  private rehashStored(chunk: Buffer): Buffer {
    while (chunk.length > 0 && this.offset < this.storedPrefix) {
      const boundary = this.boundaries.find((p) => p.end > this.offset)!;
      const n = Math.min(chunk.length, boundary.end - this.offset);
      this.hash.update(chunk.subarray(0, n));
      this.offset += n;
      chunk = chunk.subarray(n);
      if (this.offset === boundary.end && this.hash.copy().digest("hex") !== boundary.prefixSha256)
        throw new ArchiverError(
          "retryable",
          "stored_prefix_changed",
          `the media for ${this.input.key} differs from what the interrupted run stored (bytes before ${boundary.end})`,
        );
      if (this.offset === this.storedPrefix)
        this.checkpoint = { offset: this.offset, hash: this.hash.copy() };
    }
    return chunk;
  }

  /** One pass over the source from the last checkpoint to its end. */
  async attempt(): Promise<void> {
    this.offset = this.checkpoint.offset;
    this.hash = this.checkpoint.hash.copy();
    void this.body.discard();
    this.body = this.newBody();
    const media = await this.input.open(this.offset);
    const { expectedBytes, key } = this.input;
    if (media.totalBytes !== null && expectedBytes !== null && media.totalBytes !== expectedBytes) {
      media.body.destroy();
      throw sizeMismatch(
        key,
        `media is ${media.totalBytes} bytes but Envoy reported file_size_bytes ${expectedBytes}`,
      );
    }
    const partSize = this.sink.settings.partSize;
    let skip = media.skip;
    for await (const raw of media.body) {
      let chunk = raw as Buffer;
      if (skip > 0) {
        if (chunk.length <= skip) {
          skip -= chunk.length;
          continue;
        }
        chunk = chunk.subarray(skip);
        skip = 0;
      }
      this.input.onBytes?.(chunk.length);
      if (this.offset < this.storedPrefix) {
        chunk = this.rehashStored(chunk);
        if (chunk.length === 0) continue;
      }
      this.hash.update(chunk);
      this.offset += chunk.length;
      const spilled = this.body.append(chunk);
      if (spilled) await spilled;
      if (this.body.length >= partSize) {
        if (!this.uploadId) await this.createUpload();
        this.flushPart();
        await this.waitForRoom();
      }
    }
    if (media.totalBytes !== null && this.offset !== media.totalBytes)
      throw new ArchiverError(
        "retryable",
        "short_body",
        `media for ${key} ended at byte ${this.offset} of ${media.totalBytes}`,
      );
    if (expectedBytes !== null && this.offset !== expectedBytes)
      throw sizeMismatch(
        key,
        `received ${this.offset} bytes but Envoy reported file_size_bytes ${expectedBytes}`,
      );
    // A large recording: its last part, and every part confirmed, before the attempt counts as done (so that an
    // upload that vanished under it starts the attempt again).
    if (this.uploadId) {
      if (this.body.length > 0) this.flushPart();
      await this.drain();
    }
  }

  /** Forget everything and start from byte 0 (the source's size disagreed; earlier parts may be wrong too). */
  restart(): void {
    void this.abort();
    this.parts = [];
    this.nextPart = 1;
    this.storedPrefix = 0;
    this.boundaries = [];
    this.checkpoint = { offset: 0, hash: createHash("sha256") };
  }

  private async createUpload(): Promise<void> {
    const { bucket } = this.sink.settings;
    const out = await this.sink.s3(`CreateMultipartUpload ${this.input.key}`, () =>
      this.sink.client.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: this.input.key,
          ContentType: this.input.contentType,
          Metadata: this.input.metadata,
          ...this.input.objectParams,
          ...declaredChecksum(this.sink.settings.checksum),
        }),
      ),
    );
    if (!out.UploadId) throw new ArchiverError("retryable", "no_upload_id", "S3 returned no UploadId");
    this.uploadId = out.UploadId;
    this.input.onUploadStarted?.(out.UploadId, uploadFingerprint(this.input, this.sink.settings.checksum));
  }

  /** Hand the buffered bytes to S3 as the next part (in the background, at most queueSize at once). */
  flushPart(): void {
    const sealing = this.body.seal();
    const alg = this.sink.settings.checksum;
    const partNumber = this.nextPart++;
    const uploadId = this.uploadId!;
    this.body = this.newBody();
    const start = this.checkpoint.offset;
    this.checkpoint = { offset: this.offset, hash: this.hash.copy() };
    const end = this.offset;
    // Cheap (one final block): the digest of everything up to this part's end, for a later run to check.
    const prefixSha256 = this.checkpoint.hash.copy().digest("hex");
    const upload = async () => {
      const body = await sealing;
      try {
        return await this.sink.s3(`UploadPart ${partNumber} ${this.input.key}`, () =>
          this.sink.uploadPart({
            Key: this.input.key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: requestBody(alg, body),
            ContentLength: body.length,
            ...bodyChecksum(alg, body),
          }),
        );
      } finally {
        await body.dispose();
      }
    };
    const p = upload()
      .then(
        (out) => {
          this.parts.push({
            PartNumber: partNumber,
            ETag: out.ETag,
            ...(out.ChecksumCRC32C ? { ChecksumCRC32C: out.ChecksumCRC32C } : {}),
            ...(out.ChecksumSHA256 ? { ChecksumSHA256: out.ChecksumSHA256 } : {}),
          });
          this.input.onPartStored?.(uploadId, {
            partNumber,
            start,
            end,
            etag: out.ETag ?? "",
            checksumCRC32C: out.ChecksumCRC32C,
            checksumSHA256: out.ChecksumSHA256,
            prefixSha256,
          });
        },
        (err: unknown) => {
          this.partError ??= err;
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Back-pressure: wait while queueSize parts are in flight; surface a failed part. */
  private async waitForRoom(): Promise<void> {
    while (this.inflight.size >= this.sink.settings.queueSize) await Promise.race(this.inflight);
    this.throwPartError();
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight);
    this.throwPartError();
  }

  private throwPartError(): void {
    if (this.partError === undefined) return;
    const err = this.partError;
    this.partError = undefined;
    // A part that failed after all its retries cannot be resumed from a checkpoint past it.
    if (err instanceof StopRequested) throw err;
    // The upload is gone (aborted by a lifecycle rule or by hand, or a resumed one on an endpoint that cannot
    // list parts): the recording starts again from byte 0 with a new upload.
    const gone = uploadGone(err, this.input.key);
    if (gone) throw gone;
    const c = classify(err);
    throw c.kind === "fatal"
      ? c
      : new ArchiverError("permanent", "part_failed", `upload of a part failed: ${c.message}`, {
          cause: err,
        });
  }

  /**
   * Stopped: let the parts in flight finish (each is recorded as it is stored) and keep the upload for the next
   * run. False when there is nothing worth keeping (no upload, or no part stored).
   */
  async keepForResume(): Promise<boolean> {
    if (!this.uploadId) return false;
    await Promise.allSettled(this.inflight);
    // Parts confirmed by S3 in this process or recorded by the one before: what the next run resumes after.
    if (this.parts.length === 0) return false;
    this.uploadId = undefined;
    return true;
  }

  /** Abort the multipart upload (if any) so no parts are left behind. Never throws. */
  async abort(): Promise<void> {
    const uploadId = this.uploadId;
    if (!uploadId) return;
    this.uploadId = undefined;
    await Promise.allSettled(this.inflight);
    if (await this.sink.abortUpload(this.input.key, uploadId)) this.input.onUploadEnded?.(uploadId);
  }
}

/** S3's NoSuchUpload as the retryable "upload_gone" (the transfer restarts from byte 0); undefined otherwise. */
function uploadGone(err: unknown, key: string): ArchiverError | undefined {
  if (classify(err).code !== "NoSuchUpload") return undefined;
  return new ArchiverError("retryable", "upload_gone", `the multipart upload of ${key} is gone`, {
    cause: err,
  });
}

function sizeMismatch(key: string, detail: string): ArchiverError {
  return new ArchiverError("retryable", "size_mismatch", `size mismatch for ${key}: ${detail}`);
}
