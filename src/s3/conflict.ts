/**
 * A key that is already taken when we write it. Nothing is ever written over it: the object there is either the
 * recording we hold (adopted), another writer's that landed while we were writing (two hosts, or a shard set up
 * twice: a clear failure naming both), or an older archive of a source that has changed since (`SourceChanged`,
 * for the run to record and, if configured, archive under a versioned key).
 */
import { ArchiverError, classify } from "../base/errors.js";
import { sidecarKey } from "../base/keys.js";
import { sleep } from "../base/retry.js";
import { settleExisting, type ExistingObject, type OurBytes } from "./existing.js";
import type { Requests } from "./requests.js";
import type { TransferResult } from "./types.js";

/** The source's bytes differ from the recording archived under its key. The archived object is left untouched. */
export class SourceChanged extends ArchiverError {
  constructor(
    readonly existing: ExistingObject,
    readonly source: OurBytes,
  ) {
    super(
      "permanent",
      "source_changed",
      `the source of ${existing.key} changed since it was archived: archived SHA-256 ${existing.sha256 ?? "unknown"} (${existing.size} bytes), source now SHA-256 ${source.sha256} (${source.bytes} bytes); the archived object is left as it is`,
    );
  }
}

/** How long a writer that lost a race waits for the winner's sidecar (stored just after the winner's object). */
const WINNER_SIDECAR_WAIT_MS = 10_000;
/**
 * Last-Modified and the Date header our offset is learned from both have one-second resolution (truncated): an
 * object written after this transfer began is never older than its start less this. One written within a second
 * or two before it may still count as another writer's, which fails the recording for an operator to look at.
 */
const CLOCK_SLACK_MS = 1_000;

export interface Writer {
  /** This run, named in a two-writers failure. */
  runId?: string | undefined;
  /** When this transfer began, in the S3 server's time (ms). */
  startedAt: number;
  /** The key was seen free when this transfer began: whatever is there now came from another writer. */
  concurrent?: boolean;
}

/** The object already under `key`, adopted when it holds our bytes; otherwise thrown as what it is. */
export async function resolveTakenKey(
  sink: Requests,
  key: string,
  ours: OurBytes,
  w: Writer,
  signal?: AbortSignal,
): Promise<TransferResult> {
  const found = await settleExisting(sink, key, ours, { waitForSidecarMs: WINNER_SIDECAR_WAIT_MS, signal });
  if (!found)
    throw new ArchiverError("retryable", "key_vanished", `${key} was taken and then deleted: trying again`);
  const { existing, verdict, proof } = found;
  if (verdict === "same")
    return {
      sha256: ours.sha256,
      bytes: ours.bytes,
      etag: existing.etag,
      versionId: existing.versionId,
      multipart: /-\d+"?$/.test(existing.etag ?? ""),
      adopted: true,
      proof,
    };
  const concurrent =
    w.concurrent ??
    (existing.lastModified !== undefined && existing.lastModified.getTime() >= w.startedAt - CLOCK_SLACK_MS);
  if (!concurrent) throw new SourceChanged(existing, ours);
  throw twoWriters(existing, ours, w.runId);
}

/** Another writer's multipart upload of the same key. */
export interface RivalUpload {
  uploadId: string;
  initiated: Date | undefined;
}

/**
 * Before completing where the server may ignore If-None-Match on completion (Ceph RGW 16.2): is another writer's
 * upload of this key in progress that began before ours (by the server's clock; the upload id breaks a tie)?
 * Then it goes first. Every writer lists the uploads after creating its own, so of two that overlap at least one
 * sees the other, and both order them alike.
 */
export async function rivalFirst(
  sink: Requests,
  key: string,
  uploadId: string,
): Promise<RivalUpload | undefined> {
  let uploads: Awaited<ReturnType<Requests["listUploads"]>>;
  try {
    uploads = (await sink.listUploads(key)).filter((u) => u.key === key);
  } catch (err) {
    if (classify(err).kind === "fatal") throw err;
    return undefined; // the endpoint cannot list uploads: the check of the key and the condition remain
  }
  const mine = uploads.find((u) => u.uploadId === uploadId)?.initiated?.getTime();
  if (mine === undefined) return undefined;
  const before = (u: (typeof uploads)[number]) => {
    const at = u.initiated?.getTime();
    return at !== undefined && (at < mine || (at === mine && u.uploadId < uploadId));
  };
  return uploads.find((u) => u.uploadId !== uploadId && before(u));
}

/** How long a writer that let a rival go first waits for the rival's object. */
const RIVAL_WAIT_MS = 60_000;

/**
 * Our upload was discarded for a rival that began first: wait (bounded) for the rival's object and resolve it as a
 * taken key. When it does not come, fail retryably: the next run adopts what the rival stored, or writes.
 */
export async function awaitRival(
  sink: Requests,
  key: string,
  ours: OurBytes,
  w: Writer,
  rival: RivalUpload,
  signal?: AbortSignal,
): Promise<TransferResult> {
  const deadline = Date.now() + RIVAL_WAIT_MS;
  for (;;) {
    if (await sink.head(key)) return resolveTakenKey(sink, key, ours, { ...w, concurrent: true }, signal);
    const pending = (await sink.listUploads(key)).some((u) => u.uploadId === rival.uploadId);
    if (!pending || Date.now() >= deadline || signal?.aborted) break;
    await sleep(1_000, signal);
  }
  if (await sink.head(key)) return resolveTakenKey(sink, key, ours, { ...w, concurrent: true }, signal);
  throw new ArchiverError(
    "retryable",
    "rival_writer",
    `another writer's upload of ${key} (upload ${rival.uploadId}, begun ${rival.initiated?.toISOString() ?? "at an unknown time"}) began before this run's (${w.runId ?? "this run"}) and has not stored the object; this run's upload was discarded so that there is one version, and the next run adopts what the other writer stores (or stores it)`,
  );
}

function twoWriters(existing: ExistingObject, ours: OurBytes, runId: string | undefined): ArchiverError {
  const theirs = existing.sidecar?.runId
    ? `run ${existing.sidecar.runId}`
    : "another writer (no sidecar names its run)";
  return new ArchiverError(
    "permanent",
    "two_writers",
    `two writers on ${existing.key}: ${theirs} stored SHA-256 ${existing.sha256 ?? "unknown"} (${existing.size} bytes, sidecar ${sidecarKey(existing.key)}) while run ${runId ?? "(this one)"} was storing SHA-256 ${ours.sha256} (${ours.bytes} bytes) under the same key. The stored object is kept and nothing was written over it; this run's upload was discarded. Check that no two hosts or shards archive the same calls.`,
  );
}
