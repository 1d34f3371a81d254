/**
 * What is already stored under a key, and whether it is the recording we hold. Evidence is read from the bucket:
 * the object's `sha256` metadata (single PUTs), its sidecar's `archive.sha256` (every recording), its ETag against
 * the ETag our bytes give (the MD5 of a single PUT, or the multipart ETag of our stored parts), and as a last
 * resort the object itself, read back and hashed.
 */
import { sidecarKey } from "../base/keys.js";
import { sleep } from "../base/retry.js";
import { sameEtag } from "./multipart-etag.js";
import { hashObject, readJson } from "./read-back.js";
import type { Requests } from "./requests.js";

export interface ExistingObject {
  key: string;
  size: number;
  etag: string | null;
  versionId: string | null;
  lastModified: Date | undefined;
  /** SHA-256 of the stored bytes as the archiver recorded it: object metadata, else the sidecar. */
  sha256: string | undefined;
  /** The sidecar's account of the object, when it has one. */
  sidecar: { runId: string | undefined; archivedAt: string | undefined } | undefined;
}

/** What we hold: its SHA-256 and size, and the ETag S3 gives these bytes when we know it. */
export interface OurBytes {
  sha256: string;
  bytes: number;
  etag?: string | undefined;
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** The object under `key` with the archiver's evidence about it; null when there is none. */
export async function inspectKey(
  sink: Requests,
  key: string,
  /** "when-needed": the sidecar is read only for an object without `sha256` metadata (a multipart upload). */
  read: { sidecar: "always" | "when-needed" } = { sidecar: "always" },
): Promise<ExistingObject | null> {
  const head = await sink.head(key);
  if (!head) return null;
  const skip = read.sidecar === "when-needed" && head.sha256 !== undefined;
  const doc = skip ? null : await readJson(sink, sidecarKey(key));
  const archive = (doc?.archive ?? null) as Record<string, unknown> | null;
  // A sidecar speaks for this object only if it names this key, size, and ETag or version (bytes put under the
  // key by someone else keep the old sidecar).
  const own =
    archive !== null &&
    archive.key === key &&
    archive.bytes === head.size &&
    ((head.etag !== null && sameEtag(str(archive.etag), head.etag)) ||
      (head.versionId !== null && archive.version_id === head.versionId));
  const sidecarSha = own ? str(archive.sha256) : undefined;
  return {
    key,
    size: head.size,
    etag: head.etag,
    versionId: head.versionId,
    lastModified: head.lastModified,
    sha256: head.sha256 ?? sidecarSha,
    sidecar: own ? { runId: str(archive.run_id), archivedAt: str(archive.archived_at) } : undefined,
  };
}

/** Same bytes as ours, different ones, or nothing recorded to tell (no SHA-256 and no ETag that settles it). */
export function compareWith(existing: ExistingObject, ours: OurBytes): "same" | "different" | "unknown" {
  if (existing.size !== ours.bytes) return "different";
  if (existing.sha256) return existing.sha256 === ours.sha256 ? "same" : "different";
  if (ours.etag && sameEtag(existing.etag, ours.etag)) return "same";
  return "unknown";
}

/**
 * Settle whether the object under `key` holds our bytes, reading it back when nothing else can tell. With
 * `waitForSidecarMs`, an object without a sidecar is looked at again until one appears: another writer stores its
 * sidecar just after its object, and it names that writer's run (and the loser must not write a second one).
 */
export async function settleExisting(
  sink: Requests,
  key: string,
  ours: OurBytes,
  opts: { waitForSidecarMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<{ existing: ExistingObject; verdict: "same" | "different" } | null> {
  const deadline = Date.now() + (opts.waitForSidecarMs ?? 0);
  let existing = await inspectKey(sink, key);
  const waiting = (e: ExistingObject) => !e.sidecar;
  while (existing && waiting(existing) && Date.now() < deadline && !opts.signal?.aborted) {
    await sleep(250, opts.signal);
    existing = await inspectKey(sink, key);
  }
  if (!existing) return null;
  const verdict = compareWith(existing, ours);
  if (verdict !== "unknown") return { existing, verdict };
  existing = { ...existing, sha256: await hashObject(sink, key, existing.versionId) };
  return { existing, verdict: compareWith(existing, ours) === "same" ? "same" : "different" };
}
