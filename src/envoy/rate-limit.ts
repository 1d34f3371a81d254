/**
 * One gate in front of every Envoy API request, shared by all workers. It
 *  - spaces requests to at most `rps` per second when a client-side cap is set (ARCHIVER_API_RPS);
 *  - pauses *every* worker after a 429 until Retry-After has passed, not just the one that was refused;
 *  - slows down before being refused when the server reports X-RateLimit-Remaining / X-RateLimit-Reset.
 */
import { sleep } from "../base/retry.js";

/**
 * The slowest pace a server's X-RateLimit-Limit can impose: one request a second. A limit below 1/s (a hostile or
 * broken `0.001` would space requests 1,000 s apart) is taken as 1/s; 429s and Retry-After still slow us further.
 */
const MAX_SERVER_INTERVAL_MS = 1000;
/** The longest pause X-RateLimit-Reset can impose before a request (Retry-After on a 429 has its own cap). */
const MAX_RESET_PAUSE_MS = 60_000;

export interface HeaderSource {
  get(name: string): string | undefined;
}

/** The time the gate reads and how it waits: the wall clock by default, a fake one in tests. */
export interface GateClock {
  now(): number;
  /** Resolve after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const WALL_CLOCK: GateClock = { now: () => Date.now(), sleep };

export class RateGate {
  private pausedUntil = 0;
  private nextSlot = 0;
  private intervalMs: number;
  /** The configured cap; the server's advertised limit can only tighten it. */
  private readonly configuredIntervalMs: number;
  /** Number of 429 pauses and total ms paused, for the summary and metrics. */
  pauses = 0;

  constructor(
    rps: number | undefined,
    private readonly clock: GateClock = WALL_CLOCK,
  ) {
    this.intervalMs = rps && rps > 0 ? 1000 / rps : 0;
    this.configuredIntervalMs = this.intervalMs;
  }

  /** Wait for this request's turn. Resolves early (without throwing) if the signal aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) return;
      const now = this.clock.now();
      const at = Math.max(this.pausedUntil, this.nextSlot, now);
      if (at <= now) {
        if (this.intervalMs > 0)
          this.nextSlot = Math.max(this.nextSlot, now - this.intervalMs) + this.intervalMs;
        return;
      }
      await this.clock.sleep(at - now, signal);
    }
  }

  /** Stop all requests for `ms` (a 429 answered with Retry-After). */
  pause(ms: number): void {
    const until = this.clock.now() + ms;
    if (until > this.pausedUntil) {
      this.pausedUntil = until;
      this.pauses++;
    }
  }

  /**
   * Read advisory rate-limit headers. When the server says the budget is spent, wait for its reset instead of
   * spending a request to be told 429. Reset is accepted as seconds-from-now or as a Unix timestamp.
   */
  observe(headers: HeaderSource): void {
    // X-RateLimit-Limit: pace at that many requests per second. Envoy publishes no window; a per-second window
    // makes this exact, and for a longer window (per minute, per hour) it is a cap that never binds while
    // Remaining/Reset below still keep us inside the budget.
    const limit = Number(headers.get("x-ratelimit-limit"));
    if (Number.isFinite(limit) && limit > 0)
      this.intervalMs = Math.max(this.configuredIntervalMs, Math.min(1000 / limit, MAX_SERVER_INTERVAL_MS));
    const remaining = Number(headers.get("x-ratelimit-remaining"));
    const reset = Number(headers.get("x-ratelimit-reset"));
    if (!Number.isFinite(remaining) || !Number.isFinite(reset) || remaining > 0) return;
    const ms = reset > 1e9 ? reset * 1000 - this.clock.now() : reset * 1000;
    if (ms > 0)
      this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + Math.min(ms, MAX_RESET_PAUSE_MS));
  }
}
