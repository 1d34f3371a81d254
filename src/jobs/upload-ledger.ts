/**
 * The multipart uploads a run leaves open in S3, as the state DB records them: swept at the start of a run (each
 * recording's best interrupted upload kept to be resumed, the rest aborted), claimed by the transfer that
 * continues one, tracked part by part while a transfer runs, and the kept ones no transfer took over aborted at
 * the end. A kill at any instant leaves every upload it opened either tracked here or found by the next sweep.
 */
import { warnOnce } from "../base/say-once.js";
import type { Logger } from "pino";
import { classify } from "../base/errors.js";
import { callIdOfKey } from "../base/keys.js";
import type { ResumableUpload, TransferInput } from "../s3/s3.js";
import type { StateDb } from "../state/db.js";

/** What the ledger asks of the store: its open multipart uploads, and their abort (true when gone; never throws). */
export interface MultipartUploads {
  listUploads(prefix: string): Promise<{ key: string; uploadId: string; initiated: Date | undefined }[]>;
  abortUpload(key: string, uploadId: string): Promise<boolean>;
}

/** The transfer hooks that record an upload's life in the state DB. */
export type UploadHooks = Pick<
  TransferInput,
  "onUploadStarted" | "onUploadEnded" | "onPartStored" | "onCompleting"
>;

/** Uploads under our prefix that no state DB tracks (a lost DB, another shard) are left this long before abort. */
export const UNTRACKED_UPLOAD_MAX_AGE_MS = 24 * 3600_000;

export class UploadLedger {
  /** Uploads the sweep kept for their recording's transfer to continue; each is claimed at most once. */
  private readonly resumable = new Set<string>();

  constructor(
    private readonly state: StateDb,
    private readonly store: MultipartUploads,
    private readonly runId: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Multipart uploads left by runs that were stopped or died (no other run can be using them: we hold the lock).
   * For each recording not archived yet, the one with the most recorded parts is kept for its transfer to
   * continue; every other tracked upload is aborted, and so are untracked ones under `prefix` for calls this state
   * DB knows, or older than a day. Returns how many were aborted.
   */
  async sweep(prefix: string): Promise<number> {
    const tracked = this.state.trackedUploads();
    this.keepResumable(tracked.map((u) => u.call_id));
    let aborted = 0;
    for (const u of tracked) if (!this.resumable.has(u.upload_id) && (await this.abortTracked(u))) aborted++;
    if (this.resumable.size > 0)
      this.logger.info({ uploads: this.resumable.size }, "interrupted multipart uploads kept to be resumed");
    aborted += await this.abortUntracked(prefix, new Set(tracked.map((u) => u.upload_id)));
    if (aborted > 0) this.logger.info({ aborted }, "aborted multipart uploads left by an interrupted run");
    return aborted;
  }

  /** The upload an interrupted run left for this call, if the sweep kept one; each is taken over at most once. */
  claim(callId: string): ResumableUpload | undefined {
    if (this.resumable.size === 0) return undefined;
    const up = this.state.uploadsFor(callId).find((u) => this.resumable.has(u.uploadId));
    if (up) this.resumable.delete(up.uploadId);
    return up;
  }

  /** Hooks for a transfer of `callId`'s recording to `key`: the upload and its parts are recorded as S3 confirms them. */
  track(callId: string, key: string): UploadHooks {
    const { state, runId } = this;
    return {
      onUploadStarted: (uploadId, fingerprint) =>
        state.trackUpload({ uploadId, key, callId, runId, fingerprint }),
      onUploadEnded: (uploadId) => state.untrackUpload(uploadId),
      onPartStored: (uploadId, part) => state.recordPart(uploadId, part),
      // A kill while completing must find every part recorded: the next run checks the bucket with them.
      onCompleting: () => state.flush(),
    };
  }

  /** After a run that went through all its work: abort the kept uploads that no transfer took over. */
  async abortUnclaimed(): Promise<number> {
    let aborted = 0;
    for (const u of this.state.trackedUploads())
      if (u.run_id !== this.runId && (await this.abortTracked(u))) aborted++;
    if (aborted > 0)
      this.logger.info({ aborted }, "aborted interrupted multipart uploads that this run had no work for");
    return aborted;
  }

  /** Keep each listed call's upload with the most recorded parts, when the call is not archived yet. */
  private keepResumable(callIds: string[]): void {
    for (const callId of new Set(callIds)) {
      const best = this.state.uploadsFor(callId)[0];
      if (best && best.parts.length > 0 && this.state.getCall(callId)?.status !== "archived")
        this.resumable.add(best.uploadId);
    }
  }

  /** Abort a tracked upload and forget it; false when S3 could not abort it (the next run tries again). */
  private async abortTracked(u: { key: string; upload_id: string }): Promise<boolean> {
    if (!(await this.store.abortUpload(u.key, u.upload_id))) return false;
    this.state.untrackUpload(u.upload_id);
    return true;
  }

  /** Open uploads under `prefix` that no row tracks: ours (a call this DB knows), or anyone's older than a day. */
  private async abortUntracked(prefix: string, trackedIds: Set<string>): Promise<number> {
    const cutoff = this.now() - UNTRACKED_UPLOAD_MAX_AGE_MS;
    let aborted = 0;
    for (const u of await this.openUploads(prefix)) {
      if (trackedIds.has(u.uploadId)) continue;
      // Ours although untracked: a run killed between S3 creating the upload and the state DB recording it. Only
      // this state DB lists this call (shards partition calls; the lock keeps other runs of this DB out).
      const callId = callIdOfKey(u.key);
      const ours = callId !== null && this.state.getCall(callId) !== undefined;
      const stale = u.initiated !== undefined && u.initiated.getTime() <= cutoff;
      if (!ours && !stale) continue;
      if (await this.store.abortUpload(u.key, u.uploadId)) aborted++;
    }
    return aborted;
  }

  /** The store's open uploads under `prefix`; none when it cannot list them (said once; a fatal error stops the run). */
  private async openUploads(prefix: string) {
    try {
      return await this.store.listUploads(prefix);
    } catch (err) {
      const c = classify(err);
      if (c.kind === "fatal") throw c;
      warnOnce(
        this.logger,
        "cannot-list-uploads",
        { code: c.code },
        "the S3 endpoint cannot list multipart uploads: untracked leftovers are not swept",
      );
      return [];
    }
  }
}
