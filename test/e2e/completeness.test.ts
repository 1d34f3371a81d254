/**
 * Completeness against the source, end to end: the built CLI against the simulator (which adds calls late, with
 * old call times, and deletes them) and S3. Late calls are archived by the next incremental run, `verify --source`
 * names a short day and passes once it is archived, a day that lost calls upstream is reported (and nothing is
 * deleted), and the check costs one list request a day (counted at the simulator), none with
 * ARCHIVER_COMPLETENESS_DAYS=0.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startRig, summaryOf, type Rig } from "../helpers/env.js";
import type { SimCall } from "../../simulator/data.js";
import type { CompletenessFigures } from "../../src/observe/tally.js";

const DAY_MS = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const addDays = (d: string, n: number) => day(Date.parse(`${d}T00:00:00Z`) + n * DAY_MS);
const keyOf = (c: SimCall) => {
  const [y, m, d] = day(Date.parse(c.recording.recording_start_time ?? c.call_time)).split("-");
  return `recordings/${y}/${m}/${d}/${c.id}.${c.recording.content_type === "video/mp4" ? "mp4" : "m4a"}`;
};
/** A list request for one day's count (page_size=1), and for a day (or window) listed in full. */
const countQuery = (d: string) => `page=1&page_size=1&start_date=${d}&end_date=${d}`;
const listQuery = (from: string, to: string) => `page=1&page_size=100&start_date=${from}&end_date=${to}`;

type Figures = CompletenessFigures;

describe("completeness against the source, per UTC day", () => {
  let rig: Rig;
  const today = day(Date.now());
  const yesterday = addDays(today, -1);
  /** Run incrementally; the list queries it made at the simulator, and its summary. */
  const run = async (env: Record<string, string> = {}, args: string[] = []) => {
    const before = rig.sim.stats.listQueries.length;
    const r = await rig.run(["run", "--json", ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return { s: summaryOf(r), queries: rig.sim.stats.listQueries.slice(before), stderr: r.stderr };
  };
  const verifySource = async (args: string[] = []) => {
    const r = await rig.run(["verify", "--source", "--json", ...args]);
    return { code: r.code, res: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
  };

  before(async () => {
    rig = await startRig({ calls: { count: 24, seed: 22, days: 10, noRecordingEvery: 8 } });
    const first = await run();
    assert.equal(first.s.archived, 21);
    assert.equal(first.s.no_recording, 3);
    assert.equal(first.s.completeness, undefined, "a first run lists everything: nothing to check");
  });
  after(() => rig.close());

  test("ARCHIVER_COMPLETENESS_DAYS=0 changes nothing: the run lists its window, one request", async () => {
    const { s, queries } = await run({ ARCHIVER_COMPLETENESS_DAYS: "0" });
    assert.deepEqual(queries, [listQuery(yesterday, today)]);
    assert.equal(s.completeness, undefined);
    assert.equal(s.api_requests, 1);
  });

  test("the check costs one request a day: 30 days checked, 30 requests", async () => {
    const { s, queries } = await run();
    const counts = queries.filter((q) => q.includes("page_size=1&"));
    const days = Array.from({ length: 30 }, (_, i) => addDays(yesterday, i - 30));
    assert.deepEqual(counts.sort(), days.map(countQuery).sort(), "the 30 days before the window, once each");
    assert.deepEqual(
      queries.filter((q) => !counts.includes(q)),
      [listQuery(yesterday, today)],
      "no day listed in full: no gap",
    );
    assert.equal(s.api_requests, 31);
    assert.deepEqual(s.completeness as Figures, {
      days_checked: 30,
      gap_days: 0,
      gaps_closed: 0,
      missing_calls: 0,
      oldest_gap_day: null,
      fewer_at_source_days: [],
    });
    process.stdout.write(
      `# figures: 30 days checked, ${counts.length} count requests, ${queries.length} list requests in all\n`,
    );
  });

  test("calls that appear 5 days after their call time are archived by the next incremental run", async () => {
    const late = rig.sim.addCalls(3, { callTime: new Date(Date.now() - 5 * DAY_MS) });
    const lateDay = late[0]!.call_time.slice(0, 10);
    // Without the check, the watermark and its overlap never reach them.
    const off = await run({ ARCHIVER_COMPLETENESS_DAYS: "0" });
    assert.equal(off.s.archived, 0, "without the check a late call is never listed");
    for (const c of late) assert.equal(await rig.head(keyOf(c)), null);

    const { s, queries } = await run();
    assert.equal(s.archived, 3);
    for (const c of late) assert.equal((await rig.head(keyOf(c)))?.size, c.recording.size, c.id);
    assert.ok(queries.includes(listQuery(lateDay, lateDay)), "the gap day listed in full");
    assert.equal(queries.length, 30 + 1 + 1, "30 counts, the window, one gap day");
    const c = s.completeness as Figures;
    assert.equal(c.days_checked, 30);
    assert.equal(c.gap_days, 1);
    assert.equal(c.gaps_closed, 1);
    assert.equal(c.missing_calls, 0);
    assert.equal((await run()).s.archived, 0, "closed: the next run finds nothing");
  });

  test("verify --source names a day with a missing call (exit 3), and passes once it is archived", async () => {
    const [late] = rig.sim.addCalls(1, { callTime: new Date(Date.now() - 3 * DAY_MS) });
    const lateDay = late!.call_time.slice(0, 10);
    const short = await verifySource();
    assert.equal(short.code, 3, short.stderr);
    assert.equal(short.res.first_day, addDays(yesterday, -29));
    assert.equal(short.res.last_day, yesterday);
    assert.equal(short.res.days_checked, 30);
    assert.equal(short.res.missing_calls, 1);
    const days = short.res.short_days as { day: string; source: number; archived: number }[];
    assert.deepEqual(
      days.map((d) => d.day),
      [lateDay],
    );
    assert.equal(
      days[0]!.source,
      days[0]!.archived + 1 + (days[0] as unknown as { no_recording: number }).no_recording,
    );
    assert.match(short.stderr, new RegExp(`${lateDay}: the source counts`));

    await run();
    const ok = await verifySource();
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.res.missing_calls, 0);
    assert.deepEqual(ok.res.short_days, []);
    // A window given: one request a day, that many days.
    const window = await verifySource(["--since", addDays(today, -9), "--until", today]);
    assert.equal(window.res.days_checked, 10);

    const db = new Database(rig.dbPath, { readonly: true });
    const rows = db
      .prepare(
        "SELECT outcome, window_start, window_end FROM runs WHERE command = 'verify-source' ORDER BY rowid",
      )
      .all();
    db.close();
    assert.deepEqual(rows, [
      { outcome: "failures", window_start: addDays(yesterday, -29), window_end: yesterday },
      { outcome: "ok", window_start: addDays(yesterday, -29), window_end: yesterday },
      { outcome: "ok", window_start: addDays(today, -9), window_end: today },
    ]);
  });

  test("a call not ready: the gauge, the oldest gap's day and status show it until it is archived", async () => {
    const [slow] = rig.sim.addCalls(1, { callTime: new Date(Date.now() - 4 * DAY_MS), ready: false });
    const slowDay = slow!.call_time.slice(0, 10);
    const metricsFile = join(rig.dir, "metrics.prom");
    const { s } = await run({}, ["--metrics-file", metricsFile]);
    assert.equal(s.not_ready, 1);
    const c = s.completeness as Figures;
    assert.equal(c.gaps_closed, 1, "listed: the archive knows the call");
    assert.equal(c.missing_calls, 1, "but does not hold its recording");
    assert.equal(c.oldest_gap_day, slowDay);
    const metrics = readFileSync(metricsFile, "utf8");
    assert.match(metrics, /^envoy_archiver_source_missing_calls 1$/m);
    assert.match(
      metrics,
      new RegExp(
        `^envoy_archiver_source_oldest_gap_day_timestamp_seconds ${Date.parse(`${slowDay}T00:00:00Z`) / 1000}$`,
        "m",
      ),
    );
    const status = await rig.run(["status", "--json"]);
    const report = JSON.parse(status.stdout) as { completeness: Figures & { days: { day: string }[] } };
    assert.equal(report.completeness.missing_calls, 1);
    assert.equal(report.completeness.oldest_gap_day, slowDay);
    assert.deepEqual(
      report.completeness.days.map((d) => d.day),
      [slowDay],
    );
    const text = await rig.run(["status"]);
    assert.match(
      text.stdout,
      new RegExp(`calls at the source not in the archive +1 \\(oldest day ${slowDay}\\)`),
    );

    rig.sim.setReady(slow!.id, true);
    const after = await run({}, ["--metrics-file", metricsFile]);
    assert.equal(after.s.archived, 1);
    assert.equal((after.s.completeness as Figures).missing_calls, 0);
    assert.match(readFileSync(metricsFile, "utf8"), /^envoy_archiver_source_missing_calls 0$/m);
    assert.match(
      readFileSync(metricsFile, "utf8"),
      /^envoy_archiver_source_oldest_gap_day_timestamp_seconds 0$/m,
    );
  });

  test("a day whose source count drops is reported, and nothing is deleted from the archive", async () => {
    const gone = rig.sim.calls.find(
      (c) =>
        c.recording.hasRecording &&
        c.call_time.slice(0, 10) < yesterday &&
        c.call_time.slice(0, 10) > addDays(today, -9),
    )!;
    const goneDay = gone.call_time.slice(0, 10);
    rig.sim.removeCalls([gone.id]);
    const v = await verifySource();
    assert.equal(v.code, 0, "nothing is short");
    assert.deepEqual(
      (v.res.fewer_at_source as { day: string }[]).map((d) => d.day),
      [goneDay],
    );
    assert.match(v.stderr, new RegExp(`${goneDay}: the source counts .* fewer than`));

    const { s, stderr } = await run();
    assert.deepEqual((s.completeness as Figures).fewer_at_source_days, [goneDay]);
    assert.match(stderr, /deleted upstream/);
    assert.equal((await rig.head(keyOf(gone)))?.size, gone.recording.size, "the archived copy is kept");
    const db = new Database(rig.dbPath, { readonly: true });
    assert.equal(db.prepare("SELECT status FROM calls WHERE call_id = ?").pluck().get(gone.id), "archived");
    db.close();
  });
});
