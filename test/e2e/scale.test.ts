/**
 * Unattended and at scale: the scheduled worker with metrics, a 4-shard backfill as 4 processes, and rebuilding
 * a lost state DB from S3 without re-uploading.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { rmSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { collect, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { listObjects } from "../../src/s3/listing.js";
import { testSink } from "../helpers/sink.js";

const MiB = 1024 * 1024;

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
  return line ? Number(line.split(" ").pop()) : NaN;
}

describe("worker", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 6, seed: 41, days: 2 } });
  });
  after(() => rig.close());

  test("runs on schedule, skips an overlapping tick, serves /metrics and /healthz, stops on SIGTERM", async () => {
    rig.sim.setFaults({ mediaSlowBytesPerSec: 100_000 }); // the first run outlasts a 1-second tick
    const child = rig.spawn(["worker", "--cron", "* * * * * *", "--run-on-start", "--metrics-port", "0"], {
      ARCHIVER_CONCURRENCY: "2",
    });
    const result = collect(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const url = await waitFor("metrics address", () => /"metrics":"(http:[^"]+?)\/?"/.exec(stderr)?.[1]);
    await waitFor("a skipped tick", () => (/tick skipped/.test(stderr) ? true : undefined));
    rig.sim.setFaults({});
    // Wait for two finished runs: the slow first one and a scheduled one after it.
    const metrics = await waitFor("two runs", async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return metricValue(text, 'envoy_archiver_runs_total{outcome="ok"}') >= 2 ? text : undefined;
    });
    const ready = rig.sim.calls.filter((c) => c.recording.ready && c.recording.hasRecording).length;
    assert.equal(metricValue(metrics, 'envoy_archiver_recordings_total{outcome="archived"}'), ready);
    assert.ok(metricValue(metrics, "envoy_archiver_ticks_skipped_total") >= 1);
    assert.ok(metricValue(metrics, 'envoy_archiver_api_requests_total{status="200"}') > ready);
    assert.ok(metricValue(metrics, "envoy_archiver_last_success_timestamp_seconds") > Date.now() / 1000 - 60);
    assert.ok(metricValue(metrics, "envoy_archiver_transfer_seconds_count") === ready);
    const health = (await (await fetch(`${url}/healthz`)).json()) as {
      ok: boolean;
      last_run: { outcome: string };
    };
    assert.equal(health.ok, true);
    child.kill("SIGTERM");
    const r = await result;
    assert.equal(r.code, 143, stderr);
    assert.deepEqual((await rig.listKeys()).filter((k) => !k.endsWith(".json")).length, ready);
  });

  test("a worker's tick archives a call that appeared days after its call time (the completeness check)", async () => {
    const [late] = rig.sim.addCalls(1, { callTime: new Date(Date.now() - 5 * 86_400_000) });
    const child = rig.spawn(["worker", "--cron", "* * * * * *", "--metrics-port", "0"]);
    const result = collect(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const url = await waitFor("metrics address", () => /"metrics":"(http:[^"]+?)\/?"/.exec(stderr)?.[1]);
    const metrics = await waitFor("the late call archived", async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return metricValue(text, 'envoy_archiver_recordings_total{outcome="archived"}') >= 1 ? text : undefined;
    });
    child.kill("SIGTERM");
    assert.equal((await result).code, 143, stderr);
    assert.equal(metricValue(metrics, "envoy_archiver_source_missing_calls"), 0);
    assert.equal(metricValue(metrics, "envoy_archiver_source_oldest_gap_day_timestamp_seconds"), 0);
    const keys = await rig.listKeys();
    assert.ok(
      keys.some((k) => k.endsWith(`/${late!.id}.m4a`)),
      `${late!.id} archived by a tick`,
    );
  });

  test("worker: a server that cannot list multipart uploads is named once per process, not on every tick", async () => {
    const quiet = await startRig({ calls: { count: 2, seed: 43 } }, { listUploads: "unsupported" });
    try {
      const child = quiet.spawn(["worker", "--cron", "* * * * * *", "--run-on-start", "--metrics-port", "0"]);
      const result = collect(child);
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const url = await waitFor("metrics address", () => /"metrics":"(http:[^"]+?)\/?"/.exec(stderr)?.[1]);
      await waitFor("three runs", async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return metricValue(text, 'envoy_archiver_runs_total{outcome="ok"}') >= 3 ? true : undefined;
      });
      child.kill("SIGTERM");
      await result;
      const said = stderr.match(/the S3 endpoint cannot list multipart uploads/g) ?? [];
      assert.equal(said.length, 1, stderr);
      assert.match(
        stderr,
        /cannot list multipart uploads: untracked leftovers are not swept \(said once per process\)/,
      );
    } finally {
      await quiet.close();
    }
  });

  test("a one-shot run writes the same metrics to a textfile", async () => {
    const file = join(rig.dir, "archiver.prom");
    const r = await rig.run([
      "run",
      "--json",
      "--metrics-file",
      file,
      "--db",
      join(rig.dir, "m.db"),
      "--prefix",
      "m",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(file, "utf8");
    assert.equal(
      metricValue(text, 'envoy_archiver_recordings_total{outcome="archived"}'),
      summaryOf(r).archived,
    );
    assert.equal(metricValue(text, 'envoy_archiver_runs_total{outcome="ok"}'), 1);
  });

  test("without a TTY, progress is logged as records every ARCHIVER_PROGRESS_INTERVAL seconds; --quiet silences it", async () => {
    rig.sim.setFaults({ mediaSlowBytesPerSec: 100_000 });
    const r = await rig.run(["run", "--json", "--db", join(rig.dir, "p.db"), "--prefix", "p"], {
      ARCHIVER_PROGRESS_INTERVAL: "1",
    });
    assert.equal(r.code, 0, r.stderr);
    const records = r.stderr.split("\n").filter((l) => l.includes('"msg":"progress"'));
    assert.ok(records.length >= 1, r.stderr);
    const p = JSON.parse(records[0]!) as { progress: Record<string, unknown> };
    for (const k of [
      "listed",
      "done",
      "total",
      "archived",
      "bytes",
      "mib_per_s",
      "eta_s",
      "retries",
      "rate_limited",
    ])
      assert.ok(k in p.progress, k);
    assert.ok(!r.stderr.includes("\r"), "no TTY line when not a TTY");
    const q = await rig.run(["run", "--quiet", "--db", join(rig.dir, "q.db"), "--prefix", "q"], {
      ARCHIVER_PROGRESS_INTERVAL: "1",
    });
    assert.ok(!q.stderr.includes('"msg":"progress"'));
    rig.sim.setFaults({});
  });
});

describe("sharded backfill", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 60, seed: 43, days: 10 } });
  });
  after(() => rig.close());

  test("4 shards as 4 processes cover every call exactly once", async () => {
    const since = rig.sim.calls.map((c) => c.call_time.slice(0, 10)).sort()[0]!;
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        rig.run(["run", "--json", "--since", since, "--db", join(rig.dir, `shard-${i}.db`)], {
          ARCHIVER_SHARD_COUNT: "4",
          JOB_COMPLETION_INDEX: String(i),
        }),
      ),
    );
    const summaries = results.map((r) => {
      assert.equal(r.code, 0, r.stderr);
      return summaryOf(r);
    });
    const archived = summaries.reduce((n, s) => n + (s.archived as number), 0);
    assert.equal(archived, 60, "every call archived");
    for (const s of summaries) {
      assert.ok((s.archived as number) > 5, "work is spread");
      assert.equal((s.archived as number) + (s.other_shards as number), 60);
    }
    const media = (await rig.listKeys()).filter((k) => !k.endsWith(".json"));
    assert.equal(media.length, 60);
    for (const c of rig.sim.calls)
      assert.equal(rig.sim.stats.mediaRequestsByCall[c.id], 1, `${c.id} downloaded exactly once`);
  });
});

describe("S3 is the source of truth", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({
      calls: { count: 15, seed: 47, days: 4, sizeBytes: { min: 100_000, max: 7 * MiB } },
    });
  });
  after(() => rig.close());

  test("after losing the state DB, reconcile then run uploads nothing", async () => {
    let r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
    assert.equal(r.code, 0, r.stderr);
    rmSync(rig.dbPath);
    rmSync(`${rig.dbPath}-wal`, { force: true });
    rmSync(`${rig.dbPath}-shm`, { force: true });
    r = await rig.run(["reconcile", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { objects: 15, adopted: 15, unchanged: 0, skipped: 0, errors: 0 });
    const media = { ...rig.sim.stats.mediaRequestsByCall };
    const puts = rig.sim.stats.mediaRequests;
    r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.archived, 0);
    assert.equal(s.already_archived, 15);
    assert.equal(rig.sim.stats.mediaRequests, puts, "nothing downloaded");
    assert.deepEqual(rig.sim.stats.mediaRequestsByCall, media);
    r = await rig.run(["verify", "--deep", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).ok, 15);
  });

  test("ARCHIVER_REBUILD_STATE: a shard whose state DB is deleted rebuilds it from the bucket, then downloads nothing", async () => {
    const db = join(rig.dir, "shard.db");
    const env = { ARCHIVER_PART_SIZE_MB: "5", ARCHIVER_REBUILD_STATE: "true" };
    let r = await rig.run(["run", "--json", "--db", db, "--shard", "1/2"], env);
    assert.equal(r.code, 0, r.stderr);
    const mine = Number(summaryOf(r).archived) + Number(summaryOf(r).already_archived);
    assert.ok(mine > 0 && mine < 15, `shard 1/2 holds ${mine} of 15`);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
    const media = rig.sim.stats.mediaRequests;
    r = await rig.run(["run", "--json", "--db", db, "--shard", "1/2"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /state DB rebuilt from the bucket before the run/);
    const s = summaryOf(r);
    assert.equal(s.archived, 0);
    assert.equal(s.already_archived, mine, "every call of the shard known from the bucket");
    assert.equal(rig.sim.stats.mediaRequests, media, "nothing downloaded");
    assert.doesNotMatch(
      r.stderr,
      /adopted, not uploaded/,
      "known from the rebuilt state, not found one by one",
    );
  });

  test("without reconcile, a run on a fresh DB adopts objects whose SHA-256 matches instead of overwriting", async () => {
    const keysBefore = await rig.listKeys();
    const r = await rig.run(["run", "--json", "--db", join(rig.dir, "fresh.db")], {
      ARCHIVER_PART_SIZE_MB: "5",
    });
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.archived, 0, "nothing re-uploaded");
    assert.equal(s.already_archived, 15);
    assert.match(r.stderr, /adopted, not uploaded/);
    assert.deepEqual(await rig.listKeys(), keysBefore);
  });
});

describe("past a thousand keys: verify and reconcile by listing", () => {
  let rig: Rig;
  /** S3 requests by operation, as the server saw them. */
  let requests: Record<string, number> = {};
  before(async () => {
    rig = await startRig(
      { calls: { count: 505, seed: 53, days: 4, sizeBytes: 2_000 } },
      {
        onRequest: (q) => {
          // The audit trail's head (a PUT and a HEAD after each command) is counted by audit.test.ts.
          if (q.path.includes("/_audit/")) return;
          const onKey = /^\/[^/]+\/./.test(q.path);
          const op =
            q.method === "HEAD" && onKey
              ? "head"
              : q.method === "GET" && !onKey && q.query["list-type"] === "2"
                ? "list"
                : q.method === "GET" && onKey
                  ? "get"
                  : null;
          if (op) requests[op] = (requests[op] ?? 0) + 1;
        },
      },
    );
    const r = await rig.run(["run", "--json", "--quiet"], { ARCHIVER_CONCURRENCY: "16", LOG_LEVEL: "warn" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).archived, 505);
  });
  after(() => rig.close());

  const cli = async (args: string[]) => {
    requests = {};
    const r = await rig.run([...args, "--json"], { LOG_LEVEL: "warn" });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, number>;
  };

  test("1,010 keys listed in two pages; verify proves all 505 without a HEAD, a window from its first day", async () => {
    assert.equal((await rig.listKeys()).length, 1010);
    assert.deepEqual(await cli(["verify"]), { checked: 505, ok: 505, missing: 0, mismatched: 0, errors: 0 });
    assert.deepEqual(requests, { list: 2 });
    const days = [
      ...new Set(rig.sim.calls.map((c) => (c.recording.recording_start_time ?? c.call_time).slice(0, 10))),
    ];
    const since = days.sort()[2]!;
    const inWindow = rig.sim.calls.filter(
      (c) => (c.recording.recording_start_time ?? c.call_time) >= since,
    ).length;
    assert.ok(inWindow > 0 && inWindow < 505);
    assert.equal((await cli(["verify", "--since", since])).ok, inWindow);
    assert.deepEqual(Object.keys(requests), ["list"], "no HEAD");
  });

  test("a listing told where to stop asks for no page past it", async () => {
    Object.assign(process.env, rig.s3.env, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" });
    const sink = testSink(rig.bucket);
    try {
      const keys = await rig.listKeys("recordings/");
      const read = async (stopAfter?: string) => {
        requests = {};
        const out: string[] = [];
        for await (const o of listObjects(sink, "recordings/", { startAfter: "recordings/", stopAfter })) {
          out.push(o.key);
          if (stopAfter !== undefined && o.key > stopAfter) break;
        }
        return out;
      };
      assert.deepEqual(await read(), keys, "every key, in order");
      assert.deepEqual(requests, { list: 2 });
      assert.equal((await read(keys[500])).length, 502);
      assert.deepEqual(requests, { list: 1 }, "the first page passes the stop: no second page asked for");
      assert.equal((await read(keys[1005])).length, 1007);
      assert.deepEqual(requests, { list: 2 });
    } finally {
      sink.close();
    }
  });

  test("reconcile: nothing asked of an intact state; a lost one rebuilt from the listing and the sidecars, equal to the original", async () => {
    assert.deepEqual(await cli(["reconcile"]), {
      objects: 505,
      adopted: 0,
      unchanged: 505,
      skipped: 0,
      errors: 0,
    });
    assert.deepEqual(requests, { list: 2 });
    const rebuilt = join(rig.dir, "rebuilt.db");
    assert.deepEqual(await cli(["reconcile", "--db", rebuilt]), {
      objects: 505,
      adopted: 505,
      unchanged: 0,
      skipped: 0,
      errors: 0,
    });
    assert.deepEqual(requests, { list: 2, get: 505 }, "one sidecar each, no HEAD");
    const manifest = async (db: string) => {
      const out = join(rig.dir, `${db.replace(/\W/g, "")}.jsonl`);
      const r = await rig.run(["manifest", "--format", "jsonl", "--out", out, "--db", db]);
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(out, "utf8")
        .trimEnd()
        .split("\n")
        .map((l) => {
          const { call_id, key, bytes, sha256, etag, content_type } = JSON.parse(l) as Record<
            string,
            unknown
          >;
          return { call_id, key, bytes, sha256, etag, content_type };
        });
    };
    assert.deepEqual(await manifest(rebuilt), await manifest(rig.dbPath));
    assert.deepEqual(await cli(["verify", "--db", rebuilt]), {
      checked: 505,
      ok: 505,
      missing: 0,
      mismatched: 0,
      errors: 0,
    });
    assert.deepEqual(requests, { list: 2 });
  });
});
