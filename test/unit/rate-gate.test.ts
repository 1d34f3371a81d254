/**
 * The rate gate in virtual time (test/helpers/fake-clock.ts): its pacing, the pause after a 429's Retry-After
 * and the pause for an exhausted X-RateLimit budget, asserted as the virtual times at which requests go out.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { RateGate, type HeaderSource } from "../../src/envoy/rate-limit.js";
import { parseRetryAfter } from "../../src/base/retry.js";
import { FakeClock } from "../helpers/fake-clock.js";

const headers = (h: Record<string, string>): HeaderSource => ({ get: (n) => h[n] });

/** Start `n` requests at once; the virtual time (ms from the start) at which each is let through. */
async function together(
  gate: RateGate,
  clock: FakeClock,
  n: number,
  signal?: AbortSignal,
): Promise<number[]> {
  const t0 = clock.now();
  return Promise.all(Array.from({ length: n }, () => gate.wait(signal).then(() => clock.now() - t0)));
}

/** `n` requests one after the other; the virtual time (ms from the start) at which each is let through. */
async function inTurn(gate: RateGate, clock: FakeClock, n: number): Promise<number[]> {
  const t0 = clock.now();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    await gate.wait();
    out.push(clock.now() - t0);
  }
  return out;
}

test("no cap and no server limits: nobody waits", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  assert.deepEqual(await together(gate, clock, 50), Array(50).fill(0));
  assert.deepEqual(clock.sleeps, []);
});

// The gate starts (and restarts after an idle spell) with one request of credit: two go at once, then the pace.
test("ARCHIVER_API_RPS spaces requests 1/rps apart, sequential or concurrent", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(10, clock);
  assert.deepEqual(await inTurn(gate, clock, 5), [0, 0, 100, 200, 300]);
  clock.advance(60_000);
  assert.deepEqual(
    await inTurn(gate, clock, 3),
    [0, 0, 100],
    "after an idle minute: no burst beyond the credit",
  );
  const clock2 = new FakeClock();
  const gate2 = new RateGate(4, clock2);
  const times = await together(gate2, clock2, 5);
  assert.deepEqual(
    times.sort((a, b) => a - b),
    [0, 0, 250, 500, 750],
  );
});

test("a 429's Retry-After pauses every request, and a shorter pause never shortens a longer one", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  gate.pause(parseRetryAfter("2", clock.now())!); // Retry-After: 2 (seconds)
  gate.pause(500);
  assert.equal(gate.pauses, 1, "the shorter pause is not counted");
  assert.deepEqual(await together(gate, clock, 3), [2000, 2000, 2000], "all three waited for Retry-After");
  // An HTTP date, read against the same clock.
  const at = new Date(clock.now() + 7000).toUTCString();
  gate.pause(parseRetryAfter(at, clock.now())!);
  assert.equal(gate.pauses, 2);
  assert.deepEqual(await together(gate, clock, 2), [7000, 7000]);
  assert.deepEqual(await together(gate, clock, 2), [0, 0], "the pause is over");
});

test("a pause on top of the pace: requests resume at the pace after the pause", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(10, clock);
  await gate.wait();
  await gate.wait(); // the credit spent: the next is due at 100
  gate.pause(1000);
  assert.deepEqual(
    (await together(gate, clock, 3)).sort((a, b) => a - b),
    [1000, 1000, 1100], // the pause was idle time: the credit again, then the pace
  );
});

test("X-RateLimit-Remaining 0 waits for X-RateLimit-Reset (seconds from now, or a Unix time; at most 60 s)", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  gate.observe(headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.05" }));
  assert.deepEqual(await together(gate, clock, 2), [50, 50]);
  gate.observe(
    headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(clock.now() / 1000 + 30) }),
  );
  assert.deepEqual(await together(gate, clock, 1), [30_000], "a Unix timestamp");
  gate.observe(headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "3600" }));
  assert.deepEqual(await together(gate, clock, 1), [60_000], "capped at 60 s");
  assert.equal(gate.pauses, 0, "advisory waits are not 429 pauses");
});

test("a budget with requests left, or headers missing or garbled, costs no wait", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  const cases: Record<string, string>[] = [
    { "x-ratelimit-remaining": "5", "x-ratelimit-reset": "10" },
    { "x-ratelimit-remaining": "0" },
    { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "soon" },
    { "x-ratelimit-limit": "lots" },
    { "x-ratelimit-limit": "-3" },
    {},
  ];
  for (const h of cases) {
    gate.observe(headers(h));
    assert.deepEqual(await together(gate, clock, 3), [0, 0, 0], JSON.stringify(h));
  }
  assert.deepEqual(clock.sleeps, []);
});

test("X-RateLimit-Limit paces at the server's rate, only ever tighter than ours, never slower than 1/s", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  gate.observe(
    headers({ "x-ratelimit-limit": "50", "x-ratelimit-remaining": "40", "x-ratelimit-reset": "1" }),
  );
  assert.deepEqual(await inTurn(gate, clock, 4), [0, 0, 20, 40]);
  const capped = new RateGate(10, clock);
  capped.observe(headers({ "x-ratelimit-limit": "50" }));
  assert.deepEqual(await inTurn(capped, clock, 3), [0, 0, 100], "our 10/s cap stays");
  const hostile = new RateGate(undefined, clock);
  hostile.observe(headers({ "x-ratelimit-limit": "0.001" }));
  assert.deepEqual(await inTurn(hostile, clock, 4), [0, 0, 1000, 2000], "0.001/s is taken as 1/s");
});

test("an aborted wait returns at once, paused or not, without time passing", async () => {
  const clock = new FakeClock();
  const gate = new RateGate(undefined, clock);
  gate.pause(60_000);
  const ac = new AbortController();
  const t0 = clock.now();
  const waiting = gate.wait(ac.signal);
  assert.equal(clock.sleeping, 1);
  ac.abort();
  await waiting;
  assert.equal(clock.now(), t0);
  assert.equal(clock.sleeping, 0);
  await gate.wait(ac.signal); // already aborted
  assert.equal(clock.now(), t0);
});
