/**
 * The bandwidth limit (src/base/bandwidth.ts): rclone's forms parsed, the timetable's rate by the local time of
 * day, and the rate four streams achieve together through one limit, measured with real streams and timers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { Bandwidth, parseBwLimit, rateAt } from "../../src/base/bandwidth.js";

const MiB = 1024 * 1024;

test("rclone's forms: a rate, off, a timetable; anything else is refused", () => {
  assert.deepEqual(parseBwLimit("20M"), [{ minute: 0, rate: 20 * MiB }]);
  assert.deepEqual(parseBwLimit("off"), [{ minute: 0, rate: null }]);
  assert.deepEqual(parseBwLimit("19:00,off 08:00,5M"), [
    { minute: 480, rate: 5 * MiB },
    { minute: 1140, rate: null },
  ]);
  for (const bad of ["fast", "08:00", "25:00,5M", "08:00,5M 19:00", "08:00,0", "0"])
    assert.equal(parseBwLimit(bad), null, bad);
});

test("the timetable's rate by local time, wrapping round midnight", () => {
  const slots = parseBwLimit("08:00,5M 19:00,off")!;
  const at = (h: number, m = 0) => rateAt(slots, new Date(2026, 11, 5, h, m));
  assert.equal(at(7, 59), null, "before 08:00: yesterday's last slot (off)");
  assert.equal(at(8), 5 * MiB);
  assert.equal(at(18, 59), 5 * MiB);
  assert.equal(at(19), null);
  assert.equal(rateAt(parseBwLimit("01:00,1M 02:00,2M")!, new Date(2026, 11, 5, 0, 30)), 2 * MiB);
});

test("four streams through one 2 MiB/s limit: together within 10% of it", async (t) => {
  const limit = 2 * MiB;
  const bw = new Bandwidth(parseBwLimit("2M")!);
  const perStream = 1.5 * MiB;
  const stream = () =>
    Readable.from(
      (function* () {
        for (let sent = 0; sent < perStream; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, 1);
      })(),
    );
  const t0 = performance.now();
  const counts = await Promise.all(
    [1, 2, 3, 4].map(async () => {
      let n = 0;
      for await (const c of bw.throttle(stream())) n += (c as Buffer).length;
      return n;
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const bytes = counts.reduce((a, b) => a + b, 0);
  assert.equal(bytes, 4 * perStream);
  const rate = bytes / seconds;
  t.diagnostic(
    `figures: ${(bytes / MiB).toFixed(1)} MiB in ${seconds.toFixed(2)} s = ${(rate / MiB).toFixed(3)} MiB/s (limit 2)`,
  );
  assert.ok(Math.abs(rate - limit) / limit <= 0.1, `${(rate / MiB).toFixed(3)} MiB/s`);
});
