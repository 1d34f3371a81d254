/**
 * A source that changed after its recording was archived (re-encoded or replaced upstream). The archived object
 * stays exactly as it is; the change is recorded with both SHA-256s (state: `source_changes`; audit trail: the
 * run's details), reported in the summary, `status` and metrics, and — with ARCHIVER_ON_SOURCE_CHANGE=archive —
 * the new bytes are archived too, under a versioned key (`{call_id}.v2.m4a`, then .v3, …).
 */
import type { Logger } from "pino";
import { ArchiverError } from "../base/errors.js";
import { versionedKey } from "../base/keys.js";
import { inspectKey, sameBy } from "../s3/existing.js";
import type { SourceChanged } from "../s3/conflict.js";
import type { S3Sink, TransferResult } from "../s3/s3.js";
import type { StateDb } from "../state/db.js";
import { recordSourceChange } from "../state/source-changes.js";

export type OnSourceChange = "report" | "archive";

/** Versions of one recording beyond which a source that keeps changing is a failure, not more copies. */
const MAX_VERSION = 20;

/** An entry of the run's audit details. */
export interface SourceChangeEvent {
  call_id: string;
  key: string;
  archived_sha256: string;
  source_sha256: string;
  new_key: string | null;
}

export interface SourceChangeContext {
  sink: S3Sink;
  state: StateDb;
  logger: Logger;
  runId: string;
  callId: string;
  mode: OnSourceChange;
  /** Archive the source's current bytes under another key (the transfer and its sidecar). */
  archiveAs: (key: string, supersedes: { key: string; sha256: string }) => Promise<TransferResult>;
}

/**
 * Record the change and, when configured, archive the new bytes. Returns the event (for the audit trail) and the
 * archived original, which is what the call's state goes on recording.
 */
export async function handleSourceChanged(
  ctx: SourceChangeContext,
  change: SourceChanged,
): Promise<{ event: SourceChangeEvent; original: TransferResult }> {
  const { existing, source } = change;
  const archivedSha = existing.sha256 ?? "";
  const stored = ctx.mode === "archive" ? await archiveNewVersion(ctx, change) : undefined;
  recordSourceChange(ctx.state, {
    call_id: ctx.callId,
    run_id: ctx.runId,
    key: existing.key,
    archived_sha256: archivedSha,
    archived_bytes: existing.size,
    source_sha256: source.sha256,
    source_bytes: source.bytes,
    new_key: stored?.key ?? null,
    new_etag: stored?.result.etag ?? null,
    new_version_id: stored?.result.versionId ?? null,
  });
  ctx.logger.warn(
    {
      call_id: ctx.callId,
      key: existing.key,
      archived_sha256: archivedSha,
      source_sha256: source.sha256,
      new_key: stored?.key,
    },
    stored
      ? `the source changed since it was archived: the original is kept, the new bytes are archived under ${stored.key}`
      : "the source changed since it was archived: the original is kept; the new bytes are only reported (ARCHIVER_ON_SOURCE_CHANGE=report)",
  );
  const event = {
    call_id: ctx.callId,
    key: existing.key,
    archived_sha256: archivedSha,
    source_sha256: source.sha256,
    new_key: stored?.key ?? null,
  };
  const original = {
    sha256: archivedSha,
    bytes: existing.size,
    etag: existing.etag,
    versionId: existing.versionId,
  };
  return { event, original: { ...original, multipart: false, proof: null } };
}

/** The first versioned key that is free (archived there now) or already holds these bytes (an earlier run's). */
export async function archiveNewVersion(
  ctx: SourceChangeContext,
  change: SourceChanged,
): Promise<{ key: string; result: TransferResult }> {
  const { existing, source } = change;
  for (let n = 2; n <= MAX_VERSION; n++) {
    const key = versionedKey(existing.key, n);
    const there = await inspectKey(ctx.sink, key);
    const proof = there && sameBy(there, source);
    if (there && proof)
      return {
        key,
        result: {
          ...source,
          etag: there.etag,
          versionId: there.versionId,
          multipart: false,
          adopted: true,
          proof,
        },
      };
    if (there) continue; // another earlier version of this source
    return { key, result: await ctx.archiveAs(key, { key: existing.key, sha256: existing.sha256 ?? "" }) };
  }
  throw new ArchiverError(
    "permanent",
    "too_many_versions",
    `the source of ${existing.key} changed again, and ${MAX_VERSION - 1} versions of it are archived already`,
  );
}
