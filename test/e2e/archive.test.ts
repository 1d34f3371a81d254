/**
 * The core promise, end to end: the built CLI against the Envoy simulator and s3rver over real HTTP.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { logsOf, sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { expectedSha256 } from "../../simulator/data.js";

function dayOf(iso: string): string {
  return new Date(iso).toISOString().slice(0, 10);
}

describe("archive run against the simulator and S3", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({
      calls: { count: 30, seed: 7, days: 10, notReadyEvery: 10, noRecordingEvery: 9, videoEvery: 4 },
      organizationId: "org_test",
    });
  });
  after(() => rig.close());

  test("first run archives every ready recording byte-exact, with metadata and sidecars", async () => {
    const r = await rig.run(["run", "--json"], { ENVOY_ORGANIZATION_ID: "org_test" });
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    const calls = rig.sim.calls;
    const ready = calls.filter((c) => c.recording.hasRecording && c.recording.ready);
    const notReady = calls.filter((c) => c.recording.hasRecording && !c.recording.ready);
    const none = calls.filter((c) => !c.recording.hasRecording);
    assert.ok(ready.length > 0 && notReady.length > 0 && none.length > 0, "fixture covers every case");
    assert.equal(s.listed, calls.length);
    assert.equal(s.archived, ready.length);
    assert.equal(s.not_ready, notReady.length);
    assert.equal(s.no_recording, none.length);
    assert.equal(s.failed, 0);
    for (const k of [
      "run_id",
      "listed",
      "archived",
      "already_archived",
      "not_ready",
      "no_recording",
      "failed",
      "bytes",
      "duration_ms",
    ])
      assert.ok(k in s, `summary has ${k}`);

    const keys = await rig.listKeys();
    assert.equal(keys.length, ready.length * 2, "one object and one sidecar per ready recording");
    let bytes = 0;
    for (const c of ready) {
      const ext = c.recording.content_type === "video/mp4" ? "mp4" : "m4a";
      const start = c.recording.recording_start_time ?? c.call_time;
      const [y, m, d] = dayOf(start).split("-");
      const key = `recordings/${y}/${m}/${d}/${c.id}.${ext}`;
      const obj = await rig.getObject(key);
      const want = await expectedSha256(c);
      assert.equal(sha256(obj.body), want, `${key} is byte-exact`);
      assert.equal(obj.body.length, c.recording.size);
      assert.equal(obj.contentType, c.recording.content_type);
      assert.equal(obj.metadata["sha256"], want);
      assert.equal(obj.metadata["call-id"], c.id);
      bytes += obj.body.length;
      const sidecar = JSON.parse((await rig.getObject(`${key}.json`)).body.toString()) as Record<
        string,
        Record<string, unknown>
      >;
      assert.equal(sidecar.call!.id, c.id);
      assert.equal(sidecar.archive!.sha256, want);
      assert.equal(sidecar.archive!.bytes, c.recording.size);
      assert.equal(sidecar.archive!.key, key);
      assert.ok(!("url" in sidecar.recording!), "sidecar never stores the signed URL");
      assert.ok(typeof sidecar.archive!.archiver_version === "string");
    }
    assert.equal(s.bytes, bytes);
    assert.deepEqual(rig.sim.stats.orgHeaders, ["org_test"], "X-Organization-ID sent");

    const db = new Database(rig.dbPath, { readonly: true });
    const rows = db.prepare("SELECT status, COUNT(*) n FROM calls GROUP BY status").all() as {
      status: string;
      n: number;
    }[];
    db.close();
    const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    assert.deepEqual(byStatus, {
      archived: ready.length,
      not_ready: notReady.length,
      no_recording: none.length,
    });
  });

  test("a second run downloads and uploads nothing", async () => {
    const mediaBefore = rig.sim.stats.mediaRequests;
    const keysBefore = await rig.listKeys();
    // Re-list the whole history (overlap of a year), so every archived call is seen again.
    const r = await rig.run(["run", "--json"], { ARCHIVER_OVERLAP_DAYS: "365" });
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.archived, 0);
    assert.equal(s.listed, rig.sim.calls.length);
    assert.equal(s.already_archived, keysBefore.length / 2);
    assert.equal(rig.sim.stats.mediaRequests, mediaBefore, "no media fetched");
    assert.deepEqual(await rig.listKeys(), keysBefore);
  });

  test("logs never contain the API key or a signed URL's query string", async () => {
    const r = await rig.run(["run", "--json"], { LOG_LEVEL: "trace", ARCHIVER_OVERLAP_DAYS: "365" });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(logsOf(r).length > 0);
    assert.ok(!r.stderr.includes(rig.sim.apiKey), "API key leaked");
    assert.ok(!/sig=[0-9a-f]{8}/.test(r.stderr), "signed URL leaked");
  });
});

describe("backfill windows, readiness and errors", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 40, seed: 11, days: 20 } });
  });
  after(() => rig.close());

  test("--since/--until archives exactly the calls in that window", async () => {
    const days = [...new Set(rig.sim.calls.map((c) => dayOf(c.call_time)))].sort();
    const since = days[3]!;
    const until = days[8]!;
    const inWindow = rig.sim.calls.filter((c) => dayOf(c.call_time) >= since && dayOf(c.call_time) <= until);
    const r = await rig.run(["run", "--since", since, "--until", until, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.listed, inWindow.length);
    assert.equal(s.archived, inWindow.length);
    const ids = new Set(
      (await rig.listKeys())
        .filter((k) => !k.endsWith(".json"))
        .map((k) => k.split("/").pop()!.split(".")[0]),
    );
    assert.deepEqual([...ids].sort(), inWindow.map((c) => c.id).sort());
  });

  test("a recording that becomes ready is archived by a later run", async () => {
    const pending = rig.sim.addCalls(1, { ready: false })[0]!;
    let r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((summaryOf(r).not_ready as number) >= 1);
    rig.sim.setReady(pending.id, true);
    r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const keys = await rig.listKeys();
    assert.ok(keys.some((k) => k.includes(pending.id) && !k.endsWith(".json")));
  });

  test("a rejected API key stops with exit 1 and a clear message", async () => {
    const r = await rig.run(["run", "--json"], { ENVOY_API_KEY: "envai_live_wrong" });
    assert.equal(r.code, 1);
    assert.match(r.stderr + r.stdout, /API key/);
    assert.ok(!(r.stderr + r.stdout).includes("envai_live_wrong"), "the rejected key is not echoed");
  });

  test("an expired JWT stops with exit 1 and suggests an API key", async () => {
    const r = await rig.run(["run", "--json"], { ENVOY_API_KEY: "", ENVOY_API_TOKEN: "not-the-token" });
    assert.equal(r.code, 1);
    assert.match(r.stderr + r.stdout, /ENVOY_API_KEY/);
  });

  test("a missing bucket is fatal (exit 1)", async () => {
    const r = await rig.run(["run"], { ARCHIVER_S3_BUCKET: "no-such-bucket" });
    assert.equal(r.code, 1);
    assert.match(r.stderr + r.stdout, /does not exist/);
  });

  test("usage errors exit 2", async () => {
    assert.equal((await rig.run(["run", "--since", "2026-02-30"])).code, 2);
    assert.equal((await rig.run(["run", "--since", "2026-03-01", "--until", "2026-02-01"])).code, 2);
    assert.equal((await rig.run(["run"], { ARCHIVER_CONCURRENCY: "zero" })).code, 2);
    assert.equal((await rig.run(["run"], { ARCHIVER_S3_BUCKET: "" })).code, 2);
    assert.equal((await rig.run(["frobnicate"])).code, 2);
    const help = await rig.run(["run", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--since/);
  });

  test("refused media URLs fail that recording permanently and the run goes on (exit 3)", async () => {
    const r = await rig.run(["run", "--json", "--db", `${rig.dir}/other.db`, "--prefix", "strict"], {
      ARCHIVER_ALLOW_INSECURE_URLS: "false",
    });
    assert.equal(r.code, 3, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.archived, 0);
    assert.ok((s.failed as number) > 0);
    assert.match(r.stderr, /not allowed|refused/);
    assert.deepEqual(await rig.listKeys("strict/"), []);
  });
});
