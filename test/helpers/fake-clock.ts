/**
 * A clock for tests, in virtual time: `now()` reads it, `sleep(ms)` waits on it. Time moves only when every
 * waiter is asleep (nothing else left to run this turn), straight to the earliest wake-up, so nothing waits on
 * the wall clock and what a test asserts is virtual time. A test that would sleep forever fails after
 * `maxWakeUps` wake-ups (or sleeps asked for) instead of hanging.
 */
export class FakeClock {
  private t: number;
  private readonly timers: { at: number; wake: () => void; fail: (e: Error) => void }[] = [];
  private scheduled = false;
  private wakeUps = 0;
  private calls = 0;
  /** Every sleep asked for (ms), in order. */
  readonly sleeps: number[] = [];

  constructor(
    start = Date.parse("2026-11-24T12:00:00Z"),
    private readonly maxWakeUps = 10_000,
  ) {
    this.t = start;
  }

  now = (): number => this.t;

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (++this.calls > this.maxWakeUps)
      return Promise.reject(
        new Error(`FakeClock: more than ${this.maxWakeUps} sleeps (a loop that never ends?)`),
      );
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    this.sleeps.push(ms);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.drop(timer);
        resolve();
      };
      const timer = {
        at: this.t + ms,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        fail: reject,
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.timers.push(timer);
      this.schedule();
    });
  };

  /** Move time forward by hand, waking whoever is due. */
  advance(ms: number): void {
    this.t += ms;
    this.wakeDue();
  }

  /** Sleepers not yet woken. */
  get sleeping(): number {
    return this.timers.length;
  }

  private drop(timer: (typeof this.timers)[number]): void {
    const i = this.timers.indexOf(timer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** After everything runnable has run (promise jobs drain before setImmediate), jump to the next wake-up. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.timers.length === 0) return;
      this.t = Math.max(this.t, Math.min(...this.timers.map((x) => x.at)));
      this.wakeDue();
    });
  }

  private wakeDue(): void {
    for (const timer of this.timers.filter((x) => x.at <= this.t)) {
      this.drop(timer);
      if (++this.wakeUps > this.maxWakeUps)
        timer.fail(new Error(`FakeClock: more than ${this.maxWakeUps} wake-ups (a loop that never ends?)`));
      else timer.wake();
    }
    if (this.timers.length > 0) this.schedule();
  }
}
