/** Selecting archived recordings for export and hold: from the state DB's call fields, all filters together. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/base/config.js";
import { StateDb } from "../../src/state/db.js";
import { normalizePhone, selectArchived, selectionFrom } from "../../src/jobs/selection.js";

const id = (n: number) => `call_00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

function db(): StateDb {
  const s = StateDb.open(join(mkdtempSync(join(tmpdir(), "sel-")), "s.db"));
  const calls = [
    { n: 1, day: "2026-03-01", dir: "inbound", from: "+14155550123", to: "+12125550000" },
    { n: 2, day: "2026-03-02", dir: "outbound", from: "+12125550000", to: "+14155550123" },
    { n: 3, day: "2026-03-02", dir: "inbound", from: "+13105550000", to: "+12125550000" },
    { n: 4, day: "2026-04-01", dir: "inbound", from: "+14155550123", to: "+12125550000" },
  ];
  for (const c of calls) {
    const call = { id: id(c.n), call_direction: c.dir, from_number: c.from, to_number: c.to };
    s.recordListed(id(c.n), `${c.day}T10:00:00Z`, JSON.stringify(call), "r");
    s.markArchived(id(c.n), {
      key: `recordings/${c.day.replace(/-/g, "/")}/${id(c.n)}.m4a`,
      contentType: "audio/mp4",
      recordingStartTime: `${c.day}T10:00:00Z`,
      durationSeconds: 1,
      sha256: "ab",
      bytes: 1,
      etag: null,
      versionId: null,
    });
  }
  s.recordListed(id(5), "2026-03-01T00:00:00Z", "not json", "r"); // never archived: never selected
  return s;
}

const pick = (s: StateDb, flags: Parameters<typeof selectionFrom>[0]) =>
  [...selectArchived(s, selectionFrom(flags))].map((r) => Number(r.call_id.slice(-2)));

test("window, phone (either end, any formatting), direction and call ids, all together", () => {
  const s = db();
  assert.deepEqual(pick(s, { window: {} }), [1, 2, 3, 4]);
  assert.deepEqual(pick(s, { window: { startDate: "2026-03-01", endDate: "2026-03-31" } }), [1, 2, 3]);
  assert.deepEqual(pick(s, { window: {}, phone: "+1 (415) 555-0123" }), [1, 2, 4]);
  assert.deepEqual(
    pick(s, { window: { startDate: "2026-03-01", endDate: "2026-03-31" }, phone: "+1 415 555 0123" }),
    [1, 2],
  );
  assert.deepEqual(pick(s, { window: {}, phone: "+14155550123", direction: "outbound" }), [2]);
  assert.deepEqual(pick(s, { window: {}, callId: [id(3), id(4)], direction: "inbound" }), [3, 4]);
  assert.deepEqual(pick(s, { window: { startDate: "2027-01-01" } }), []);
  s.close();
});

test("bad filters are usage errors", () => {
  assert.equal(normalizePhone(" +44 20 7946-0958 "), "+442079460958");
  assert.throws(() => selectionFrom({ window: {}, callId: ["call_x"] }), ConfigError);
  assert.throws(() => selectionFrom({ window: {}, phone: "n/a" }), ConfigError);
  assert.throws(() => selectionFrom({ window: {}, direction: "sideways" }), ConfigError);
});
