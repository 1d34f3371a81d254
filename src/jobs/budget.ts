/**
 * The run's budget (rclone's --max-duration / --max-transfer with --cutoff-mode): once the time or the media bytes
 * are spent, the run starts no new recording. Soft: transfers in flight finish. Hard: they are stopped as SIGTERM
 * stops them (large uploads kept for the next run to resume). Either way the run ends with outcome "budget".
 */
import { formatDuration } from "../base/units.js";

export interface BudgetSettings {
  maxDurationMs: number | undefined;
  maxBytes: number | undefined;
  cutoff: "soft" | "hard";
}

/** How often the bytes received are compared with the byte budget. */
const CHECK_MS = 100;
/** Node's longest timer (~24.8 days): a longer budget (a yearly worker tick) is no limit in practice. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RunBudget {
  private readonly soft = new AbortController();
  private readonly hard = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  /** What ended the run, once spent. */
  spent: "duration" | "bytes" | undefined;

  constructor(
    readonly settings: BudgetSettings,
    private readonly onSpent: (what: string) => void = () => {},
  ) {}

  /** Aborted once the budget is spent: start nothing new. */
  get noNewWork(): AbortSignal {
    return this.soft.signal;
  }

  /** Aborted once the budget is spent with the hard cutoff: stop what is in flight. */
  get stopAll(): AbortSignal {
    return this.hard.signal;
  }

  get limited(): boolean {
    return this.settings.maxDurationMs !== undefined || this.settings.maxBytes !== undefined;
  }

  /** Start counting: the time from now, the bytes as `received` reports them. */
  start(received: () => number): void {
    const { maxDurationMs, maxBytes } = this.settings;
    if (maxDurationMs !== undefined && maxDurationMs <= MAX_TIMER_MS)
      this.timers.push(setTimeout(() => this.spend("duration"), maxDurationMs));
    if (maxBytes !== undefined)
      this.timers.push(
        setInterval(() => {
          if (received() >= maxBytes) this.spend("bytes");
        }, CHECK_MS),
      );
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** The limit that was spent, as the user wrote it (for the summary and the log). */
  describe(): string {
    const { maxDurationMs, maxBytes, cutoff } = this.settings;
    const limit =
      this.spent === "duration"
        ? `--max-duration ${formatDuration(maxDurationMs!)}`
        : `--max-bytes ${maxBytes} bytes`;
    return `${limit} (--cutoff ${cutoff})`;
  }

  private spend(what: "duration" | "bytes"): void {
    if (this.spent) return;
    this.spent = what;
    this.stop();
    this.onSpent(this.describe());
    this.soft.abort();
    if (this.settings.cutoff === "hard") this.hard.abort();
  }
}
