/** What a run tells the outside while it works: progress lines and metrics both listen here. */
import type { RunSummary } from "../jobs/run.js";

export type RecordingOutcome = "archived" | "already_archived" | "not_ready" | "no_recording" | "failed";

/** Live view of a run; the run mutates it, observers read it. */
export interface LiveRun {
  readonly summary: Readonly<RunSummary>;
  /** Bytes received from media URLs so far (re-downloads after faults included). */
  receivedBytes: number;
  /** Calls in the window as Envoy counts them (from the first list page), when known. */
  totalCalls: number | null;
  /** Transfers in flight now. */
  inflight: number;
  startedAt: number;
}

export interface RunObserver {
  runStarted?(live: LiveRun): void;
  recordingFinished?(outcome: RecordingOutcome, bytes: number, seconds: number): void;
  apiResponse?(status: number): void;
  retried?(source: "api" | "s3"): void;
  rateLimited?(): void;
  transferStarted?(): void;
  transferEnded?(): void;
  /** A recording's source changed after it was archived (source-changed.ts). */
  sourceChanged?(): void;
  runFinished?(summary: Readonly<RunSummary>): void;
}

/** Fan one set of events out to several observers. */
export function combineObservers(...observers: (RunObserver | undefined)[]): RunObserver {
  const list = observers.filter((o): o is RunObserver => o !== undefined);
  const each =
    <K extends keyof RunObserver>(k: K) =>
    (...args: Parameters<NonNullable<RunObserver[K]>>) => {
      for (const o of list) (o[k] as ((...a: unknown[]) => void) | undefined)?.(...args);
    };
  return {
    runStarted: each("runStarted"),
    recordingFinished: each("recordingFinished"),
    apiResponse: each("apiResponse"),
    retried: each("retried"),
    rateLimited: each("rateLimited"),
    transferStarted: each("transferStarted"),
    transferEnded: each("transferEnded"),
    sourceChanged: each("sourceChanged"),
    runFinished: each("runFinished"),
  };
}
