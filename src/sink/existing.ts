/**
 * What is already stored under a key, and whether it is the recording we hold. Evidence is read from the bucket:
 * the object's `sha256` metadata (single PUTs), its sidecar's `archive.sha256` (every recording), its ETag against
 * the ETag our bytes give (the MD5 of a single PUT, or the multipart ETag of our stored parts), and as a last
 * resort the object itself, read back and hashed.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { classify } from "../errors.js";
import { sidecarKey } from "../keys.js";
import { sleep } from "../retry.js";
import { sameEtag } from "./multipart-etag.js";
import type { S3Sink } from "./s3.js";

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

/** Sidecars are a few KB; anything far larger under that name is not one. */
const MAX_JSON_BYTES = 1024 * 1024;

/** A JSON object stored in the bucket; null when absent or not a JSON object. */
export async function readJsonObject(sink: S3Sink, key: string): Promise<Record<string, unknown> | null> {
  try {
    const out = await sink.s3(`get ${key}`, () =>
      sink.client.send(new GetObjectCommand({ Bucket: sink.settings.bucket, Key: key })),
    );
    if ((out.ContentLength ?? 0) > MAX_JSON_BYTES) {
      (out.Body as Readable | undefined)?.destroy();
      return null;
    }
    const parsed = JSON.parse(await out.Body!.transformToString()) as unknown;
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch (err) {
    const c = classify(err);
    if (c.status === 404 || c.code === "NoSuchKey" || err instanceof SyntaxError) return null;
    throw c;
  }
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** The object under `key` with the archiver's evidence about it; null when there is none. */
export async function inspectKey(sink: S3Sink, key: string): Promise<ExistingObject | null> {
  const head = await sink.head(key);
  if (!head) return null;
  const doc = await readJsonObject(sink, sidecarKey(key));
  const archive = (doc?.archive ?? null) as Record<string, unknown> | null;
  // A sidecar speaks for this object only if it names this key and size.
  const own = archive !== null && archive.key === key && archive.bytes === head.size;
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

/** Read the stored object back and hash it: the evidence of last resort, for an object nothing describes. */
export async function hashStoredObject(
  sink: S3Sink,
  key: string,
): Promise<{ sha256: string; bytes: number }> {
  return sink.s3(`read back ${key}`, async () => {
    const out = await sink.client.send(new GetObjectCommand({ Bucket: sink.settings.bucket, Key: key }));
    const h = createHash("sha256");
    let bytes = 0;
    for await (const chunk of out.Body as Readable) {
      h.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: h.digest("hex"), bytes };
  });
}

/**
 * Settle whether the object under `key` holds our bytes, reading it back when nothing else can tell. With
 * `waitForSidecarMs`, an object without a sidecar is looked at again until one appears: another writer stores its
 * sidecar just after its object, and it names that writer's run (and the loser must not write a second one).
 */
export async function settleExisting(
  sink: S3Sink,
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
  const stored = await hashStoredObject(sink, key);
  existing = { ...existing, sha256: stored.sha256 };
  return { existing, verdict: compareWith(existing, ours) === "same" ? "same" : "different" };
}
