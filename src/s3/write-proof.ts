/**
 * Every write proven by what the server answers about what it stored, never by what was asked (issue 23: a bit
 * flipped between the archiver and the disks — a middlebox, a NIC, a storage gateway — was stored and recorded as
 * archived). One proof a write, in this order:
 *
 * - "checksum": the answer echoes the x-amz-checksum-* the server verified (AWS with ARCHIVER_CHECKSUM_ALGORITHM
 *   CRC32C/SHA256, or the SHA-256 a single PUT declares). A body that differs is refused by the server itself.
 * - "etag": the ETag of a single PUT or a part is the MD5 of the bytes stored (unencrypted and SSE-S3 objects on
 *   AWS, Ceph RGW, MinIO, s3rver), compared with the MD5 of exactly the bytes sent, computed as they streamed; a
 *   multipart object's ETag is the MD5 of its parts' MD5s and "-N" (multipart-etag.ts).
 * - "read-back": neither (SSE-KMS, whose ETag is no MD5, on a server that echoes no checksum; or no ETag at all):
 *   the object is read back once and its SHA-256 compared with the source's.
 *
 * A mismatch throws WriteMismatch (retryable; errors.ts). A wrong object is removed first — the exact version
 * this write created — so that the retry, conditional on the key being free, writes it again.
 */
import { ArchiverError, classify, WriteMismatch } from "../base/errors.js";
import { multipartEtag, sameEtag, unquoteEtag } from "./multipart-etag.js";
import type { WriteAnswer } from "./object-store.js";
import { hashObject } from "./read-back.js";
import { atVersion, type Requests } from "./requests.js";
import type { ObjectHead, ObjectParams, SinkSettings, WriteProof } from "./types.js";

export type { WriteProof } from "./types.js";

/** The weakest first: a recording is as proven as the least proven of its writes. */
export const PROOFS: readonly WriteProof[] = ["read-back", "etag", "checksum"];

export const weakest = (proofs: Iterable<WriteProof>): WriteProof => {
  let w: WriteProof = "checksum";
  for (const p of proofs) if (PROOFS.indexOf(p) < PROOFS.indexOf(w)) w = p;
  return w;
};

/** Whether a stored object's ETag is the MD5 of its bytes: not for SSE-KMS (nor SSE-C) objects. */
export const etagIsMd5 = (params: ObjectParams): boolean =>
  params.ServerSideEncryption !== "aws:kms" && params.SSEKMSKeyId === undefined;

/** What a write's answer can prove, by the checksum setting and the object's encryption. */
export const proofBasis = (alg: SinkSettings["checksum"], params: ObjectParams) => ({
  etagIsMd5: etagIsMd5(params),
  sdkChecksum: alg === "CRC32C" || alg === "SHA256" ? alg : undefined,
});

/** What was sent in one request, digested as it streamed. */
export interface Sent {
  key: string;
  partNumber?: number | undefined;
  /** MD5 of the body, hex; undefined when it was not computed (the server was known to echo a checksum). */
  md5: string | undefined;
  /** The x-amz-checksum-sha256 declared with it (base64), when one was. */
  checksumSHA256?: string | undefined;
  /** The checksum the SDK computed and sent (ARCHIVER_CHECKSUM_ALGORITHM CRC32C/SHA256), if any. */
  sdkChecksum?: "CRC32C" | "SHA256" | undefined;
  etagIsMd5: boolean;
}

/**
 * The proof one PutObject or UploadPart answer gives of the bytes `sent`; "read-back" when it gives none (the
 * caller reads the object back). Throws WriteMismatch when the answer says other bytes were stored.
 */
export function proveAnswer(sent: Sent, out: WriteAnswer): WriteProof {
  if (sent.checksumSHA256 && out.checksumSHA256) {
    if (out.checksumSHA256 === sent.checksumSHA256) return "checksum";
    throw new WriteMismatch(
      sent.key,
      sent.partNumber,
      "SHA-256",
      b64hex(sent.checksumSHA256),
      `checksum ${b64hex(out.checksumSHA256)}`,
    );
  }
  // An SDK-computed checksum the server answers back is one it checked (it refuses a body that differs).
  const echoed = sent.sdkChecksum === "CRC32C" ? out.checksumCRC32C : sent.sdkChecksum && out.checksumSHA256;
  if (echoed) return "checksum";
  const etag = unquoteEtag(out.etag).toLowerCase();
  if (!sent.md5 || !sent.etagIsMd5 || !/^[0-9a-f]{32}$/.test(etag)) return "read-back";
  if (etag === sent.md5) return "etag";
  throw new WriteMismatch(sent.key, sent.partNumber, "MD5", sent.md5, `ETag ${etag}`);
}

const b64hex = (b64: string) => Buffer.from(b64, "base64").toString("hex");

/**
 * A PutObject's proof (a recording or a sidecar whose bytes hash to `sha256`): its answer, else the object read
 * back. A wrong object is deleted and the mismatch thrown, for the write to be sent again.
 */
export async function provePut(
  sink: Requests,
  sent: Sent,
  out: WriteAnswer,
  sha256: string,
): Promise<WriteProof> {
  const versionId = out.versionId || null;
  try {
    const proof = proveAnswer(sent, out);
    return proof === "read-back" ? await proveByReading(sink, sent.key, versionId, sha256) : proof;
  } catch (err) {
    if (err instanceof WriteMismatch) return removeWrong(sink, sent.key, versionId, err);
    throw err;
  }
}

/** An earlier attempt's PUT, found in the bucket (its answer was lost): its ETag was checked, or it is read back. */
export function landedProof(
  sink: Requests,
  key: string,
  versionId: string | null,
  sha256: string,
  sent: Sent,
): Promise<WriteProof> {
  if (sent.etagIsMd5 && sent.md5) return Promise.resolve("etag");
  return provePut(sink, sent, { etag: undefined, versionId: versionId ?? undefined }, sha256);
}

/**
 * A completed multipart upload's proof (proveCompleted), with the ETag it read where the answer had none; a wrong
 * object is deleted and the mismatch thrown.
 */
export async function proveMultipart(
  sink: Requests,
  c: { key: string; versionId: string | null; etag: string | null; sha256: string },
  parts: readonly { partNumber: number; etag: string }[],
  proofs: ReadonlyMap<number, WriteProof>,
): Promise<{ proof: WriteProof; head?: ObjectHead | undefined }> {
  const proven = parts.map((p) => ({ etag: p.etag, proof: proofs.get(p.partNumber) ?? "read-back" }));
  try {
    return await proveCompleted(sink, c, proven);
  } catch (err) {
    if (err instanceof WriteMismatch) return removeWrong(sink, c.key, c.versionId, err);
    throw err;
  }
}

/** The object this write stored, read back: its SHA-256 must be the source's. */
export async function proveByReading(
  sink: Requests,
  key: string,
  versionId: string | null,
  sha256: string,
): Promise<"read-back"> {
  const stored = await hashObject(sink, key, versionId);
  if (stored === sha256) return "read-back";
  throw new WriteMismatch(key, undefined, "SHA-256", sha256, `object read back ${stored}`);
}

/**
 * A completed multipart object: proven by its parts' checksums, by its ETag against the MD5 of the parts' MD5s
 * (an empty ETag in the answer, as Ceph RGW gives, is read from a HEAD of the version), or by reading it back.
 */
export async function proveCompleted(
  sink: Requests,
  c: { key: string; versionId: string | null; etag: string | null; sha256: string },
  parts: { etag: string; proof: WriteProof }[],
): Promise<{ proof: WriteProof; head?: ObjectHead | undefined }> {
  const proof = weakest(parts.map((p) => p.proof));
  if (proof === "checksum") return { proof };
  const want = proof === "etag" ? multipartEtag(parts.map((p) => p.etag)) : undefined;
  if (!want) return { proof: await proveByReading(sink, c.key, c.versionId, c.sha256) };
  const head = c.etag ? undefined : ((await sink.headObject(c.key, c.versionId)) ?? undefined);
  const etag = c.etag ?? head?.etag ?? null;
  if (sameEtag(etag, want)) return { proof: "etag", head };
  throw new WriteMismatch(c.key, undefined, "MD5 of the parts' MD5s", want, `ETag ${unquoteEtag(etag)}`);
}

/**
 * Remove the wrong object a write just stored (that exact version, where the bucket keeps versions), so that the
 * write can be sent again; then rethrow the mismatch. A version the bucket will not delete (Object Lock
 * retention, a legal hold) fails the recording permanently, naming it: it is never recorded as archived.
 */
export async function removeWrong(
  sink: Requests,
  key: string,
  versionId: string | null,
  mismatch: WriteMismatch,
): Promise<never> {
  const what = atVersion(key, versionId);
  try {
    await sink.s3(`DeleteObject ${what}`, () => sink.store.deleteObject(key, versionId));
  } catch (err) {
    const c = classify(err);
    throw new ArchiverError(
      "permanent",
      "wrong_bytes_kept",
      `${mismatch.message}; that object, ${what}, could not be deleted (${c.message}) — in an Object Lock bucket its retention or legal hold keeps it. It is not recorded as archived; remove it when the lock allows, and the next run stores the recording again`,
      { cause: mismatch },
    );
  }
  sink.logger.warn(
    { key, version_id: versionId, code: mismatch.code },
    `${mismatch.message}: the wrong object was deleted and the write is sent again`,
  );
  throw mismatch;
}
