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

/** A connection reset: retryable. */
const reset = () => Object.assign(new Error("reset"), { code: "ECONNRESET" });

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
    if (++n < 3) throw reset();
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
        throw reset();
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

/** An attempt that always fails with `err()`, counting its calls; `each(n)` runs first on call n. */
function alwaysFailing(err: () => unknown, each: (n: number) => void = () => {}) {
  const calls = { n: 0 };
  const fn = async () => {
    each(++calls.n);
    throw err();
  };
  return { fn, calls };
}

test("an aborted signal stops retrying with StopRequested", async () => {
  const ac = new AbortController();
  const attempt = alwaysFailing(reset, (n) => n === 2 && ac.abort());
  const p = withRetry(attempt.fn, { ...fast, retries: 50 }, { signal: ac.signal });
  await assert.rejects(p, (e: unknown) => e instanceof StopRequested);
  assert.ok(attempt.calls.n <= 3);
});

const tooMany = (retryAfterMs?: number) =>
  new ArchiverError("retryable", "rate_limit_exceeded", "slow down", {
    status: 429,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });

/** Whether `p` has settled once the event loop has turned a few times (no clock involved). */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

test("a 429 storm uses up no retries, stops at maxRetryTimeMs, and onRetry never hears the final 429", async () => {
  let n = 0;
  const retried: number[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        n++;
        throw tooMany(10);
      },
      { ...fast, retries: 1, maxRetryTimeMs: 80 },
      { onRetry: (_e, attempt) => retried.push(attempt) },
    ),
    (e: unknown) => e instanceof ArchiverError && e.status === 429,
  );
  assert.ok(n >= 3 && n <= 12, `${n} attempts: more than retries + 1, ended by the 80 ms bound`);
  assert.deepEqual(
    retried,
    Array.from({ length: n - 1 }, (_, i) => i + 1),
    "every attempt but the last",
  );
});

test("once the retries are used up a 429 fails too, without a pause", async () => {
  const seq = [reset(), tooMany(1), tooMany(1), reset(), tooMany(1), reset()];
  let n = 0;
  const pauses: number[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        throw seq[n++];
      },
      { ...fast, retries: 2 },
      { onRateLimit: (_e, ms) => pauses.push(ms) },
    ),
    (e: unknown) => e instanceof ArchiverError && e.status === 429,
  );
  assert.equal(n, 5, "two resets consumed both retries; the third 429 ends it");
  assert.deepEqual(pauses, [1, 1], "the failing 429 announces no pause");
});

test("onRetry hears each attempt that will be retried, not the final failure nor an error not retried", async () => {
  const retried: number[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        throw reset();
      },
      fast,
      { onRetry: (_e, attempt) => retried.push(attempt) },
    ),
  );
  assert.deepEqual(retried, [1, 2, 3]);
  retried.length = 0;
  await assert.rejects(
    withRetry(
      async () => {
        throw new ArchiverError("permanent", "x", "no");
      },
      fast,
      { onRetry: (_e, attempt) => retried.push(attempt) },
    ),
  );
  assert.deepEqual(retried, []);
});

test("the waits between retries are backoffDelay's; a 429 waits its Retry-After and does not advance them", async (t) => {
  const waits: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  t.mock.method(Math, "random", () => 0.5);
  t.mock.method(globalThis, "setTimeout", (cb: () => void, ms: number) => {
    waits.push(ms);
    return realSetTimeout(cb, 0);
  });
  const policy = { ...DEFAULT_RETRY_POLICY, retries: 8 };
  await assert.rejects(
    withRetry(async () => {
      throw reset();
    }, policy),
    (e: unknown) => e instanceof ArchiverError && e.code === "ECONNRESET",
  );
  const expected = [375, 750, 1500, 3000, 6000, 12_000, 20_000, 20_000];
  assert.deepEqual(waits, expected);
  assert.deepEqual(
    expected,
    expected.map((_, consumed) => backoffDelay(consumed, policy, 0.5)),
  );

  waits.length = 0;
  const seq = [reset(), tooMany(7), reset(), tooMany(), reset(), reset()];
  let n = 0;
  await assert.rejects(
    withRetry(
      async () => {
        throw seq[n++];
      },
      { ...policy, retries: 3 },
    ),
    (e: unknown) => e instanceof ArchiverError && e.code === "ECONNRESET",
  );
  assert.equal(n, 6);
  assert.deepEqual(waits, [375, 7, 750, policy.defaultRetryAfterMs, 1500]);
});

test("a signal aborted before the first attempt: StopRequested, not the signal's reason, and no attempt", async () => {
  const ac = new AbortController();
  ac.abort(new Error("the signal's own reason"));
  let n = 0;
  await assert.rejects(
    withRetry(
      async () => {
        n++;
        return "x";
      },
      fast,
      { signal: ac.signal },
    ),
    (e: unknown) => e instanceof StopRequested,
  );
  assert.equal(n, 0);
});

test("a stop during a backoff wait ends it at once with StopRequested", async () => {
  const ac = new AbortController();
  const attempt = alwaysFailing(reset);
  const p = withRetry(
    attempt.fn,
    { ...fast, minDelayMs: 60_000, maxDelayMs: 60_000 },
    { signal: ac.signal, onRetry: () => setImmediate(() => ac.abort(new Error("the signal's own reason"))) },
  );
  assert.ok(await settlesSoon(p), "the 60 s backoff was cut short");
  await assert.rejects(p, (e: unknown) => e instanceof StopRequested);
  assert.equal(attempt.calls.n, 1);
});

test("a stop during a 429's Retry-After wait ends it at once with StopRequested", async () => {
  const ac = new AbortController();
  let n = 0;
  let retries = 0;
  const p = withRetry(
    async () => {
      n++;
      throw tooMany(60_000);
    },
    fast,
    {
      signal: ac.signal,
      onRateLimit: () => setImmediate(() => ac.abort(new Error("the signal's own reason"))),
      onRetry: () => retries++,
    },
  );
  assert.ok(await settlesSoon(p), "the 60 s Retry-After wait was cut short");
  await assert.rejects(p, (e: unknown) => e instanceof StopRequested);
  assert.equal(n, 1);
  assert.equal(retries, 0, "a stopped operation is not retried, so onRetry does not hear it");
});

test("a StopRequested from the attempt, or a failure once stopped, is neither retried nor reported as one", async () => {
  let n = 0;
  let retries = 0;
  await assert.rejects(
    withRetry(
      async () => {
        n++;
        throw new StopRequested();
      },
      fast,
      { onRetry: () => retries++ },
    ),
    (e: unknown) => e instanceof StopRequested,
  );
  const ac = new AbortController();
  await assert.rejects(
    withRetry(
      async () => {
        n++;
        ac.abort();
        throw reset();
      },
      fast,
      { signal: ac.signal, onRetry: () => retries++ },
    ),
    (e: unknown) => e instanceof StopRequested,
  );
  assert.equal(n, 2);
  assert.equal(retries, 0);
});
