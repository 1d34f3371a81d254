/** Durations and sizes as users write them (rclone's forms): src/base/units.ts. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration, parseSize } from "../../src/base/units.js";

test("durations: 50m, 1h30m, 90s, 2d, 500ms, a bare number of seconds; anything else is null", () => {
  assert.equal(parseDuration("50m"), 3_000_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration(" 90s "), 90_000);
  assert.equal(parseDuration("2d"), 172_800_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("45"), 45_000);
  for (const bad of ["", "m", "5 minutes", "-5m", "1y", "5m3"]) assert.equal(parseDuration(bad), null, bad);
  assert.equal(formatDuration(5_400_000), "1h30m");
  assert.equal(formatDuration(2000), "2s");
});

test("sizes: binary multiples, with or without B/iB; a bare number is bytes", () => {
  assert.equal(parseSize("200G"), 200 * 1024 ** 3);
  assert.equal(parseSize("512M"), 512 * 1024 ** 2);
  assert.equal(parseSize("20MiB"), 20 * 1024 ** 2);
  assert.equal(parseSize("10k"), 10_240);
  assert.equal(parseSize("1.5T"), 1.5 * 1024 ** 4);
  assert.equal(parseSize("100"), 100);
  for (const bad of ["", "G", "5X", "-1M", "1 0M"]) assert.equal(parseSize(bad), null, bad);
});
