/** A source read to its end and hashed, nothing uploaded: to compare it with an object already stored. */
import { createHash } from "node:crypto";
import { withRetry, type RetryPolicy } from "../base/retry.js";
import { sizeMismatch } from "./size-mismatch.js";
import type { TransferInput } from "./types.js";

/** Read a source to its end and hash it, uploading nothing (to compare with an object already stored). */
export function hashSource(
  sink: { policy: RetryPolicy; signal?: AbortSignal | undefined; onRetry: (() => void) | undefined },
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
    sink.policy,
    { signal: sink.signal, onRetry: () => sink.onRetry?.() },
  );
}
