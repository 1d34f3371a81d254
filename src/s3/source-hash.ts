/** A source read to its end and hashed, nothing uploaded: to compare it with an object already stored. */
import { createHash, type Hash } from "node:crypto";
import { withRetry, type RetryPolicy } from "../base/retry.js";
import { multipartEtag } from "./multipart-etag.js";
import { sizeMismatch } from "./size-mismatch.js";
import type { TransferInput } from "./types.js";

/** Read a source to its end and hash it, uploading nothing (to compare with an object already stored). */
export function hashSource(
  sink: { policy: RetryPolicy; signal?: AbortSignal | undefined; onRetry: (() => void) | undefined },
  open: TransferInput["open"],
  expectedBytes: number | null,
  key: string,
  partSize: number,
): Promise<{ sha256: string; bytes: number; etag: string | undefined }> {
  return withRetry(
    async () => {
      const media = await open(0);
      const h = createHash("sha256");
      const etag = new EtagOf(partSize);
      let bytes = 0;
      for await (const chunk of media.body) {
        h.update(chunk as Buffer);
        etag.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      if (
        (media.totalBytes !== null && bytes !== media.totalBytes) ||
        (expectedBytes !== null && bytes !== expectedBytes)
      )
        throw sizeMismatch(key, `read ${bytes} bytes, expected ${expectedBytes ?? media.totalBytes}`);
      return { sha256: h.digest("hex"), bytes, etag: etag.digest() };
    },
    sink.policy,
    { signal: sink.signal, onRetry: () => sink.onRetry?.() },
  );
}

/**
 * The ETag S3 gives these bytes when this archiver stores them: the MD5 of a single PUT, or the multipart ETag of
 * `partSize` parts (multipart-etag.ts) — compared with a stored object's ETag, it proves the object holds them.
 */
class EtagOf {
  private readonly whole = createHash("md5");
  private part: Hash = createHash("md5");
  private inPart = 0;
  private readonly parts: string[] = [];

  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    while (chunk.length > 0) {
      const n = Math.min(chunk.length, this.partSize - this.inPart);
      this.part.update(chunk.subarray(0, n));
      this.inPart += n;
      chunk = chunk.subarray(n);
      if (this.inPart === this.partSize) this.endPart();
    }
  }

  private endPart(): void {
    this.parts.push(this.part.digest("hex"));
    this.part = createHash("md5");
    this.inPart = 0;
  }

  digest(): string | undefined {
    if (this.parts.length === 0) return this.whole.digest("hex");
    if (this.inPart > 0) this.endPart();
    return multipartEtag(this.parts);
  }
}
