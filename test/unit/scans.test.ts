/**
 * The queries that walk many calls: each plan walks an index in the order it pages (no temporary B-tree sorting
 * the table, no scan of it from the start for every page), with and without SQLite's statistics; keyset paging
 * yields every row once, in order, while the caller changes rows under it; a re-list rewrites nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateDb, type CallStatus } from "../../src/state/db.js";
import { archivedByCallId, archivedByKey, SCAN_SQL, waitingCalls } from "../../src/state/scans.js";
import { DAY_SQL } from "../../src/state/days.js";

const tmp = () => mkdtempSync(join(tmpdir(), "scans-"));
const id = (n: number) => `call_00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** n calls: every 3rd archived (keys in another order than ids), the rest waiting in various ways. */
function populate(s: StateDb, n: number): void {
  const insert = s.db.prepare(
    `INSERT INTO calls (call_id, call_time, call_json, status, error_kind, key, sha256, bytes, etag, first_seen_at,
       updated_at, recording_start_time)
     VALUES (?, ?, '{}', ?, ?, ?, ?, ?, ?, 't', 't', ?)`,
  );
  s.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const day = `2026-0${1 + (i % 9)}-1${i % 10}`;
      const time = i % 17 === 0 ? null : `${day}T00:00:0${i % 3}Z`; // NULL times and ties
      const status: CallStatus =
        i % 3 === 0 ? "archived" : (["pending", "not_ready", "failed"] as const)[(i % 4) % 3]!;
      const archived = status === "archived";
      insert.run(
        id(i),
        time,
        status,
        status === "failed" ? (i % 2 ? "permanent" : "retryable") : null,
        archived ? `recordings/${day.replace(/-/g, "/")}/${id(i)}.m4a` : null,
        archived ? "ab" : null,
        archived ? i : null,
        archived ? `"e${i}"` : null,
        archived && (i % 2 || time === null) ? `${day}T01:00:00Z` : null, // the key's day: start, else call time
      );
    }
  })();
}

const archivedAs = (key: string) => ({
  key,
  contentType: "audio/mp4",
  recordingStartTime: null,
  durationSeconds: null,
  sha256: "ab",
  bytes: 1,
  etag: null,
  versionId: null,
});

function plan(s: StateDb, sql: string, params: object | unknown[]): string[] {
  const st = s.db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  return ((Array.isArray(params) ? st.all(...params) : st.all(params)) as { detail: string }[]).map(
    (r) => r.detail,
  );
}

test("every paged query walks its index in order: no temp B-tree, no scan from the start", () => {
  const s = StateDb.open(join(tmp(), "plans.db"));
  populate(s, 3000);
  const window = { since: "2026-02-01", until: "2026-05-31" };
  const cases: [string, object | unknown[], RegExp][] = [
    [
      SCAN_SQL.archivedByCallId,
      { after: "", ...window },
      /^SEARCH calls USING INDEX sqlite_autoindex_calls_1 \(call_id>\?\)$/,
    ],
    [
      SCAN_SQL.archivedWithCall,
      { after: "", ...window },
      /^SEARCH calls USING INDEX sqlite_autoindex_calls_1 \(call_id>\?\)$/,
    ],
    [
      SCAN_SQL.archivedByKey,
      { after: "", ...window },
      /^SEARCH calls USING INDEX calls_archived_key \(key>\?\)$/,
    ],
    [
      SCAN_SQL.archivedInWindow,
      { d: "", k: "", ...window },
      /^SEARCH calls USING INDEX calls_archived_day \(<expr>>\? AND <expr><\?\)$/,
    ],
    [
      SCAN_SQL.archivedInWindowWithCall,
      { d: "", k: "", ...window },
      /^SEARCH calls USING INDEX calls_archived_day \(<expr>>\? AND <expr><\?\)$/,
    ],
    [
      SCAN_SQL.waiting,
      { t: "2026-05-15", id: id(5), runId: "r", retryFailed: 0 },
      /^SEARCH calls USING INDEX calls_waiting \(<expr><\?\)$/,
    ],
    [
      SCAN_SQL.awaitingRepair,
      { t: "2026-05-15", id: id(5), ...window },
      /^SEARCH calls USING INDEX calls_waiting \(<expr><\?\)$/,
    ],
  ];
  // The status counts, as StateDb prepares them.
  const prepared: string[] = [];
  const prepare = s.db.prepare.bind(s.db);
  s.db.prepare = ((sql: string) => (prepared.push(sql), prepare(sql))) as typeof s.db.prepare;
  s.countsByStatus();
  s.db.prepare = prepare;
  assert.equal(prepared.length, 1);
  cases.push([prepared[0]!, {}, /^SCAN calls USING COVERING INDEX calls_status_bytes$/]);
  // What the state knows of one UTC day (completeness against the source), from the index alone.
  cases.push([DAY_SQL, ["2026-03-14"], /^SEARCH calls USING COVERING INDEX calls_call_day \(<expr>=\?\)$/]);

  for (const analyzed of [false, true]) {
    if (analyzed) s.db.exec("ANALYZE");
    for (const [sql, params, want] of cases) {
      const p = plan(s, sql, params);
      assert.equal(p.length, 1, `${analyzed ? "with" : "without"} statistics, one step: ${p.join(" | ")}`);
      assert.match(p[0]!, want, `${analyzed ? "with" : "without"} statistics: ${sql}`);
      assert.ok(!p.some((d) => /TEMP B-TREE/.test(d)), p.join(" | "));
    }
  }
  s.close();
});

test("waiting calls: each yielded once, newest first, while the caller changes them; this run's and permanent failures left out", () => {
  const s = StateDb.open(join(tmp(), "waiting.db"));
  populate(s, 2500);
  // This run has listed some of them already.
  s.db.prepare("UPDATE calls SET last_run_id = 'r' WHERE status <> 'archived' AND rowid % 11 = 0").run();
  const expected = s.db
    .prepare(
      `SELECT call_id FROM calls WHERE status IN ('pending', 'not_ready', 'failed') AND IFNULL(last_run_id, '') <> 'r'
         AND NOT (status = 'failed' AND error_kind = 'permanent')
       ORDER BY IFNULL(call_time, '') DESC, call_id DESC`,
    )
    .pluck()
    .all() as string[];
  assert.ok(expected.length > 1000, "more than two pages");
  const seen: string[] = [];
  for (const row of waitingCalls(s, "r", false)) {
    seen.push(row.call_id);
    // What a run does meanwhile: archive some, fail others for good, leave the rest waiting.
    if (seen.length % 3 === 0) s.markArchived(row.call_id, archivedAs(`k/${row.call_id}`));
    else if (seen.length % 3 === 1) s.markStatus(row.call_id, "failed", { kind: "permanent", message: "x" });
  }
  assert.deepEqual(seen, expected);
  const retried = [...waitingCalls(s, "r", true)].length;
  assert.equal(
    retried,
    s.db
      .prepare(
        "SELECT COUNT(*) FROM calls WHERE status IN ('pending','not_ready','failed') AND IFNULL(last_run_id, '') <> 'r'",
      )
      .pluck()
      .get(),
    "--retry-failed: permanent failures too",
  );
  s.close();
});

test("archived recordings by call id and by key: every one once, in order, filtered by the recording's day", () => {
  const s = StateDb.open(join(tmp(), "archived.db"));
  populate(s, 3100); // 1,034 archived: three pages
  const all = s.db.prepare("SELECT call_id, key FROM calls WHERE status = 'archived'").all() as {
    call_id: string;
    key: string;
  }[];
  const byId = [...archivedByCallId(s)].map((r) => r.call_id);
  assert.deepEqual(byId, all.map((r) => r.call_id).sort());
  const byKey = [...archivedByKey(s)].map((r) => r.key);
  assert.deepEqual(byKey, all.map((r) => r.key).sort());
  assert.notDeepEqual(
    byKey.map((k) => k.slice(-40)),
    byId.map((i) => i.slice(-36) + ".m4a"),
    "two orders",
  );
  const inApril = [...archivedByKey(s, { startDate: "2026-04-01", endDate: "2026-04-30" })];
  assert.ok(inApril.length > 0);
  assert.deepEqual(
    inApril.map((r) => r.key),
    byKey.filter((k) => k.includes("/2026/04/")),
  );
  // A window reads only its own days' rows (calls_archived_day), by day then key, whichever scan asks.
  assert.deepEqual(
    [...archivedByCallId(s, { startDate: "2026-04-01", endDate: "2026-04-30" })].map((r) => r.call_id),
    inApril.map((r) => r.call_id),
  );
  assert.deepEqual(
    [...archivedByKey(s, { startDate: "2026-04-15" })].map((r) => r.key),
    byKey.filter((k) => k.slice(k.indexOf("recordings/") + 11, k.lastIndexOf("/")) >= "2026/04/15"),
  );
  s.close();
});

test("a re-list rewrites no finished row, yet still tells a page shift's duplicate from a first listing", () => {
  const s = StateDb.open(join(tmp(), "relist.db"));
  const [a, b, c] = [id(1), id(2), id(3)];
  for (const x of [a, b, c]) s.recordListed(x, "2026-01-01T00:00:00Z", `{"id":"${x}"}`, "r1");
  s.markArchived(a, archivedAs("k"));
  s.markStatus(b, "no_recording");
  const changes = () => s.db.prepare("SELECT total_changes()").pluck().get() as number;
  const before = changes();
  const first = s.recordListed(a, "2026-01-01T00:00:00Z", `{"id":"${a}"}`, "r2");
  assert.equal(first.duplicate, false);
  assert.equal(first.previous?.status, "archived");
  assert.equal(s.recordListed(b, "2026-01-01T00:00:00Z", `{"id":"${b}"}`, "r2").duplicate, false);
  assert.equal(changes() - before, 2, "two rows into the run's temp table, none in calls");
  assert.equal(s.getCall(a)!.last_run_id, "r1", "not rewritten");
  assert.equal(s.recordListed(a, "2026-01-01T00:00:00Z", `{"id":"${a}"}`, "r2").duplicate, true);
  assert.equal(
    s.recordListed(a, "2026-01-01T00:00:00Z", `{"id":"${a}"}`, "r3").duplicate,
    false,
    "a new run",
  );
  // Changed, or still to be done: written as before.
  s.recordListed(a, "2026-01-01T00:00:00Z", `{"id":"${a}","v":2}`, "r4");
  assert.equal(s.getCall(a)!.call_json, `{"id":"${a}","v":2}`);
  s.recordListed(c, "2026-01-01T00:00:00Z", `{"id":"${c}"}`, "r4");
  assert.equal(s.getCall(c)!.last_run_id, "r4");
  assert.equal(s.recordListed(c, "2026-01-01T00:00:00Z", `{"id":"${c}"}`, "r4").duplicate, true);
  s.close();
});

test("what the state knows of a UTC day: every status counted, a time with an offset on its UTC day", () => {
  const s = StateDb.open(join(tmp(), "days.db"));
  s.recordListed(id(1), "2026-03-14T23:30:00-05:00", "{}", "r"); // 2026-03-15 04:30 UTC
  s.recordListed(id(2), "2026-03-15T00:00:00Z", "{}", "r");
  s.recordListed(id(3), "2026-03-15T23:59:59Z", "{}", "r");
  s.recordListed(id(4), "2026-03-16T00:00:00Z", "{}", "r");
  s.recordListed(id(5), null, "{}", "r");
  s.markArchived(id(2), archivedAs("k2"));
  s.markStatus(id(3), "failed", { kind: "permanent", message: "x" });
  assert.deepEqual(s.knownOnDay("2026-03-15"), {
    archived: 1,
    pending: 1,
    not_ready: 0,
    no_recording: 0,
    failed: 1,
  });
  assert.equal(
    Object.values(s.knownOnDay("2026-03-14")).reduce((a, b) => a + b),
    0,
  );
  s.close();
});
