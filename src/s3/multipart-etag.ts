/**
 * The ETag S3 gives an object completed from parts: the MD5 of the parts' MD5s (each part's ETag as binary, in
 * part order), hex, then "-" and the number of parts. Computed from the ETags S3 confirmed for each part, it says
 * whether an object in the bucket is the one these parts make — without reading it back. AWS, Ceph RGW and MinIO
 * compute it this way (not for SSE-C or SSE-KMS objects on AWS, whose part ETags are not MD5s).
 */
import { createHash } from "node:crypto";

/** An ETag without the quotes servers put around it; "" when there is none (unknown). */
export const unquoteEtag = (etag: string | null | undefined): string => (etag ?? "").replace(/^"|"$/g, "");

/** The multipart ETag (unquoted) of parts with these ETags, in part order; undefined when one is not an MD5. */
export function multipartEtag(partEtags: readonly string[]): string | undefined {
  if (partEtags.length === 0) return undefined;
  const md5 = createHash("md5");
  for (const e of partEtags) {
    const hex = unquoteEtag(e);
    if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
    md5.update(Buffer.from(hex, "hex"));
  }
  return `${md5.digest("hex")}-${partEtags.length}`;
}

/** Do two ETags name the same content? Quotes and case aside; never true for a missing one. */
export function sameEtag(a: string | null | undefined, b: string | null | undefined): boolean {
  const x = unquoteEtag(a).toLowerCase();
  return x !== "" && x === unquoteEtag(b).toLowerCase();
}
