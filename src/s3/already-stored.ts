/**
 * Before a recording is uploaded: is it in the bucket already? S3 is the source of truth, and nothing in it is
 * ever written over. An interrupted run's completion may have landed (its recorded parts say so), or an earlier
 * run whose state was lost stored it (same SHA-256: adopted), or the key holds an older archive of a source that
 * has changed since (SourceChanged). Decided here once, for the transfer (transfer-run.ts); the single PUT's
 * condition and the completion's checks (lost-answer.ts, conflict.ts) settle what lands while it writes.
 */
import { SourceChanged } from "./conflict.js";
import { compareWith, inspectKey, readBack, sameBy } from "./existing.js";
import { completedEarlier } from "./lost-answer.js";
import type { Requests } from "./requests.js";
import type { TransferInput, TransferResult } from "./types.js";

/** What is stored for this recording already (nothing is written then); undefined when it must be written. */
export async function alreadyStored(
  sink: Requests,
  input: TransferInput,
): Promise<TransferResult | undefined> {
  const { resume, key, expectedBytes } = input;
  const landed = resume && (await completedEarlier(sink, key, resume, expectedBytes));
  if (resume && landed) {
    input.onUploadEnded?.(resume.uploadId); // the caller logs it (completedEarlier)
    return landed;
  }
  if (input.checkBeforeWrite === undefined) return undefined;
  // Recordings that fit one PUT are checked by the PUT itself (If-None-Match), without this extra request.
  const singlePut = expectedBytes !== null && expectedBytes < sink.settings.partSize;
  if (singlePut && !input.checkBeforeWrite) return undefined;
  return (await adoptExisting(sink, input)) ?? undefined;
}

/**
 * The object under the key, adopted when it holds the source's bytes (the source is read once and hashed;
 * nothing is uploaded); SourceChanged when it holds other bytes; null when the key is free.
 */
export async function adoptExisting(sink: Requests, input: TransferInput): Promise<TransferResult | null> {
  const { key } = input;
  const existing = await inspectKey(sink, key, { sidecar: "when-needed" });
  if (!existing) return null;
  const source = await sink.hashSource(input.open, input.expectedBytes, key);
  input.onBytes?.(source.bytes);
  // Its recorded SHA-256 is a claim: proven by the ETag our bytes give, else by reading the object back.
  const verdict = compareWith(existing, source);
  const settled = verdict === "unknown" ? await readBack(sink, existing, source) : { existing, verdict };
  const proof = sameBy(existing, source) ?? "read-back";
  const { etag, versionId } = settled.existing;
  if (settled.verdict === "same")
    return {
      sha256: source.sha256,
      bytes: source.bytes,
      etag,
      versionId,
      multipart: false,
      adopted: true,
      proof,
    };
  throw new SourceChanged(settled.existing, source);
}
