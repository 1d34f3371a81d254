/**
 * Writes whose answer is lost. A PUT or a CompleteMultipartUpload can succeed on the server while the connection
 * drops before its answer: retried blindly, a PUT writes the object again (a second version in a versioned or
 * WORM bucket; Ceph RGW ignores If-None-Match there), and a completion gets NoSuchUpload (the upload is consumed
 * once completed, as AWS answers; RGW completes it again) although the object is complete. So a write that failed
 * is retried only after looking at the bucket: an object whose size and SHA-256 (single PUT), MD5 (sidecar) or
 * multipart ETag (computed from the parts S3 confirmed) are ours is the write that landed — recorded, never sent
 * again.
 */
import { ArchiverError, classify } from "../base/errors.js";
import { multipartEtag, sameEtag } from "./multipart-etag.js";
import type { CompletedPartRef, WriteAnswer } from "./object-store.js";
import { contiguousParts } from "./resume.js";
import type { Requests } from "./requests.js";
import type { ResumableUpload, TransferResult } from "./types.js";
import { rivalFirst, type RivalUpload } from "./conflict.js";

type Head = NonNullable<Awaited<ReturnType<Requests["head"]>>>;

/** What a write returned, or the object found in the bucket when an earlier attempt's answer was lost. */
export type Written<T> = { out: T; landed?: undefined } | { out?: undefined; landed: Head };

/**
 * Run one write under the retry policy; before each retry, look at the bucket: an object `isOurs` says is the one
 * this write makes means an earlier attempt landed; any other object means the key was taken meanwhile, answered
 * as S3 answers a conditional write (412), so that the caller resolves it as it does a refused If-None-Match.
 */
export async function writeOnce<T>(
  sink: Requests,
  what: string,
  key: string,
  isOurs: (h: Head) => boolean,
  send: () => Promise<T>,
): Promise<Written<T>> {
  let sent = false;
  return sink.s3(what, async (): Promise<Written<T>> => {
    if (sent) {
      const h = await sink.head(key);
      if (h && isOurs(h)) return { landed: h };
      if (h)
        throw new ArchiverError("permanent", "PreconditionFailed", `${key} was written by someone else`, {
          status: 412,
        });
    }
    sent = true;
    return { out: await send() };
  });
}

/** What a write stored under the key. */
export interface WrittenAs {
  /** null when the server named none (Ceph RGW answers a completion with an empty ETag). */
  etag: string | null;
  versionId: string | null;
}

/** The version id and ETag a write reports, from its answer or from the object that landed. */
export function writtenAs<T extends WriteAnswer>(w: Written<T>): WrittenAs {
  const named = w.landed ?? w.out;
  return { etag: named.etag || null, versionId: named.versionId || null };
}

/** The completion's outcome could not be learned (S3 unreachable through every retry): keep the upload. */
export class CompletionUnknown extends ArchiverError {
  constructor(key: string, cause: ArchiverError) {
    super(
      "retryable",
      "completion_unknown",
      `completing the upload of ${key} got no answer (${cause.message}); the upload is kept, and the next run looks at the bucket before doing anything else`,
      { cause },
    );
  }
}

export interface Completion {
  key: string;
  uploadId: string;
  parts: CompletedPartRef[];
  bytes: number;
}

/**
 * CompleteMultipartUpload, conditional (If-None-Match: * — never over another writer's object, where the server
 * honours it). "taken": the key holds another object (a 412, or one found before completing, which covers the
 * servers that ignore the condition: Ceph RGW 16.2). "yield": another writer's upload of the key began first
 * (conflict.ts). "gone": the upload no longer exists and the object under the key is not what its parts make.
 */
export async function completeUpload(
  sink: Requests,
  c: Completion,
): Promise<
  | ({ kind: "completed" } & WrittenAs)
  | { kind: "taken" }
  | { kind: "yield"; rival: RivalUpload }
  | { kind: "gone"; error: ArchiverError }
> {
  const etag = multipartEtag(c.parts.map((p) => p.etag));
  const isOurs = (h: Head) => h.size === c.bytes && etag !== undefined && sameEtag(h.etag, etag);
  // Other writers' uploads first, then the key: a rival that completes in between has left its upload's place in
  // the listing for its object's under the key, and either is seen.
  const rival = await rivalFirst(sink, c.key, c.uploadId);
  if (rival) return { kind: "yield", rival };
  if (await sink.head(c.key)) return { kind: "taken" };
  try {
    const w = await writeOnce(sink, `CompleteMultipartUpload ${c.key}`, c.key, isOurs, async () => {
      try {
        return await sink.store.completeUpload({
          key: c.key,
          uploadId: c.uploadId,
          parts: c.parts,
          ifNoneMatch: "*",
        });
      } catch (err) {
        // Aborted (a lifecycle rule, an operator): not retried here. (One an earlier attempt completed is found
        // by writeOnce's look at the bucket before this attempt is sent.)
        if (classify(err).code !== "NoSuchUpload") throw err;
        throw new ArchiverError("permanent", "upload_gone", `the multipart upload of ${c.key} is gone`, {
          cause: err,
        });
      }
    });
    return { kind: "completed", ...writtenAs(w) };
  } catch (err) {
    const e = classify(err);
    if (e.status === 412) return { kind: "taken" };
    if (e.code === "upload_gone")
      return {
        kind: "gone",
        error: new ArchiverError("retryable", "upload_gone", e.message, { cause: err }),
      };
    if (e.kind === "retryable") throw new CompletionUnknown(c.key, e);
    throw e;
  }
}

/**
 * A run that died (or gave up) while completing: was the upload completed? When the object under the key is
 * exactly what the recorded parts make (size, multipart ETag) it was, and the recording is archived as it stands
 * — its SHA-256 is the digest recorded with its last part — with nothing downloaded or uploaded again.
 */
export async function completedEarlier(
  sink: Requests,
  key: string,
  up: ResumableUpload,
  expectedBytes: number | null,
): Promise<TransferResult | undefined> {
  const parts = contiguousParts(up.parts);
  const last = parts.at(-1);
  if (!last || up.key !== key || (expectedBytes !== null && last.end !== expectedBytes)) return undefined;
  const etag = multipartEtag(parts.map((p) => p.etag));
  const h = etag ? await sink.head(key) : null;
  if (!h || h.size !== last.end || !sameEtag(h.etag, etag)) return undefined;
  return {
    bytes: last.end,
    sha256: last.prefixSha256,
    etag: h.etag,
    versionId: h.versionId,
    multipart: true,
    completedEarlier: true,
    // Each part was proven as it was stored (write-proof.ts) and the object's ETag is the one they make.
    proof: "etag",
  };
}
