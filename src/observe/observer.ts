/** What a run tells the outside while it works: progress lines and metrics both listen here. */
import type { LagFacts } from "../base/lag.js";
import type { LiveRun, RunReport, TallyEvents } from "./tally.js";

export type { LiveRun, RecordingOutcome } from "./tally.js";

export interface RunObserver extends TallyEvents {
  runStarted?(live: LiveRun): void;
  apiResponse?(status: number): void;
  runFinished?(summary: Readonly<RunReport>): void;
  /** How far behind the archive is, read from the state DB at the end of a run. */
  lagRead?(lag: LagFacts): void;
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
    recordingFailed: each("recordingFailed"),
    apiResponse: each("apiResponse"),
    retried: each("retried"),
    rateLimited: each("rateLimited"),
    transferStarted: each("transferStarted"),
    transferEnded: each("transferEnded"),
    sourceChanged: each("sourceChanged"),
    runFinished: each("runFinished"),
    lagRead: each("lagRead"),
  };
}
