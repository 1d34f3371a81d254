/**
 * The days an incremental run checks against the source, and the figures a set of compared days gives: which days
 * are short, which lost calls upstream, and the oldest gap.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { daysBefore, daysFrom, figuresOf, type DayCount } from "../../src/jobs/completeness.js";

test("the days checked: the N days before the window, none without a start or with N = 0", () => {
  assert.deepEqual(daysBefore({ startDate: "2026-03-02", endDate: "2026-03-03" }, 3), [
    "2026-02-27",
    "2026-02-28",
    "2026-03-01",
  ]);
  assert.deepEqual(daysBefore({ endDate: "2026-03-03" }, 30), [], "a first run lists everything");
  assert.deepEqual(daysBefore({ startDate: "2026-03-02", endDate: "2026-03-03" }, 0), []);
  assert.equal(daysFrom("2024-02-01", "2024-03-01").length, 30, "a leap February, inclusive");
  assert.deepEqual(daysFrom("2026-03-02", "2026-03-01"), []);
});

const dayOf = (
  day: string,
  source: number,
  s: Partial<Omit<DayCount, "day" | "source" | "known">>,
): DayCount => {
  const counts = { archived: 0, pending: 0, not_ready: 0, no_recording: 0, failed: 0, ...s };
  return { day, source, known: Object.values(counts).reduce((a, b) => a + b, 0), ...counts };
};

test("figures: calls not archived nor without a recording are missing; a source below the state is reported", () => {
  const f = figuresOf([
    dayOf("2026-03-01", 5, { archived: 4, no_recording: 1 }), // complete
    dayOf("2026-03-02", 6, { archived: 3, failed: 1 }), // 2 unknown + 1 failed: 3 missing
    dayOf("2026-03-03", 2, { archived: 3 }), // one deleted upstream
    dayOf("2026-03-04", 4, { archived: 3, not_ready: 1 }), // 1 missing
  ]);
  assert.deepEqual(f, {
    days_checked: 4,
    gap_days: 0,
    gaps_closed: 0,
    missing_calls: 4,
    oldest_gap_day: "2026-03-02",
    fewer_at_source_days: ["2026-03-03"],
  });
  assert.equal(figuresOf([]).oldest_gap_day, null);
});
