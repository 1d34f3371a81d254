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
  /** Dry run only: their bytes, as the API gives their sizes (file_size_bytes). */
  would_archive_bytes: number;
  /** Dry run only: those of them whose size the API does not give (not in would_archive_bytes). */
  would_archive_unsized: number;
  /** Calls that failed permanently in an earlier run and were left alone (see --retry-failed). */
  previously_failed: number;
  /**
   * Calls failed permanently in the state DB at the end of the run (this run's and earlier runs'): they stay
   * failed, and counted here, until a run with --retry-failed archives them (`status` lists them).
   */
  failed_permanently: number;
  /**
   * Calls from earlier runs still waiting (not ready, pending, failed retryably) that this run's listing did not
   * include and that it looked at again: with `listed`, what the outcomes (archived … failed) add up to.
   */
  from_earlier_runs: number;
  /** Calls listed that belong to other shards. */
  other_shards: number;
  /** Recordings whose source changed after they were archived (the originals are kept: source-changed.ts). */
  source_changed: number;
  /** Envoy API requests answered 429. */
  rate_limited: number;
  /** Retried operations (API and S3). */
  retries: number;
  /** Of them, S3 requests (the rest are the Envoy API's and media downloads'). */
  s3_retries: number;
}

/**
 * An incremental run's look at the days before its window (jobs/completeness.ts): each day's count at the source
 * beside the calls the state knows of that day.
 */
export interface CompletenessFigures {
  /** Days whose source count was asked for (one request each); 0 when the check is off or was not made. */
  days_checked: number;
  /** Days whose source count differed from the calls the state knew: each was listed in full. */
  gap_days: number;
  /** Of those with calls the state did not know, days whose every call it knows after the run. */
  gaps_closed: number;
  /** Calls the source counts on those days that the archive does not hold (not archived, nor without a recording). */
  missing_calls: number;
  /** The oldest checked day (UTC) with such calls; null when none. */
  oldest_gap_day: string | null;
  /** Days on which the source now counts fewer calls than the state knows (deleted upstream; nothing is deleted). */
  fewer_at_source_days: string[];
  /** Why the check could not be made (the run went on without it). */
  error?: string;
}

/** The counts of a finished run, and how it ended. */
export interface RunReport extends TallyCounts {
  outcome: RunOutcome;
  completeness?: CompletenessFigures;
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

/** Outcomes a listed call gets from what the state DB knew, without work this run. */
type Known = "already_archived" | "no_recording";
/** Calls this run leaves alone, counted apart from the recording outcomes. */
type Skipped = "previously_failed" | "other_shards";

export class Tally {
  readonly counts: TallyCounts = {
    ...NO_COUNTS,
    would_archive: 0,
    would_archive_bytes: 0,
    would_archive_unsized: 0,
    previously_failed: 0,
    failed_permanently: 0,
    from_earlier_runs: 0,
    other_shards: 0,
    source_changed: 0,
    rate_limited: 0,
    retries: 0,
    s3_retries: 0,
  };
  readonly live: LiveRun;
  /**
   * The recordings this run archived or adopted, by how their stored bytes were proven (s3/write-proof.ts): what
   * the server gives, learned as the run goes; the summary shows it.
   */
  readonly proofs: Record<string, number> = {};

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

  /** A recording's stored bytes were proven this way ("checksum", "etag", "read-back"). */
  proven(proof: string): void {
    this.proofs[proof] = (this.proofs[proof] ?? 0) + 1;
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

  /** A call from an earlier run, still waiting, that this run looks at again (not in its listing). */
  fromEarlierRun(): void {
    this.counts.from_earlier_runs++;
  }

  /** A listed call whose id is not a call id: listed and failed, never worked on. */
  listedInvalid(): void {
    this.counts.listed++;
    this.counts.failed++;
    this.events.recordingFinished?.("failed", 0, 0);
  }

  /**
   * A listed call already settled in an earlier run: counted, and its event fired like any other outcome (the
   * metrics count what the summary counts), with no bytes and no transfer time.
   */
  known(outcome: Known): void {
    this.counts[outcome]++;
    this.events.recordingFinished?.(outcome, 0, 0);
  }

  /** Dry run: a recording a real run would archive, of this size (null: the API does not say). */
  wouldArchive(bytes: number | null): void {
    this.counts.would_archive++;
    if (bytes === null) this.counts.would_archive_unsized++;
    else this.counts.would_archive_bytes += bytes;
  }

  /** Permanent failures in the state DB at the end of the run. */
  failedPermanently(n: number): void {
    this.counts.failed_permanently = n;
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
    if (source === "s3") this.counts.s3_retries++;
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

  /** More calls to list (a day listed in full to close a gap), as Envoy counts them. */
  moreCalls(n: number | null): void {
    if (n !== null) this.live.totalCalls = (this.live.totalCalls ?? 0) + n;
  }
}
