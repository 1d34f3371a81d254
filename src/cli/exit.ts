/** Exit codes: the numbers, what each means (listed by `--help`, the README's table says the same), and the mapping. */
import type { RunSummary } from "../jobs/run.js";

export const EXIT = { ok: 0, fatal: 1, usage: 2, failures: 3, budget: 4, sigint: 130, sigterm: 143 } as const;

/** What `--help` says about each exit code, in order. */
export const EXIT_HELP: readonly (readonly [string, string])[] = [
  ["0", "done, nothing failed"],
  [
    "1",
    "fatal: API key rejected, bucket missing/denied, state DB unusable, a listing that does not end;\n" +
      "verify: some objects could not be checked, or nothing was; reconcile: some objects could not be reconciled",
  ],
  ["2", "usage or configuration error (every problem listed at once)"],
  [
    "3",
    "run: done, but some recordings failed (logged, kept in the state DB for the next run);\n" +
      "verify: something is missing or altered; verify --source: a day has calls the archive does not hold;\n" +
      "audit --verify: the trail is broken (the first broken record named);\n" +
      "export, hold: the selection matches nothing, or a copy or a version does not read back as asked",
  ],
  [
    "4",
    "run: a budget (--max-duration, --max-bytes) ended the run; what is left is archived by the next run",
  ],
  ["130/143", "stopped by SIGINT/SIGTERM (in-flight transfers stopped, stored parts kept, state saved)"],
];

/** The exit code a stopping signal asks for. */
export function signalExit(sig: NodeJS.Signals): number {
  return sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
}

export function exitCodeFor(s: RunSummary, stopSignal: NodeJS.Signals | undefined): number {
  switch (s.outcome) {
    case "ok":
      return EXIT.ok;
    case "failures":
      return EXIT.failures;
    case "fatal":
      return EXIT.fatal;
    case "budget":
      return EXIT.budget;
    case "interrupted":
      return stopSignal === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
  }
}
