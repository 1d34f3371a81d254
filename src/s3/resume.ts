/**
 * Continuing a multipart upload that a stopped or killed run left: trusted only when it would create the same
 * object and its recorded parts are still in S3 with the same ETags and sizes.
 */
import { createHash } from "node:crypto";
import { unquoteEtag } from "./multipart-etag.js";
import type { Requests } from "./requests.js";
import type { ResumableUpload, SinkSettings, StoredPart, TransferInput } from "./types.js";

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

/**
 * Take over the upload a stopped or killed run left for this recording, when it can be trusted: same key,
 * created with the same settings, and its recorded parts still in S3 with the same ETags. Otherwise abort it
 * and start afresh. Never throws for a stale upload; S3 errors other than "gone" propagate.
 */
export async function continueUpload(
  sink: Requests,
  t: { resumeAfter(uploadId: string, parts: StoredPart[]): void; readonly storedPrefix: number },
  input: TransferInput,
  up: ResumableUpload,
): Promise<void> {
  const log = { key: input.key, upload_id: up.uploadId };
  const abandon = async (why: string) => {
    sink.logger.info(log, `not resuming the interrupted upload (${why}): starting from byte 0`);
    if (await sink.abortUpload(up.key, up.uploadId)) input.onUploadEnded?.(up.uploadId);
  };
  if (up.key !== input.key) return abandon("the recording's key changed");
  if (up.fingerprint !== uploadFingerprint(input, sink.settings.checksum))
    return abandon("the object settings changed");
  let parts = contiguousParts(up.parts);
  const inS3 = await sink.listParts(up.key, up.uploadId);
  if (inS3 === "gone") {
    sink.logger.info(log, "the interrupted upload is gone from S3: starting from byte 0");
    input.onUploadEnded?.(up.uploadId);
    return;
  }
  if (inS3 !== "unsupported") {
    const firstBad = parts.findIndex((p) => {
      const s = inS3.get(p.partNumber);
      return !s || unquoteEtag(s.etag) !== unquoteEtag(p.etag) || s.size !== p.end - p.start;
    });
    if (firstBad >= 0) parts = parts.slice(0, firstBad);
  }
  if (parts.length === 0) return abandon("no part of it is stored");
  t.resumeAfter(up.uploadId, parts);
  sink.logger.info(
    { ...log, parts: parts.length, bytes: t.storedPrefix },
    `resuming the interrupted upload after part ${parts.length} (byte ${t.storedPrefix}): those bytes are re-read from the source to rebuild the SHA-256, not uploaded again`,
  );
}
