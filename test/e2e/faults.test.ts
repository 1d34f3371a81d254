/**
 * Fault injection: the CLI against the simulator's faults and s3rver. After every scenario: every recording
 * byte-exact, one object per recording, no multipart upload left open, and state that tells the truth.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { existsSync, readdirSync } from "node:fs";
import { collect, sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { expectedSha256 } from "../../simulator/data.js";

const MiB = 1024 * 1024;

/** Figures for the README's reliability section, printed when the suite ends. */
const faultsBySim = new Map<object, number>();
const figures = { recordingsChecked: 0, kills: 0, lost: 0 };
after(() => {
  const faults = [...faultsBySim.values()].reduce((a, b) => a + b, 0);
  console.log(
    `# fault-injection figures: ${faults} faults injected, ${figures.kills} SIGKILLs, ` +
      `${figures.recordingsChecked} recordings checked byte-exact, ${figures.lost} lost`,
  );
});

/** Everything the archive promises, checked against the simulator's truth. */
async function assertArchiveIntact(rig: Rig, prefix = ""): Promise<number> {
  const ready = rig.sim.calls.filter((c) => c.recording.hasRecording && c.recording.ready);
  faultsBySim.set(
    rig.sim,
    Object.values(rig.sim.stats.faultsInjected).reduce((a, b) => a + b, 0),
  );
  figures.recordingsChecked += ready.length;
  const keys = (await rig.listKeys(prefix)).filter((k) => k.startsWith(`${prefix}recordings/`));
  const media = keys.filter((k) => !k.endsWith(".json"));
  figures.lost += Math.max(0, ready.length - media.length);
  assert.equal(media.length, ready.length, "one object per ready recording");
  assert.equal(keys.length, media.length * 2, "one sidecar per object");
  const db = new Database(rig.dbPath, { readonly: true });
  try {
    for (const c of ready) {
      const key = media.find((k) => k.includes(c.id));
      assert.ok(key, `${c.id} archived`);
      const obj = await rig.getObject(key);
      const want = await expectedSha256(c);
      assert.equal(sha256(obj.body), want, `${key} byte-exact`);
      // A single PUT carries its SHA-256 as metadata; a multipart upload (never below 5 MiB) only in its sidecar.
      if (obj.metadata.sha256 !== undefined || c.recording.size < 5 * MiB)
        assert.equal(obj.metadata.sha256, want, `${key} sha256 metadata`);
      const side = JSON.parse((await rig.getObject(`${key}.json`)).body.toString()) as {
        archive: { sha256: string };
      };
      assert.equal(side.archive.sha256, want, `${key} sidecar sha256`);
      const row = db.prepare("SELECT status, sha256, bytes, key FROM calls WHERE call_id = ?").get(c.id) as
        { status: string; sha256: string; bytes: number; key: string } | undefined;
      assert.deepEqual(
        row,
        { status: "archived", sha256: want, bytes: c.recording.size, key },
        `${c.id} state`,
      );
    }
    const uploadsTracked = db.prepare("SELECT COUNT(*) FROM uploads").pluck().get();
    assert.equal(uploadsTracked, 0, "no multipart upload tracked as open");
    assert.equal(db.prepare("SELECT COUNT(*) FROM run_lock").pluck().get(), 0, "lock released");
  } finally {
    db.close();
  }
  assert.equal(await rig.multipartUploads(), 0, "no orphaned multipart uploads in the bucket");
  const spool = `${rig.dbPath}.spool`;
  assert.deepEqual(existsSync(spool) ? readdirSync(spool) : [], [], "no spooled body left on disk");
  return media.length;
}

describe("API faults", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 24, seed: 3, days: 5 } });
  });
  after(() => rig.close());

  test("a 429 storm (Retry-After as seconds and as an HTTP date) and 5xx bursts with non-JSON bodies", async () => {
    rig.sim.setFaults({
      api429: { every: 3, retryAfterSeconds: 0 },
      api5xx: { every: 5, plainText: true },
    });
    const r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.ok((s.rate_limited as number) > 0 && (s.retries as number) > 0);
    assert.equal(s.rate_limited, rig.sim.stats.rateLimited, "every 429 seen and counted");
    await assertArchiveIntact(rig);
  });

  test("Retry-After as an HTTP date pauses all workers", async () => {
    rig.sim.setFaults({ api429: { every: 4, retryAfterSeconds: 2, httpDate: true } });
    const t0 = Date.now();
    const r = await rig.run(["run", "--json", "--db", `${rig.dir}/date.db`, "--prefix", "date"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((summaryOf(r).rate_limited as number) >= 1);
    assert.ok(Date.now() - t0 >= 900, "waited until the date (second resolution)");
    rig.sim.setFaults({});
  });
});

describe("media faults", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 12, seed: 5, days: 3 } });
  });
  after(() => rig.close());

  test("expired URLs are refreshed; resets and truncated bodies are retried; 503s back off", async () => {
    rig.sim.setFaults({
      mediaExpired: { firstAttempts: 1 },
      mediaReset: { every: 3 },
      mediaTruncate: { every: 4 },
      media5xx: { every: 5 },
    });
    const r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const f = rig.sim.stats.faultsInjected;
    assert.ok(
      (f.mediaExpired ?? 0) >= 12 && (f.mediaReset ?? 0) > 0 && (f.mediaTruncate ?? 0) > 0,
      JSON.stringify(f),
    );
    assert.ok(rig.sim.stats.recordingRequests >= 24, "one refresh per recording");
    await assertArchiveIntact(rig);
  });
});

describe("large recordings: multipart, resume from the last part, abort on failure", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 2, seed: 9, days: 1, sizeBytes: 13 * MiB } });
  });
  after(() => rig.close());

  test("a reset mid-way resumes with a Range request from the last uploaded part", async () => {
    rig.sim.setFaults({ mediaReset: { firstAttempts: 1 } });
    const r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
    assert.equal(r.code, 0, r.stderr);
    await assertArchiveIntact(rig);
    // Without resume each recording costs 6.5 MiB (reset) + 13 MiB; resuming from byte 5 MiB costs 6.5 + 8.
    const sent = rig.sim.stats.mediaBytesSent;
    assert.ok(sent <= 2 * 15 * MiB, `resumed instead of restarting (${(sent / MiB).toFixed(1)} MiB sent)`);
  });

  test("a size that never matches fails the recording permanently and stores nothing", async () => {
    await rig.close();
    rig = await startRig({ calls: { count: 1, seed: 10, days: 1, sizeBytes: 11 * MiB } });
    rig.sim.setFaults({ sizeMismatch: { firstAttempts: 1000 }, mediaTruncate: { firstAttempts: 1000 } });
    const r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5", ARCHIVER_MAX_RETRIES: "2" });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(summaryOf(r).failed, 1);
    assert.deepEqual(await rig.listKeys(), [], "no object, no sidecar");
    assert.equal(await rig.multipartUploads(), 0, "the multipart upload was aborted");
    const db = new Database(rig.dbPath, { readonly: true });
    const row = db.prepare("SELECT status, error_kind, last_error FROM calls").get() as Record<
      string,
      string
    >;
    db.close();
    assert.equal(row.status, "failed");
    assert.equal(row.error_kind, "permanent");
    assert.match(row.last_error!, /size mismatch/);
  });
});

describe("bad input from the API", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 10, seed: 12, days: 2 } });
  });
  after(() => rig.close());

  test("a path-traversal call id and malformed metadata fail those calls only, with clear logs", async () => {
    rig.sim.setFaults({ badCallId: true, malformedJson: { every: 4 } });
    const r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 3, r.stderr);
    const s = summaryOf(r);
    assert.ok((s.failed as number) >= 2);
    assert.match(r.stderr, /invalid id/);
    assert.match(r.stderr, /not valid JSON/);
    for (const k of await rig.listKeys()) assert.ok(!k.includes(".."), k);
    // Fixed upstream: --retry-failed archives what failed permanently.
    rig.sim.setFaults({});
    const again = await rig.run(["run", "--json", "--retry-failed"]);
    assert.equal(again.code, 0, again.stderr);
    await assertArchiveIntact(rig);
  });
});

describe("S3 faults", () => {
  test("S3 throttling, internal errors and dropped connections on uploads are retried; nothing is lost", async () => {
    for (const sizeBytes of [200_000, 6 * MiB]) {
      const rig = await startRig({ calls: { count: 8, seed: 16, days: 2, sizeBytes } }, { faults: true });
      try {
        // Every object write counts: recordings, parts of the 6 MiB ones (5 MiB parts), sidecars.
        rig.s3.setFaults({ resetEvery: 4, internalErrorEvery: 5, slowDownEvery: 13 });
        const r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(Number(summaryOf(r).retries) >= 4, `retried (${String(summaryOf(r).retries)})`);
        rig.s3.setFaults({});
        await assertArchiveIntact(rig);
        assert.equal(await rig.multipartUploads(), 0, "no multipart upload left open");
      } finally {
        await rig.close();
      }
    }
  });

  test("S3 unreachable for a few seconds does not fail the run", async () => {
    const rig = await startRig({ calls: { count: 6, seed: 14, days: 2 } }, { faults: true });
    try {
      await rig.s3.stop();
      const child = rig.spawn(["run", "--json"]);
      const result = collect(child);
      await new Promise((r) => setTimeout(r, 2500));
      await rig.s3.start();
      const r = await result;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /retrying/);
      await assertArchiveIntact(rig);
    } finally {
      await rig.close();
    }
  });
});

describe("stopping, killing, and concurrent runs", () => {
  test("SIGTERM stops within seconds, exits 143 with a summary, and the next run finishes", async () => {
    const rig = await startRig({ calls: { count: 8, seed: 15, days: 2, sizeBytes: 6 * MiB } });
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 2 * MiB });
      const child = rig.spawn(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5", ARCHIVER_CONCURRENCY: "2" });
      const result = collect(child);
      // Signal once the run is transferring (its handler is installed long before the first media request);
      // a fixed sleep raced the process's start on a loaded machine.
      const started = Date.now();
      while (rig.sim.stats.mediaRequests === 0 && Date.now() - started < 30_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(rig.sim.stats.mediaRequests > 0, "the run reached its first media request");
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      child.kill("SIGTERM");
      const r = await result;
      assert.ok(Date.now() - t0 < 10_000, "stopped within 10 s");
      assert.equal(r.code, 143, r.stderr);
      assert.equal(summaryOf(r).outcome, "interrupted");
      // An upload with stored parts is kept for the next run to continue; every one left in S3 is tracked.
      const handle = new Database(rig.dbPath, { readonly: true });
      const tracked = handle.prepare("SELECT COUNT(*) FROM uploads").pluck().get();
      handle.close();
      assert.equal(await rig.multipartUploads(), tracked, "no untracked multipart upload left in S3");
      rig.sim.setFaults({});
      const again = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
      assert.equal(again.code, 0, again.stderr);
      await assertArchiveIntact(rig);
    } finally {
      await rig.close();
    }
  });

  test("a second run on a held state DB is refused with exit 1 and a clear message", async () => {
    const rig = await startRig({ calls: { count: 4, seed: 16, days: 2, sizeBytes: 4 * MiB } });
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 1 * MiB });
      const first = rig.spawn(["run", "--json"]);
      const firstResult = collect(first);
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const second = await rig.run(["run", "--json"]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /another run holds the state DB/);
      assert.ok(Date.now() - t0 < 5000, "refused within seconds");
      rig.sim.setFaults({});
      assert.equal((await firstResult).code, 0);
    } finally {
      await rig.close();
    }
  });

  test("SIGKILL at random moments: the next run completes everything, re-downloading only what was unfinished", async () => {
    const trials = Number(process.env.KILL_TRIALS ?? 8);
    const rig = await startRig({
      calls: { count: 10, seed: 17, days: 3, sizeBytes: { min: 200_000, max: 7 * MiB } },
    });
    let kills = 0;
    try {
      const env = { ARCHIVER_PART_SIZE_MB: "5", ARCHIVER_CONCURRENCY: "3" };
      rig.sim.setFaults({ mediaSlowBytesPerSec: 3 * MiB }); // runs last ~4 s: most kills land mid-run
      for (let t = 0; t < trials; t++) {
        // Each trial starts from scratch in its own prefix and state DB.
        const prefix = `trial${t}/`;
        const db = `${rig.dir}/trial${t}.db`;
        const child = rig.spawn(["run", "--json", "--db", db, "--prefix", prefix], env);
        const result = collect(child);
        await new Promise((r) => setTimeout(r, 200 + Math.floor(Math.random() * 2500)));
        if (child.exitCode === null) {
          child.kill("SIGKILL");
          kills++;
          figures.kills++;
        }
        await result;
        // Killed before it even created its state DB: nothing was archived.
        const archivedBefore = new Set<string>();
        if (existsSync(db)) {
          const handle = new Database(db, { readonly: true });
          // Killed while creating it: the file exists, its first migration never committed.
          const migrated = handle
            .prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'")
            .pluck()
            .get();
          if (migrated)
            for (const id of handle
              .prepare("SELECT call_id FROM calls WHERE status = 'archived'")
              .pluck()
              .all())
              archivedBefore.add(String(id));
          handle.close();
        }
        const mediaBefore = { ...rig.sim.stats.mediaRequestsByCall };
        const r = await rig.run(["run", "--json", "--db", db, "--prefix", prefix], env);
        assert.equal(r.code, 0, r.stderr);
        for (const id of archivedBefore)
          assert.equal(
            rig.sim.stats.mediaRequestsByCall[id],
            mediaBefore[id],
            `${id} was not downloaded again`,
          );
        const realDb = rig.dbPath;
        (rig as { dbPath: string }).dbPath = db;
        await assertArchiveIntact(rig, prefix);
        (rig as { dbPath: string }).dbPath = realDb;
      }
      assert.ok(kills >= Math.floor(trials / 2), `killed mid-run in ${kills}/${trials} trials`);
    } finally {
      await rig.close();
    }
  });
});
