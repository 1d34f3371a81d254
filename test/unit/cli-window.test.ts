/** `--since/--until` parsed once into the window the commands build their options from. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/base/config.js";
import { addDays, formatDay } from "../../src/base/dates.js";
import { windowFrom } from "../../src/cli/window.js";

const usage = (message: RegExp) => (e: unknown) => e instanceof ConfigError && message.test(e.message);

test("the flags become a window of checked days; absent flags leave its ends open", () => {
  assert.deepEqual(windowFrom({}), {});
  assert.deepEqual(windowFrom({ since: " 2026-01-31" }), { startDate: "2026-01-31" });
  assert.deepEqual(windowFrom({ until: "2026-02-01" }), { endDate: "2026-02-01" });
  assert.deepEqual(windowFrom({ since: "2026-02-01", until: "2026-02-01" }), {
    startDate: "2026-02-01",
    endDate: "2026-02-01",
  });
});

test("a day that is not one, or a start after the end, is a usage error naming the flag", () => {
  assert.throws(() => windowFrom({ since: "2026-02-30" }), usage(/--since must be a date/));
  assert.throws(() => windowFrom({ until: "yesterday" }), usage(/--until must be a date/));
  assert.throws(
    () => windowFrom({ since: "2026-03-01", until: "2026-02-01" }),
    usage(/--since 2026-03-01 is after --until 2026-02-01/),
  );
});

test("for run, an open end is today: a start after today is refused, today itself is not", () => {
  const today = formatDay(new Date());
  const tomorrow = addDays(today, 1);
  assert.deepEqual(windowFrom({ since: tomorrow }), { startDate: tomorrow });
  assert.throws(() => windowFrom({ since: tomorrow }, { openEndIsToday: true }), usage(/is after --until/));
  assert.deepEqual(windowFrom({ since: today }, { openEndIsToday: true }), { startDate: today });
});
