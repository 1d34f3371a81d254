/**
 * The retry policy: how often and how long each kind of error (errors.ts) is tried again. Every network call in
 * the archiver goes through `withRetry`; nothing else sleeps or loops on failure.
 */
import { ArchiverError, classify, StopRequested, type ErrorKind } from "./errors.js";

/** Parse a Retry-After header (delta-seconds or HTTP-date) into milliseconds from `now`; undefined if absent/bad. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP-date names a weekday and month ("Tue, 24 Nov 2026 12:00:10 GMT"); Date.parse alone accepts "-1".
  if (!/[a-z]{3}/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export interface RetryPolicy {
  /** Attempts after the first, for retryable errors (429s do not use these up; they are bounded by time). */
  retries: number;
  /** First backoff delay; doubles each retry, with full jitter between base and 2×base. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Give up on a single operation after this long, whatever the error. */
  maxRetryTimeMs: number;
  /** Times a media URL is refreshed for one recording before the recording fails. */
  urlRefreshes: number;
  /** Wait used when a 429 carries no Retry-After. */
  defaultRetryAfterMs: number;
  /** Longest wait honoured from a Retry-After header (a server asking for an hour is capped). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 6,
  minDelayMs: 250,
  maxDelayMs: 20_000,
  maxRetryTimeMs: 5 * 60_000,
  urlRefreshes: 3,
  defaultRetryAfterMs: 2_000,
  maxRetryAfterMs: 5 * 60_000,
};

/** Which kinds are retried by `withRetry` itself. refresh-url is retried by the caller that can refresh. */
export function isRetryable(kind: ErrorKind): boolean {
  return kind === "retryable";
}

/** How long to wait after a 429: what the server said, capped, or the default. */
export function rateLimitDelay(err: ArchiverError, policy: RetryPolicy): number {
  return Math.min(err.retryAfterMs ?? policy.defaultRetryAfterMs, policy.maxRetryAfterMs);
}

export function isRateLimit(err: ArchiverError): boolean {
  return err.status === 429 || err.code === "rate_limit_exceeded" || err.code === "SlowDown";
}

export interface RetryHooks {
  signal?: AbortSignal;
  /** Called for every failed attempt that will be retried (for logs and counters). */
  onRetry?: (err: ArchiverError, attempt: number) => void;
  /** Called on a 429 before waiting; the API client uses it to pause all workers (rate-limit.ts). */
  onRateLimit?: (err: ArchiverError, delayMs: number) => void;
}

/**
 * Run `fn` until it succeeds, retrying retryable errors with exponential backoff and full jitter, honouring
 * Retry-After on 429. Errors come out classified (ArchiverError); a stop request comes out as StopRequested.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  const { signal } = hooks;
  const start = performance.now();
  /** Retries used up: 429s do not use them (they wait as long as the server asks, within maxRetryTimeMs). */
  let consumed = 0;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new StopRequested();
    let err: ArchiverError;
    try {
      const result = await fn(attempt);
      // Stopped while it ran: the caller treats the operation as interrupted (as before any result is kept).
      if (signal?.aborted) throw new StopRequested();
      return result;
    } catch (e) {
      if (e instanceof StopRequested || signal?.aborted) throw new StopRequested();
      err = classify(e);
    }
    if (!isRetryable(err.kind) || consumed >= policy.retries) throw err;
    hooks.onRetry?.(err, attempt);
    const rateLimited = isRateLimit(err);
    if (rateLimited) {
      const delay = rateLimitDelay(err, policy);
      hooks.onRateLimit?.(err, delay);
      await sleep(delay, signal);
    }
    const remaining = policy.maxRetryTimeMs - (performance.now() - start);
    if (remaining <= 0) throw err;
    if (rateLimited) continue;
    await sleep(Math.min(backoffDelay(consumed, policy), remaining), signal);
    consumed++;
  }
}

/** Backoff before retry number `consumed + 1`: minDelay × 2^consumed × a random factor in [1, 2), capped. */
export function backoffDelay(consumed: number, policy: RetryPolicy, random = Math.random()): number {
  return Math.min(Math.round((random + 1) * policy.minDelayMs * 2 ** consumed), policy.maxDelayMs);
}

/** Sleep that ends early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
