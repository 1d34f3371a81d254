import { test } from "node:test";
import assert from "node:assert/strict";
import { needsRefresh } from "../../src/envoy/url-refresh.js";

test("URLs are refreshed when expired or too close to expiry for the transfer", () => {
  const now = Date.parse("2026-11-24T12:00:00Z");
  assert.equal(needsRefresh(null, 1000, now), false, "no expiry: trust it");
  assert.equal(needsRefresh("garbage", 1000, now), false);
  assert.equal(needsRefresh("2026-11-24T11:59:00Z", 1000, now), true, "expired");
  assert.equal(needsRefresh("2026-11-24T12:00:30Z", 1000, now), true, "within the base margin");
  assert.equal(needsRefresh("2026-11-24T12:15:00Z", 1000, now), false, "15 minutes left for a small file");
  assert.equal(
    needsRefresh("2026-11-24T12:05:00Z", 2 * 1024 ** 3, now),
    true,
    "2 GiB will not make it in 5 minutes",
  );
});
