/**
 * The retry policy: how often and how long each kind of error (errors.ts) is tried again. Every network call in
 * the archiver goes through `withRetry`; nothing else sleeps or loops on failure.
 *
 * The loop is p-retry's: attempts, the count of retries used up, exponential backoff with full jitter, the time
 * bound (maxRetryTime) and the stop signal. `withRetry` adds what the archiver's policy says about errors: they
 * come out classified (ArchiverError) and a stop as StopRequested; only kind "retryable" is retried; a 429 does
 * not use up a retry and waits what the server asked (capped), announced first through `onRateLimit` so the API
 * gate pauses every worker; `onRetry` hears each failed attempt that will be retried, never the final failure.
 */
import pRetry, { AbortError, type Options as PRetryOptions, type RetryContext } from "p-retry";
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
  try {
    return await pRetry((attempt) => attemptOnce(fn, attempt, signal), pRetryOptions(policy, hooks));
  } catch (e) {
    // p-retry rejects with the signal's reason when it sees the stop itself (before an attempt, in a backoff).
    if (e instanceof StopRequested || signal?.aborted) throw new StopRequested();
    throw classify(e);
  }
}

/** One attempt: a failure leaves it classified, and a stop (during it, or after it succeeded) ends the loop. */
async function attemptOnce<T>(
  fn: (attempt: number) => Promise<T>,
  attempt: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  let result: T;
  try {
    result = await fn(attempt);
  } catch (e) {
    if (e instanceof StopRequested || signal?.aborted) throw new AbortError(new StopRequested());
    throw classify(e);
  }
  // Stopped while it ran: the caller treats the operation as interrupted (as before any result is kept).
  if (signal?.aborted) throw new AbortError(new StopRequested());
  return result;
}

/**
 * The policy as p-retry options. p-retry waits round(random[1, 2) × minTimeout × factor^consumed), capped at
 * maxTimeout (and at the time left): with randomize, factor 2, minDelayMs and maxDelayMs that is `backoffDelay`,
 * the same full-jitter distribution. A retry not consumed (a 429) gets no backoff of its own from p-retry; its
 * wait is the Retry-After one, in `onFailedAttempt`.
 */
function pRetryOptions(policy: RetryPolicy, hooks: RetryHooks): PRetryOptions {
  return {
    retries: policy.retries,
    minTimeout: policy.minDelayMs,
    factor: 2,
    maxTimeout: policy.maxDelayMs,
    randomize: true,
    maxRetryTime: policy.maxRetryTimeMs,
    signal: hooks.signal,
    onFailedAttempt: (ctx) => waitOutRateLimit(ctx, policy, hooks),
    shouldConsumeRetry: ({ error }) => !isRateLimit(error as ArchiverError),
    // p-retry asks this last, after its retry-count and time checks: a yes is a retry, so onRetry is told here.
    shouldRetry: ({ error, attemptNumber }) => {
      const err = error as ArchiverError;
      if (!isRetryable(err.kind)) return false;
      hooks.onRetry?.(err, attemptNumber);
      return true;
    },
  };
}

/**
 * After a 429 that has retries left: announce the pause, then wait what the server asked (capped). p-retry
 * checks the time bound after this, so a wait that outlasts maxRetryTimeMs ends the loop with the 429.
 */
async function waitOutRateLimit(ctx: RetryContext, policy: RetryPolicy, hooks: RetryHooks): Promise<void> {
  const { signal } = hooks;
  const err = ctx.error as ArchiverError;
  if (!isRetryable(err.kind) || !isRateLimit(err) || ctx.retriesLeft <= 0) return;
  const delay = rateLimitDelay(err, policy);
  hooks.onRateLimit?.(err, delay);
  await sleep(delay, signal);
  // Stopped while waiting: end here, before p-retry would ask shouldRetry (and so onRetry) about it.
  if (signal?.aborted) throw new StopRequested();
}

/**
 * Backoff before retry number `consumed + 1`: minDelay × 2^consumed × a random factor in [1, 2), capped. The loop
 * leaves the arithmetic to p-retry (`pRetryOptions`); this states it, for tests and readers.
 */
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
