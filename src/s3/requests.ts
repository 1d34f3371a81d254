/**
 * The requests the store's parts share (transfer, resume, conflicts, evidence, read-back): each one through the
 * ObjectStore port, under the archiver's one retry policy, every failure named after its operation and key. The
 * store (s3.ts) adds what the jobs ask for on top; the parts take this, never the store, so that no import runs
 * in a circle.
 */
import type { Logger } from "pino";
import { ArchiverError, s3Failure } from "../base/errors.js";
import { withRetry, type RetryPolicy } from "../base/retry.js";
import { ChecksumEcho, ServerProof } from "./checksum-echo.js";
import type {
  ListedPart,
  ObjectHead,
  ObjectStore,
  PartRequest,
  PutRequest,
  UploadInProgress,
  UploadMarker,
  WriteAnswer,
} from "./object-store.js";
import { hashSource } from "./source-hash.js";
import type { SinkSettings, TransferInput } from "./types.js";

const MIN_PART_SIZE = 5 * 1024 ** 2;

/** A key, or one version of it, as messages name it. */
export const atVersion = (key: string, versionId?: string | null): string =>
  versionId ? `${key} (version ${versionId})` : key;

/** An object as the jobs see it: size, sha256 metadata, ETag, version. */
export interface StoredObject {
  size: number;
  sha256: string | undefined;
  etag: string | null;
  versionId: string | null;
  lastModified?: Date | undefined;
}

export class Requests {
  constructor(
    /** The port every request goes through. */
    readonly store: ObjectStore,
    readonly settings: SinkSettings,
    readonly policy: RetryPolicy,
    readonly logger: Logger,
    readonly signal?: AbortSignal,
  ) {
    if (settings.partSize < MIN_PART_SIZE)
      throw new Error(`part size must be at least ${MIN_PART_SIZE} bytes`);
    this.checksumEcho = new ChecksumEcho(settings.checksum, logger);
    this.proofs = new ServerProof(logger);
  }

  /** What this server's write answers prove, learned as the run goes (write-proof.ts). */
  readonly proofs: ServerProof;

  /** Tells the user when the server does not answer back the CRC32C/SHA-256 checksum it was sent. */
  private readonly checksumEcho: ChecksumEcho;

  /** Called on every retried S3 request or resumed transfer (metrics). */
  onRetry: (() => void) | undefined;

  /** How far the S3 server's clock is from this machine's (ms, + when the server's is ahead), as learned. */
  clockOffsetMs(): number {
    return this.store.clockOffsetMs();
  }

  /** The S3 server's time (retain-until dates are computed from it). */
  now(): Date {
    return new Date(Date.now() + this.store.clockOffsetMs());
  }

  /** Close the connections (the store is not used after). */
  close(): void {
    this.store.close();
  }

  /** HeadObject on a key (or one version of it), under the retry policy; null when there is none. */
  headObject(key: string, versionId?: string | null): Promise<ObjectHead | null> {
    return this.s3(`HeadObject ${atVersion(key, versionId)}`, () => this.store.head(key, versionId));
  }

  /** An object's size, sha256 metadata, ETag and version; null when there is none. */
  async head(key: string): Promise<StoredObject | null> {
    const h = await this.headObject(key);
    if (!h) return null;
    return {
      size: h.size,
      sha256: h.metadata.sha256,
      etag: h.etag,
      versionId: h.versionId,
      lastModified: h.lastModified,
    };
  }

  /** Read a source to its end and hash it, uploading nothing (to compare with an object already stored). */
  hashSource(
    open: TransferInput["open"],
    expectedBytes: number | null,
    key: string,
  ): Promise<{ sha256: string; bytes: number; etag: string | undefined }> {
    return hashSource(this, open, expectedBytes, key, this.settings.partSize);
  }

  /** The parts S3 holds for an upload; "gone" when the upload no longer exists, "unsupported" when the endpoint cannot say. */
  async listParts(
    key: string,
    uploadId: string,
  ): Promise<Map<number, { etag: string; size: number }> | "gone" | "unsupported"> {
    const out = new Map<number, { etag: string; size: number }>();
    let marker: number | undefined;
    for (;;) {
      const page = await this.s3(`ListParts ${key}`, () => this.store.listParts(key, uploadId, marker));
      if (typeof page === "string") return page;
      for (const p of page.items as ListedPart[]) out.set(p.partNumber, { etag: p.etag, size: p.size });
      if (page.next === undefined) return out;
      marker = page.next;
    }
  }

  /** Abort a multipart upload; true when it is gone (aborted now or already). Never throws. */
  async abortUpload(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.store.abortUpload(key, uploadId);
      return true;
    } catch (err) {
      const c = s3Failure(err, `AbortMultipartUpload ${key}`);
      this.logger.warn(
        { key, code: c.code, status: c.status },
        `could not abort a multipart upload; the next run retries (${c.message})`,
      );
      return false;
    }
  }

  /** Multipart uploads in progress under a prefix, with their start times. */
  async listUploads(prefix: string): Promise<UploadInProgress[]> {
    const out: UploadInProgress[] = [];
    let marker: UploadMarker | undefined;
    for (;;) {
      const page = await this.s3("ListMultipartUploads", () => this.store.listUploads(prefix, marker));
      out.push(...page.items);
      if (!page.next) return out;
      marker = page.next;
    }
  }

  /** PutObject; warns (once) when a checksum the SDK sent is not answered back. */
  async putObject(req: PutRequest): Promise<WriteAnswer> {
    const out = await this.store.put(req);
    this.checksumEcho.check(`PutObject ${req.key}`, out);
    return out;
  }

  /** UploadPart, like putObject. */
  async uploadPart(req: PartRequest): Promise<WriteAnswer> {
    const out = await this.store.uploadPart(req);
    this.checksumEcho.check(`UploadPart ${req.partNumber} ${req.key}`, out);
    return out;
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
