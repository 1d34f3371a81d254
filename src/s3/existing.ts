/**
 * What is already stored under a key, and whether it is the recording we hold. Evidence is read from the bucket:
 * the object's `sha256` metadata (single PUTs), its sidecar's `archive.sha256` (every recording), its ETag against
 * the ETag our bytes give (the MD5 of a single PUT, or the multipart ETag of our stored parts), and as a last
 * resort the object itself, read back and hashed.
 */
import { ArchiverError } from "../base/errors.js";
import { sidecarKey } from "../base/keys.js";
import { sleep } from "../base/retry.js";
import { sameEtag } from "./multipart-etag.js";
import { PROOFS } from "./write-proof.js";
import type { WriteProof } from "./types.js";
import { hashObject, readJson } from "./read-back.js";
import { atVersion, type Requests } from "./requests.js";

export interface ExistingObject {
  key: string;
  size: number;
  etag: string | null;
  versionId: string | null;
  lastModified: Date | undefined;
  /** SHA-256 of the stored bytes as the archiver recorded it: object metadata, else the sidecar. */
  sha256: string | undefined;
  /**
   * How the sidecar says the object's bytes were proven when they were stored (write-proof.ts); undefined for a
   * sidecar that says nothing (written before proofs) or is not this object's.
   */
  provenBy?: WriteProof | undefined;
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
  const provenBy = own ? PROOFS.find((p) => p === archive.write_proof) : undefined;
  return {
    key,
    size: head.size,
    etag: head.etag,
    versionId: head.versionId,
    lastModified: head.lastModified,
    sha256: head.sha256 ?? sidecarSha,
    provenBy: head.sha256 === undefined || head.sha256 === sidecarSha ? provenBy : undefined,
    sidecar: own ? { runId: str(archive.run_id), archivedAt: str(archive.archived_at) } : undefined,
  };
}

/**
 * Same bytes as ours, different ones, or nothing in the bucket proves it. A recorded SHA-256 (metadata, sidecar)
 * is the archiver's claim about the bytes it sent, not what was stored (issue 23: a bit flipped on the way is
 * stored under the claim): "same" needs the object's ETag to be the one our bytes give, or a sidecar that says
 * the write was proven (written by a release that proves its writes, after the proof). A claim without either
 * ("unknown") is settled by reading the object back.
 */
export function compareWith(existing: ExistingObject, ours: OurBytes): "same" | "different" | "unknown" {
  return sameBy(existing, ours) ? "same" : differs(existing, ours) ? "different" : "unknown";
}

const differs = (e: ExistingObject, ours: OurBytes) =>
  e.size !== ours.bytes || (e.sha256 !== undefined && e.sha256 !== ours.sha256);

/** How an existing object is proven to hold our bytes without reading it back; undefined when it is not. */
export function sameBy(existing: ExistingObject, ours: OurBytes): WriteProof | undefined {
  if (differs(existing, ours)) return undefined;
  if (ours.etag && sameEtag(existing.etag, ours.etag)) return "etag";
  return existing.sha256 === ours.sha256 ? existing.provenBy : undefined;
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
): Promise<{ existing: ExistingObject; verdict: "same" | "different"; proof: WriteProof } | null> {
  const deadline = Date.now() + (opts.waitForSidecarMs ?? 0);
  let existing = await inspectKey(sink, key);
  const waiting = (e: ExistingObject) => !e.sidecar;
  while (existing && waiting(existing) && Date.now() < deadline && !opts.signal?.aborted) {
    await sleep(250, opts.signal);
    existing = await inspectKey(sink, key);
  }
  if (!existing) return null;
  const proof = sameBy(existing, ours);
  if (proof) return { existing, verdict: "same", proof };
  if (differs(existing, ours)) return { existing, verdict: "different", proof: "read-back" };
  return { ...(await readBack(sink, existing, ours)), proof: "read-back" };
}

/** The object read back: its SHA-256 (what it holds, not what was claimed) against ours. */
export async function readBack(
  sink: Requests,
  existing: ExistingObject,
  ours: OurBytes,
): Promise<{ existing: ExistingObject; verdict: "same" | "different" }> {
  const read = { ...existing, sha256: await hashObject(sink, existing.key, existing.versionId) };
  const same = read.size === ours.bytes && read.sha256 === ours.sha256;
  if (!same && existing.sha256 === ours.sha256) throw corruptObject(read, ours.sha256);
  return { existing: read, verdict: same ? "same" : "different" };
}

/**
 * An object archived as these bytes (its metadata or sidecar says the source's SHA-256) whose bytes are others: a
 * write corrupted on its way by a release that did not prove its writes, or rot since. Neither adopted nor
 * written over.
 */
function corruptObject(read: ExistingObject, claimed: string): ArchiverError {
  return new ArchiverError(
    "permanent",
    "stored_corrupt",
    `${atVersion(read.key, read.versionId)} was archived as SHA-256 ${claimed} (the source's) but its bytes, read back, hash to ${read.sha256 ?? "?"}: it was corrupted on its way to S3 or since. It is not adopted and not written over; delete that object (version) and the next run stores the recording again`,
  );
}
