import { test } from "node:test";
import assert from "node:assert/strict";
import { ArchiverError, StopRequested } from "../../src/base/errors.js";
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  withRetry,
  type RetryPolicy,
} from "../../src/base/retry.js";

const fast: RetryPolicy = {
  ...DEFAULT_RETRY_POLICY,
  retries: 3,
  minDelayMs: 1,
  maxDelayMs: 5,
  defaultRetryAfterMs: 5,
};

test("Retry-After: delta seconds, HTTP dates, garbage", () => {
  const now = Date.parse("2026-11-24T12:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("1.5", now), 1500);
  assert.equal(parseRetryAfter("Tue, 24 Nov 2026 12:00:10 GMT", now), 10_000);
  assert.equal(parseRetryAfter("Tue, 24 Nov 2026 11:00:00 GMT", now), 0, "a date in the past means now");
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter("-1", now), undefined);
  assert.equal(parseRetryAfter("", now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test("retryable errors are retried until success", async () => {
  let n = 0;
  const out = await withRetry(async () => {
    if (++n < 3) throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
    return "ok";
  }, fast);
  assert.equal(out, "ok");
  assert.equal(n, 3);
});

test("permanent and fatal errors are not retried", async () => {
  for (const kind of ["permanent", "fatal", "refresh-url"] as const) {
    let n = 0;
    await assert.rejects(
      withRetry(async () => {
        n++;
        throw new ArchiverError(kind, "x", "no");
      }, fast),
      (e: unknown) => e instanceof ArchiverError && e.kind === kind,
    );
    assert.equal(n, 1, kind);
  }
});

test("retries are bounded and the last error comes out classified", async () => {
  let n = 0;
  await assert.rejects(
    withRetry(async () => {
      n++;
      throw Object.assign(new Error("down"), { code: "ECONNREFUSED" });
    }, fast),
    (e: unknown) => e instanceof ArchiverError && e.kind === "retryable" && e.code === "ECONNREFUSED",
  );
  assert.equal(n, fast.retries + 1);
});

test("429s honour Retry-After, do not use up retries, and report the pause", async () => {
  let n = 0;
  const pauses: number[] = [];
  const t0 = Date.now();
  const out = await withRetry(
    async () => {
      n++;
      if (n <= 5)
        throw new ArchiverError("retryable", "rate_limit_exceeded", "slow down", {
          status: 429,
          retryAfterMs: 20,
        });
      return n;
    },
    { ...fast, retries: 1 },
    { onRateLimit: (_e, ms) => pauses.push(ms) },
  );
  assert.equal(out, 6, "five 429s with only one retry allowed");
  assert.deepEqual(pauses, [20, 20, 20, 20, 20]);
  assert.ok(Date.now() - t0 >= 100, "waited for Retry-After each time");
});

test("backoff doubles from the minimum with jitter in [1, 2), capped at the maximum", () => {
  const p = { ...DEFAULT_RETRY_POLICY, minDelayMs: 250, maxDelayMs: 20_000 };
  assert.deepEqual(
    [0, 1, 2, 3, 8].map((n) => backoffDelay(n, p, 0)),
    [250, 500, 1000, 2000, 20_000],
  );
  assert.equal(backoffDelay(0, p, 0.999), 500);
  assert.equal(backoffDelay(2, p, 0.5), 1500);
});

test("no retry starts after maxRetryTimeMs, whatever retries are left", async () => {
  let n = 0;
  const t0 = Date.now();
  await assert.rejects(
    withRetry(
      async () => {
        n++;
        throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
      },
      { ...fast, retries: 1000, minDelayMs: 20, maxDelayMs: 20, maxRetryTimeMs: 150 },
    ),
    (e: unknown) => e instanceof ArchiverError && e.code === "ECONNRESET",
  );
  const took = Date.now() - t0;
  assert.ok(took >= 140 && took < 2000, `gave up after ${took} ms`);
  assert.ok(n >= 3 && n <= 11, `${n} attempts, 20 ms apart, within 150 ms`);
});

test("a stop during a successful attempt still ends in StopRequested (the caller keeps nothing half-done)", async () => {
  const ac = new AbortController();
  await assert.rejects(
    withRetry(
      async () => {
        ac.abort();
        return "stored";
      },
      fast,
      { signal: ac.signal },
    ),
    (e: unknown) => e instanceof StopRequested,
  );
});

test("an aborted signal stops retrying with StopRequested", async () => {
  const ac = new AbortController();
  let n = 0;
  const p = withRetry(
    async () => {
      n++;
      if (n === 2) ac.abort();
      throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
    },
    { ...fast, retries: 50 },
    { signal: ac.signal },
  );
  await assert.rejects(p, (e: unknown) => e instanceof StopRequested);
  assert.ok(n <= 3);
});
