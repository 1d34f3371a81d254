/**
 * The run's counts, kept in one place: what the run summary, the progress line and the metrics show. A count
 * changes here, and the observer event that goes with it fires here too, so the three never disagree.
 */

export type RecordingOutcome = "archived" | "already_archived" | "not_ready" | "no_recording" | "failed";
export type RetrySource = "api" | "s3";
/** "budget": a run budget (--max-duration, --max-bytes) ended the run before its work was done. */
export type RunOutcome = "ok" | "failures" | "fatal" | "interrupted" | "budget";

/** The counts of a command as the audit trail records them (the state's RunCounts has the same fields). */
const ZERO = {
  listed: 0,
  archived: 0,
  already_archived: 0,
  not_ready: 0,
  no_recording: 0,
  failed: 0,
  bytes: 0,
};

export type RecordingCounts = typeof ZERO;

export const NO_COUNTS: Readonly<RecordingCounts> = Object.freeze(ZERO);

/** Everything a run counts (the run summary shows each field). */
export interface TallyCounts extends RecordingCounts {
  /** Dry run only: recordings that a real run would download. */
  would_archive: number;
  /** Calls that failed permanently in an earlier run and were left alone (see --retry-failed). */
  previously_failed: number;
  /** Calls listed that belong to other shards. */
  other_shards: number;
  /** Recordings whose source changed after they were archived (the originals are kept: source-changed.ts). */
  source_changed: number;
  /** Envoy API requests answered 429. */
  rate_limited: number;
  /** Retried operations (API and S3). */
  retries: number;
}

/** The counts of a finished run, and how it ended. */
export interface RunReport extends TallyCounts {
  outcome: RunOutcome;
}

/** Live view of a run; the tally updates it, observers read it. */
export interface LiveRun {
  /** The counts so far (the run summary shows them at the end). */
  readonly summary: Readonly<TallyCounts>;
  /** Bytes received from media URLs so far (re-downloads after faults included). */
  receivedBytes: number;
  /** Calls in the window as Envoy counts them (from the first list page), when known. */
  totalCalls: number | null;
  /** Transfers in flight now. */
  inflight: number;
  startedAt: number;
}

/** The observer events that go with a count (observer.ts's RunObserver has these among others). */
export interface TallyEvents {
  recordingFinished?(outcome: RecordingOutcome, bytes: number, seconds: number): void;
  /** A recording failed: its error code (lock_not_applied, size_mismatch, an S3 error name, ...) and kind. */
  recordingFailed?(code: string, kind: "permanent" | "retryable"): void;
  retried?(source: RetrySource): void;
  rateLimited?(): void;
  transferStarted?(): void;
  transferEnded?(): void;
  /** A recording's source changed after it was archived (source-changed.ts). */
  sourceChanged?(): void;
}

/** Outcomes a listed call gets from what the state DB knew, without work this run (no event: nothing was done). */
type Known = "already_archived" | "no_recording";
/** Calls this run leaves alone, counted apart from the recording outcomes. */
type Skipped = "would_archive" | "previously_failed" | "other_shards";

export class Tally {
  readonly counts: TallyCounts = {
    ...NO_COUNTS,
    would_archive: 0,
    previously_failed: 0,
    other_shards: 0,
    source_changed: 0,
    rate_limited: 0,
    retries: 0,
  };
  readonly live: LiveRun;

  constructor(
    private readonly events: TallyEvents = {},
    startedAt = Date.now(),
  ) {
    this.live = { summary: this.counts, receivedBytes: 0, totalCalls: null, inflight: 0, startedAt };
  }

  /** A recording this run worked on reached an outcome; `bytes` (stored) count for "archived" only. */
  recordingFinished(outcome: RecordingOutcome, bytes = 0, seconds = 0): void {
    this.counts[outcome]++;
    if (outcome === "archived") this.counts.bytes += bytes;
    this.events.recordingFinished?.(outcome, bytes, seconds);
  }

  /** A recording that failed, counted with its error code and kind. */
  failed(code: string, kind: "permanent" | "retryable"): void {
    this.recordingFinished("failed");
    this.events.recordingFailed?.(code, kind);
  }

  /** A call of this run's listing (duplicates and other shards are not). */
  listed(): void {
    this.counts.listed++;
  }

  /** A listed call whose id is not a call id: listed and failed, never worked on. */
  listedInvalid(): void {
    this.counts.listed++;
    this.counts.failed++;
  }

  /** A listed call already settled in an earlier run. */
  known(outcome: Known): void {
    this.counts[outcome]++;
  }

  skipped(reason: Skipped): void {
    this.counts[reason]++;
  }

  sourceChanged(): void {
    this.counts.source_changed++;
    this.events.sourceChanged?.();
  }

  retried(source: RetrySource): void {
    this.counts.retries++;
    this.events.retried?.(source);
  }

  rateLimited(): void {
    this.counts.rate_limited++;
    this.events.rateLimited?.();
  }

  transferStarted(): void {
    this.live.inflight++;
    this.events.transferStarted?.();
  }

  transferEnded(): void {
    this.live.inflight--;
    this.events.transferEnded?.();
  }

  /** Bytes received from a media URL. */
  received(n: number): void {
    this.live.receivedBytes += n;
  }

  /** Calls in the window as Envoy counts them. */
  totalCalls(n: number | null): void {
    this.live.totalCalls = n;
  }
}
