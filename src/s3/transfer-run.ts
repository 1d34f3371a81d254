/**
 * One recording into one object. Recordings smaller than partSize (the usual call) go up in a single PutObject
 * after the whole body has been read, so the object is created with its final SHA-256 in metadata. Larger ones
 * use a multipart upload, whose metadata is fixed before the hash is known: their SHA-256 lives in the sidecar,
 * the state DB and the manifest (never a CopyObject onto itself, which in a versioned bucket would store every
 * such recording twice). A transfer that fails part way aborts its multipart upload, so no partial object ever
 * becomes visible and no parts are orphaned. A transfer that is stopped (SIGTERM) or killed keeps its stored
 * parts, recorded one by one through `onPartStored`; the next run passes them back as `resume` and the upload
 * continues after its last part (resume.ts). Before any of it, already-stored.ts decides whether the recording
 * is in S3 already.
 */
import { classify, StopRequested } from "../base/errors.js";
import { withRetry } from "../base/retry.js";
import { alreadyStored } from "./already-stored.js";
import { bodyChecksum, knownSha256, requestBody } from "./body.js";
import { awaitRival, resolveTakenKey, type Writer } from "./conflict.js";
import { completeUpload, CompletionUnknown, writeOnce, writtenAs, type WrittenAs } from "./lost-answer.js";
import { multipartEtag, sameEtag } from "./multipart-etag.js";
import { continueUpload } from "./resume.js";
import type { Requests } from "./requests.js";
import type { SealedBody } from "./spool.js";
import { hexOf, Transfer } from "./transfer.js";
import type { TransferInput, TransferResult } from "./types.js";
import { landedProof, proofBasis, proveMultipart, provePut, type WriteProof } from "./write-proof.js";

/** Stream one recording into `input.key` (unless it is there already). Resolves when every byte is stored. */
export async function runTransfer(sink: Requests, input: TransferInput): Promise<TransferResult> {
  const found = await alreadyStored(sink, input);
  if (found) return found;
  const t = new Transfer(sink, input);
  const writer: Writer = { runId: input.runId, startedAt: sink.now().getTime() };
  if (input.resume) await continueUpload(sink, t, input, input.resume);
  /** A small recording's finished body, for its single PUT. */
  let sealed: SealedBody | undefined;
  try {
    await readSource(sink, t, input);
    if (!t.uploadId) {
      sealed = await t.body.seal();
      return await singlePut(sink, input, t, sealed, writer);
    }
    return await complete(sink, input, t, writer);
  } catch (err) {
    // Stopped (SIGTERM/SIGINT) with parts stored: keep them for the next run to continue. Anything else: abort,
    // so that no parts are left behind.
    if (err instanceof StopRequested && (await t.keepForResume())) {
      sink.logger.info(
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

/** Read the source to its end under the retry policy, resuming from the last checkpoint after an interruption. */
function readSource(sink: Requests, t: Transfer, input: TransferInput): Promise<void> {
  return withRetry(() => t.attempt(), sink.policy, {
    signal: input.signal ?? sink.signal,
    onRetry: (err, attempt) => {
      sink.onRetry?.();
      sink.logger.warn(
        { key: input.key, attempt, code: err.code },
        `transfer interrupted (${err.message}); resuming at byte ${t.checkpoint.offset}`,
      );
      if (["size_mismatch", "stored_prefix_changed", "upload_gone"].includes(err.code)) t.restart();
    },
  });
}

/**
 * A small recording in one PutObject, never over what is there: a conditional PUT costs nothing when the key is
 * free (the usual case), and a PUT whose answer was lost is looked for in the bucket before it is sent again
 * (lost-answer.ts). A key already taken is resolved by conflict.ts (ours: adopted; another writer's; an older
 * archive of a source that changed).
 */
async function singlePut(
  sink: Requests,
  input: TransferInput,
  t: Transfer,
  body: SealedBody,
  writer: Writer,
): Promise<TransferResult> {
  const sha256 = t.hash.digest("hex");
  const length = body.length;
  const alg = sink.settings.checksum;
  const sums = { ...bodyChecksum(alg, body), ...knownSha256(alg, sha256) };
  const sent = { key: input.key, md5: hexOf(body.md5Base64), checksumSHA256: sums.checksumSHA256 };
  const proven = { ...sent, ...proofBasis(alg, input.objectParams) };
  const put = async () => {
    const out = await sink.putObject({
      key: input.key,
      body: requestBody(alg, body),
      length,
      contentType: input.contentType,
      metadata: { ...input.metadata, sha256 },
      params: input.objectParams,
      ifNoneMatch: "*",
      ...sums,
    });
    return { ...out, proof: await provePut(sink, proven, out, sha256) };
  };
  // An earlier attempt's object is ours only when its ETag proves its bytes (its sha256 metadata is our claim).
  const isOurs = (h: { size: number; sha256: string | undefined; etag: string | null }) =>
    h.size === length && h.sha256 === sha256 && (!proven.etagIsMd5 || sameEtag(h.etag, sent.md5));
  let written;
  try {
    written = await writeOnce(sink, `PutObject ${input.key}`, input.key, isOurs, put);
  } catch (err) {
    if (classify(err).status !== 412) throw err;
    const ours = { sha256, bytes: length, etag: sent.md5 };
    return await resolveTakenKey(sink, input.key, ours, writer, input.signal);
  }
  const out = writtenAs(written);
  const proof = written.out?.proof ?? (await landedProof(sink, input.key, out.versionId, sha256, proven));
  if (written.out) sink.proofs.learn("PutObject", proof);
  return stored(t, sha256, out, false, proof);
}

/** Complete a large recording's multipart upload: conditional, and safe when its answer is lost. */
async function complete(
  sink: Requests,
  input: TransferInput,
  t: Transfer,
  writer: Writer,
): Promise<TransferResult> {
  const sha256 = t.hash.digest("hex");
  const parts = [...t.parts].sort((a, b) => a.partNumber - b.partNumber);
  const uploadId = t.uploadId!;
  input.onCompleting?.(uploadId);
  const done = await completeUpload(sink, { key: input.key, uploadId, parts, bytes: t.offset });
  // Gone between the last part and completion: nothing is stored; a later run does the recording again.
  if (done.kind === "gone") throw done.error;
  if (done.kind === "taken" || done.kind === "yield") {
    await t.abort();
    const ours = { sha256, bytes: t.offset, etag: multipartEtag(parts.map((p) => p.etag)) };
    return done.kind === "yield"
      ? await awaitRival(sink, input.key, ours, writer, done.rival, input.signal)
      : await resolveTakenKey(sink, input.key, ours, { ...writer, concurrent: true }, input.signal);
  }
  t.uploadId = undefined; // completed: nothing left to abort
  input.onUploadEnded?.(uploadId);
  // Ceph RGW answers without an ETag: the proof reads it (a HEAD), and the evidence (lock-evidence.ts) starts there.
  const { proof, head } = await proveMultipart(
    sink,
    { key: input.key, sha256, ...done },
    parts,
    t.partProofs,
  );
  const etag = done.etag ?? head?.etag ?? null;
  return {
    ...stored(t, sha256, { ...done, etag }, true, proof),
    ...(head ? { head } : {}),
    ...(t.storedPrefix > 0 ? { resumedBytes: t.storedPrefix } : {}),
  };
}

/** What a write stored: this transfer's bytes and SHA-256, under the ETag and version the write named. */
function stored(
  t: Transfer,
  sha256: string,
  written: WrittenAs,
  multipart: boolean,
  proof: WriteProof,
): TransferResult {
  return { bytes: t.offset, sha256, etag: written.etag, versionId: written.versionId, multipart, proof };
}
