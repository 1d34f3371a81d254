/**
 * S3 is the source of truth: a recording already stored under its key (an earlier run whose state was lost,
 * another shard layout) is adopted, never written again — in a versioned bucket a second write would be a second
 * version, kept for the whole retention period. The source is read and hashed (a download, not an upload) and
 * compared with the SHA-256 the object carries: its `sha256` metadata (single PUTs), else its sidecar's when the
 * sidecar describes this very object (multipart uploads), else the object's own bytes read back.
 */
import { sidecarKey } from "../keys.js";
import { hashObject, readJson } from "../sink/read-back.js";
import type { S3Sink, TransferInput, TransferResult } from "../sink/s3.js";

const unquote = (etag: unknown) => (typeof etag === "string" ? etag.replace(/^"|"$/g, "") : undefined);

/** The SHA-256 the sidecar records for exactly this object (same key, size, and ETag or version); else undefined. */
async function sidecarSha256(
  sink: S3Sink,
  key: string,
  object: { size: number; etag: string | null; versionId: string | null },
): Promise<string | undefined> {
  const archive = (await readJson(sink, sidecarKey(key)))?.archive as Record<string, unknown> | undefined;
  if (!archive || archive.key !== key || archive.bytes !== object.size) return undefined;
  const same =
    (object.etag !== null && unquote(archive.etag) === unquote(object.etag)) ||
    (object.versionId !== null && archive.version_id === object.versionId);
  const sha = archive.sha256;
  return same && typeof sha === "string" && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined;
}

/** The stored object, when it holds exactly the source's bytes; undefined when the key is free or holds other bytes. */
export async function adoptStored(
  sink: S3Sink,
  key: string,
  open: TransferInput["open"],
  expectedBytes: number | null,
  onBytes: (n: number) => void,
): Promise<TransferResult | undefined> {
  const existing = await sink.head(key);
  if (!existing || (expectedBytes !== null && existing.size !== expectedBytes)) return undefined;
  const claimed = existing.sha256 ?? (await sidecarSha256(sink, key, existing));
  const source = await sink.hashSource(open, expectedBytes, key);
  onBytes(source.bytes);
  if (source.bytes !== existing.size) return undefined;
  const stored = claimed ?? (await hashObject(sink, key, existing.versionId));
  if (stored !== source.sha256) return undefined;
  return { ...source, etag: existing.etag, versionId: existing.versionId, multipart: false, adopted: true };
}
