/**
 * The mutable state of one object's transfer: the bytes hashed, the parts handed to the store (at most queueSize
 * at once), and where an attempt resumes from. Written against the store (s3.ts) over the ObjectStore port.
 */
import { createHash, type Hash } from "node:crypto";
import { ArchiverError, classify, StopRequested, WriteMismatch } from "../base/errors.js";
import { bodyChecksum, declaredChecksum, requestBody, sdkChecksum } from "./body.js";
import type { CompletedPartRef } from "./object-store.js";
import { uploadFingerprint } from "./resume.js";
import type { Requests } from "./requests.js";
import { sizeMismatch } from "./size-mismatch.js";
import { SpillBuffer } from "./spool.js";
import type { SourceStream, StoredPart, TransferInput } from "./types.js";
import { proofBasis, proveAnswer, type WriteProof } from "./write-proof.js";

export const hexOf = (base64: string | undefined): string | undefined =>
  base64 === undefined ? undefined : Buffer.from(base64, "base64").toString("hex");

export class Transfer {
  hash: Hash = createHash("sha256");
  offset = 0;
  /** The bytes not yet handed to S3 (the next part, or the whole of a small recording). */
  body: SpillBuffer;
  uploadId: string | undefined;
  parts: CompletedPartRef[] = [];
  nextPart = 1;
  /** Position and hash state at the start of the buffered (not yet uploaded) bytes. */
  checkpoint: { offset: number; hash: Hash } = { offset: 0, hash: createHash("sha256") };
  /**
   * Resuming an interrupted run's upload: bytes [0, storedPrefix) are in S3 already. They are read again only
   * to rebuild the SHA-256, checked at every part boundary against the digest recorded when the part was stored.
   */
  storedPrefix = 0;
  private boundaries: StoredPart[] = [];
  /** How each part's stored bytes were proven (write-proof.ts), by part number. */
  readonly partProofs = new Map<number, WriteProof>();
  /** MD5 of the stored part being re-read (resuming): checked against the ETag recorded for it. */
  private storedPartMd5: Hash = createHash("md5");
  private readonly inflight = new Set<Promise<void>>();
  private partError: unknown;

  constructor(
    private readonly sink: Requests,
    private readonly input: TransferInput,
  ) {
    this.body = this.newBody();
  }

  private newBody(): SpillBuffer {
    const { checksum, spoolDir } = this.sink.settings;
    // The MD5 that proves a write where the server echoes no checksum (write-proof.ts): a body before the upload
    // exists may become its single PUT or its first part.
    const { proofs } = this.sink;
    const md5 = proofs.needsMd5("UploadPart") || (!this.uploadId && proofs.needsMd5("PutObject"));
    return new SpillBuffer(sdkChecksum(checksum) ? undefined : spoolDir, md5);
  }

  /** Continue `uploadId` after `parts` (contiguous from part 1), left by a run that was stopped or killed. */
  resumeAfter(uploadId: string, parts: StoredPart[]): void {
    this.uploadId = uploadId;
    this.parts = parts.map((p) => ({
      partNumber: p.partNumber,
      etag: p.etag,
      checksumCRC32C: p.checksumCRC32C,
      checksumSHA256: p.checksumSHA256,
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
      if (this.offset === boundary.start) this.storedPartMd5 = createHash("md5");
      this.hash.update(chunk.subarray(0, n));
      this.storedPartMd5.update(chunk.subarray(0, n));
      this.offset += n;
      chunk = chunk.subarray(n);
      if (this.offset === boundary.end) this.checkStoredPart(boundary);
      if (this.offset === this.storedPrefix)
        this.checkpoint = { offset: this.offset, hash: this.hash.copy() };
    }
    return chunk;
  }

  /**
   * A part the interrupted run stored, re-read: the source's bytes up to its end must hash as recorded, and the
   * ETag S3 gave the part must be their MD5 (else the part is proven by reading the completed object back).
   */
  private checkStoredPart(p: StoredPart): void {
    if (this.hash.copy().digest("hex") !== p.prefixSha256)
      throw new ArchiverError(
        "retryable",
        "stored_prefix_changed",
        `the media for ${this.input.key} differs from what the interrupted run stored (bytes before ${p.end})`,
      );
    const sent = {
      key: this.input.key,
      partNumber: p.partNumber,
      ...proofBasis(this.sink.settings.checksum, this.input.objectParams),
    };
    const answer = { ...p, versionId: undefined };
    try {
      this.partProofs.set(
        p.partNumber,
        proveAnswer({ ...sent, md5: this.storedPartMd5.digest("hex") }, answer),
      );
    } catch (err) {
      if (!(err instanceof WriteMismatch)) throw err;
      throw new ArchiverError("retryable", "stored_prefix_changed", `${err.message}: starting again`);
    }
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
    await this.consume(media);
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

  /** Hash and buffer the source's bytes, handing a part to the store whenever partSize bytes are buffered. */
  private async consume(media: SourceStream): Promise<void> {
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
  }

  /** Forget everything and start from byte 0 (the source's size disagreed; earlier parts may be wrong too). */
  restart(): void {
    void this.abort();
    this.parts = [];
    this.partProofs.clear();
    this.nextPart = 1;
    this.storedPrefix = 0;
    this.boundaries = [];
    this.checkpoint = { offset: 0, hash: createHash("sha256") };
  }

  private async createUpload(): Promise<void> {
    const { key, contentType, metadata, objectParams } = this.input;
    const uploadId = await this.sink.s3(`CreateMultipartUpload ${key}`, () =>
      this.sink.store.createUpload({
        key,
        contentType,
        metadata,
        params: objectParams,
        ...declaredChecksum(this.sink.settings.checksum),
      }),
    );
    if (!uploadId) throw new ArchiverError("retryable", "no_upload_id", "S3 returned no UploadId");
    this.uploadId = uploadId;
    this.input.onUploadStarted?.(uploadId, uploadFingerprint(this.input, this.sink.settings.checksum));
  }

  /** Hand the buffered bytes to S3 as the next part (in the background, at most queueSize at once). */
  flushPart(): void {
    const sealing = this.body.seal();
    const alg = this.sink.settings.checksum;
    const partNumber = this.nextPart++;
    const uploadId = this.uploadId!;
    const key = this.input.key;
    this.body = this.newBody();
    const start = this.checkpoint.offset;
    this.checkpoint = { offset: this.offset, hash: this.hash.copy() };
    const end = this.offset;
    // Cheap (one final block): the digest of everything up to this part's end, for a later run to check.
    const prefixSha256 = this.checkpoint.hash.copy().digest("hex");
    const upload = async () => {
      const body = await sealing;
      const sent = {
        key,
        partNumber,
        md5: hexOf(body.md5Base64),
        ...proofBasis(this.sink.settings.checksum, this.input.objectParams),
      };
      try {
        // A part whose answer disproves it is sent again under the retry policy: the same part number replaces it.
        return await this.sink.s3(`UploadPart ${partNumber} ${key}`, async () => {
          const out = await this.sink.uploadPart({
            key,
            uploadId,
            partNumber,
            body: requestBody(alg, body),
            length: body.length,
            ...bodyChecksum(alg, body),
          });
          return { ...out, proof: proveAnswer(sent, out) };
        });
      } finally {
        await body.dispose();
      }
    };
    const p = upload()
      .then(
        (out) => {
          this.partProofs.set(partNumber, out.proof);
          this.sink.proofs.learn("UploadPart", out.proof);
          const part = { partNumber, etag: out.etag ?? "" };
          const sums = { checksumCRC32C: out.checksumCRC32C, checksumSHA256: out.checksumSHA256 };
          this.parts.push({ ...part, ...sums });
          this.input.onPartStored?.(uploadId, { ...part, start, end, ...sums, prefixSha256 });
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
