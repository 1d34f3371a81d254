/** How a request body is sent and checked, by the checksum setting (ARCHIVER_CHECKSUM_ALGORITHM). */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import type { BodyCheck, ServerChecksum } from "./object-store.js";
import type { SealedBody } from "./spool.js";
import type { SinkSettings } from "./types.js";

/** SDK-computed checksums (CRC32C, SHA-256) need the body as one Buffer; MD5 and none stream it. */
export const sdkChecksum = (alg: SinkSettings["checksum"]): alg is ServerChecksum =>
  alg === "CRC32C" || alg === "SHA256";

/**
 * A request body, rebuilt for every attempt: streamed from the chunks as they arrived (never concatenated) or
 * from the spool file (the SDK signs a stream UNSIGNED-PAYLOAD, hashing nothing). With CRC32C/SHA-256 checksums
 * the SDK computes them itself over a Buffer.
 */
export function requestBody(alg: SinkSettings["checksum"], body: SealedBody): Buffer | Readable {
  return sdkChecksum(alg) ? body.buffer() : body.stream();
}

/** Checksum parameters for one request body. MD5 is computed here; CRC32C/SHA-256 by the SDK. */
export function bodyChecksum(alg: SinkSettings["checksum"], body: Buffer | SealedBody): BodyCheck {
  if (alg === "MD5")
    return {
      contentMD5: Buffer.isBuffer(body) ? createHash("md5").update(body).digest("base64") : body.md5Base64!,
    };
  if (sdkChecksum(alg)) return { checksumAlgorithm: alg };
  return {};
}

/**
 * A single PUT's SHA-256, known before it is sent, as the documented x-amz-checksum-sha256 (`ChecksumSHA256`):
 * S3 checks the body against it and keeps it with the object. Not with an SDK-computed checksum (one checksum
 * per request). s3rver and Ceph RGW 16.2 accept it without checking it; there the write is proven by its ETag
 * (write-proof.ts).
 */
export function knownSha256(alg: SinkSettings["checksum"], sha256Hex: string): BodyCheck {
  return sdkChecksum(alg) ? {} : { checksumSHA256: Buffer.from(sha256Hex, "hex").toString("base64") };
}

export function declaredChecksum(alg: SinkSettings["checksum"]): { checksumAlgorithm?: ServerChecksum } {
  return sdkChecksum(alg) ? { checksumAlgorithm: alg } : {};
}
