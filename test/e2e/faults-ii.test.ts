/**
 * Real-world faults II, against the local S3 (scripts/local-s3.ts) and the simulator, the CLI run as a user runs
 * it: a clock 20 minutes off, a completion (or PUT) whose answer is lost, two writers on one key, and a source that
 * changes after it was archived. Ceph RGW runs the same cases where its behaviour matters (rgw-faults.test.ts).
 */
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { expectedSha256 } from "../../simulator/data.js";
import { collect, logsOf, sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { recorder } from "../helpers/recorder.js";

const MiB = 1024 * 1024;
const MIN = 60_000;
const PART = { ARCHIVER_PART_SIZE_MB: "5" };

/** Every ready recording is in the bucket, byte-exact, and the state says so. */
async function assertAllArchived(rig: Rig, prefix = "", dbPath = rig.dbPath): Promise<void> {
  const db = new Database(dbPath, { readonly: true });
  try {
    for (const c of rig.sim.calls.filter((x) => x.recording.hasRecording && x.recording.ready)) {
      const key = (await rig.listKeys(`${prefix}recordings/`)).find((k) => k.endsWith(`${c.id}.m4a`));
      assert.ok(key, `${c.id} archived`);
      const want = await expectedSha256(c);
      assert.equal(sha256((await rig.getObject(key)).body), want, `${key} byte-exact`);
      const row = db.prepare("SELECT status, sha256 FROM calls WHERE call_id = ?").get(c.id);
      assert.deepEqual(row, { status: "archived", sha256: want }, `${c.id} state`);
    }
  } finally {
    db.close();
  }
}

describe("a clock 20 minutes off", () => {
  for (const offset of [20 * MIN, -20 * MIN]) {
    const servers = offset > 0 ? "ahead of" : "behind";
    test(`S3 and Envoy 20 min ${servers} this machine: everything archived, by their clocks`, async () => {
      const rig = await startRig(
        {
          calls: { count: 6, seed: 41, days: 2, sizeBytes: { min: 200_000, max: 7 * MiB } },
          clockOffsetMs: offset,
        },
        { faults: true },
      );
      try {
        rig.s3.setFaults({ clock: { offsetMs: offset } });
        const r = await rig.run(["run", "--json"], PART);
        assert.equal(r.code, 0, r.stderr);
        const s = summaryOf(r);
        assert.equal(s.archived, 6);
        const clock = s.clock_offset_ms as { s3: number; api: number };
        assert.ok(Math.abs(clock.s3 - offset) < 3000, `S3 offset learned: ${clock.s3}`);
        assert.ok(Math.abs(clock.api - offset) < 3000, `API offset learned: ${clock.api}`);
        // One recording request per call: no URL looked expired (Envoy's URLs live 15 min in its own clock).
        assert.equal(rig.sim.stats.recordingRequests, 6, "no URL refreshed");
        const refused = logsOf(r).filter((l) => l.code === "clock_skew_corrected").length;
        assert.equal(refused, 1, "only the first request was refused; every later one was signed right");
        assert.match(
          r.stderr,
          new RegExp(`clock is 20 min ${offset > 0 ? "behind" : "ahead of"} the S3 server's`),
        );
        await assertAllArchived(rig);
      } finally {
        await rig.close();
      }
    });
  }

  test("the clock jumps 20 min mid-run (a VM resumed): the PUTs learn the server's time again", async () => {
    let jump = () => {};
    const rig = await startRig(
      { calls: { count: 8, seed: 49, days: 1, sizeBytes: 200_000 } },
      {
        onResponse: (req, status) => {
          if (req.method === "PUT" && req.path.endsWith(".m4a") && status === 200) jump();
        },
      },
    );
    try {
      jump = () => rig.s3.setFaults({ clock: { offsetMs: 20 * MIN } });
      rig.sim.setFaults({ mediaSlowBytesPerSec: 1 * MiB });
      const r = await rig.run(["run", "--json"], { ARCHIVER_CONCURRENCY: "2" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 8);
      const corrected = logsOf(r).filter(
        (l) => l.code === "clock_skew_corrected" && /PutObject|put /.test(String(l.what)),
      );
      assert.ok(corrected.length >= 1, "a PUT was refused, corrected and retried");
      const clock = summaryOf(r).clock_offset_ms as { s3: number };
      assert.ok(Math.abs(clock.s3 - 20 * MIN) < 3000, `offset learned again: ${clock.s3}`);
      rig.s3.setFaults({});
      await assertAllArchived(rig);
    } finally {
      await rig.close();
    }
  });

  test("a skew that cannot be corrected (no Date header) fails at once, naming the clock, not 'access denied'", async () => {
    const rig = await startRig({ calls: { count: 2, seed: 42, days: 1 } }, { faults: true });
    try {
      rig.s3.setFaults({ clock: { offsetMs: 20 * MIN, dateHeader: false } });
      const t0 = Date.now();
      const r = await rig.run(["run", "--json"]);
      assert.equal(r.code, 1, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.outcome, "fatal");
      assert.match(
        String(s.error),
        /RequestTimeTooSkewed.*no usable Date header.*clock offset cannot be measured/,
      );
      assert.doesNotMatch(r.stderr + r.stdout, /access denied/i);
      assert.ok(Date.now() - t0 < 30_000, "fatal, not retried for minutes");
      rig.s3.setFaults({});
      assert.deepEqual(await rig.listKeys(), [], "nothing written");
    } finally {
      await rig.close();
    }
  });
});

describe("a completion whose answer is lost", () => {
  test("in the run: the object is found complete (multipart ETag of the stored parts); nothing sent twice", async (t) => {
    const rec = recorder();
    const rig = await startRig({ calls: { count: 3, seed: 43, days: 1, sizeBytes: 11 * MiB } }, rec);
    try {
      rig.s3.setFaults({ dropCompleteAnswerEvery: 1 });
      const r = await rig.run(["run", "--json"], PART);
      assert.equal(r.code, 0, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.archived, 3);
      assert.equal(s.already_archived, 0, "this run uploaded them: archived, not adopted");
      assert.equal(s.bytes, 3 * 11 * MiB, "with their bytes");
      assert.equal(s.failed, 0);
      for (const c of rig.sim.calls) {
        assert.equal(rig.sim.stats.mediaRequestsByCall[c.id], 1, `${c.id} downloaded once`);
        assert.equal(rec.creates(c.id), 1, "one upload");
        assert.equal(rec.parts(c.id), 3, "each part uploaded once");
        assert.equal(rec.completions(c.id, true), 1, "completed once; the retry found it done");
      }
      assert.equal(await rig.multipartUploads(), 0);
      await assertAllArchived(rig);
      // The next run has nothing to do for them.
      const media = rig.sim.stats.mediaRequests;
      const again = await rig.run(["run", "--json"], PART);
      assert.equal(summaryOf(again).already_archived, 3);
      assert.equal(rig.sim.stats.mediaRequests, media, "nothing downloaded again");
      const sent = rig.sim.calls.reduce((n, c) => n + rec.completions(c.id), 0);
      t.diagnostic(
        `figures: 3 completions applied with their answers lost: ${sent} completions sent, 3 archived, ${media} media requests (one per recording), 0 in the next run`,
      );
    } finally {
      await rig.close();
    }
  });

  test("killed while waiting for the answer: the next run finds the object complete and records it, downloading and uploading nothing", async () => {
    const rec = recorder();
    const rig = await startRig({ calls: { count: 1, seed: 44, days: 1, sizeBytes: 12 * MiB } }, rec);
    try {
      const id = rig.sim.calls[0]!.id;
      rig.s3.setFaults({ holdCompleteAnswer: true });
      const child = rig.spawn(["run", "--json"], PART);
      const result = collect(child);
      // The completion is applied (the object appears) and its answer never comes: kill the CLI then.
      const applied = async () => (await rig.listKeys()).some((k) => k.endsWith(`${id}.m4a`));
      for (let i = 0; i < 600 && !(await applied()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await applied(), "the completion was applied");
      child.kill("SIGKILL");
      await result;
      rig.s3.setFaults({});
      rec.reset();
      const media = rig.sim.stats.mediaRequestsByCall[id];
      const r = await rig.run(["run", "--json"], PART);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 1);
      assert.equal(rig.sim.stats.mediaRequestsByCall[id], media, "not downloaded again");
      assert.equal(rec.parts(id) + rec.creates(id) + rec.completions(id), 0, "nothing uploaded again");
      assert.ok(logsOf(r).some((l) => /completion had landed/.test(String(l.msg))));
      assert.equal(await rig.multipartUploads(), 0);
      const db = new Database(rig.dbPath, { readonly: true });
      assert.equal(
        db.prepare("SELECT COUNT(*) FROM uploads").pluck().get(),
        0,
        "the upload is no longer tracked",
      );
      db.close();
      await assertAllArchived(rig);
    } finally {
      await rig.close();
    }
  });

  test("single PUTs (recordings and sidecars) whose answers are lost are found in the bucket, not sent again", async () => {
    const rec = recorder();
    const rig = await startRig({ calls: { count: 5, seed: 45, days: 1, sizeBytes: 300_000 } }, rec);
    try {
      rig.s3.setFaults({ dropAnswerEvery: 1 });
      const r = await rig.run(["run", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.archived, 5, "archived by this run (not 'already archived')");
      for (const c of rig.sim.calls) {
        assert.equal(rec.puts(`${c.id}.m4a`), 1, "the recording PUT sent once");
        assert.equal(rec.puts(`${c.id}.m4a.json`), 1, "the sidecar PUT sent once");
      }
      await assertAllArchived(rig);
    } finally {
      await rig.close();
    }
  });
});

describe("two writers on one key", () => {
  /** The rival's object and sidecar, stored the moment our completion arrives (after our check for one). */
  async function rival(rig: Rig, key: string, body: Buffer) {
    const put = await rig.client.send(
      new PutObjectCommand({ Bucket: rig.bucket, Key: key, Body: body, Metadata: { writer: "rival" } }),
    );
    // As the archiver's sidecars do, it names the object it describes (its ETag).
    const archive = { key, bytes: body.length, sha256: sha256(body), etag: put.ETag, run_id: "rival-run-1" };
    const sidecar = { archive };
    await rig.client.send(
      new PutObjectCommand({ Bucket: rig.bucket, Key: `${key}.json`, Body: JSON.stringify(sidecar) }),
    );
  }

  for (const same of [true, false]) {
    test(`the completion is refused (If-None-Match); the loser ${same ? "adopts the same bytes" : "fails naming both runs"}`, async () => {
      const rig = await startRig(
        { calls: { count: 1, seed: 46, days: 1, sizeBytes: 11 * MiB } },
        { faults: true },
      );
      try {
        const call = rig.sim.calls[0]!;
        const bytes = Buffer.concat([
          ...(await import("../../simulator/data.js")).mediaChunks(call.recording),
        ]);
        const theirs = same ? bytes : Buffer.concat([bytes.subarray(1), Buffer.from([7])]);
        rig.s3.setFaults({ beforeComplete: (key) => rival(rig, key, theirs) });
        const r = await rig.run(["run", "--json"], PART);
        const s = summaryOf(r);
        const key = (await rig.listKeys()).find((k) => k.endsWith(".m4a"))!;
        const obj = await rig.getObject(key);
        assert.equal(obj.metadata.writer, "rival", "the winner's object is untouched");
        assert.equal(sha256(obj.body), sha256(theirs));
        assert.equal(await rig.multipartUploads(), 0, "the loser's upload was aborted");
        const db = new Database(rig.dbPath, { readonly: true });
        const row = db.prepare("SELECT status, last_error, sha256 FROM calls").get() as Record<
          string,
          string
        >;
        db.close();
        if (same) {
          assert.equal(r.code, 0, r.stderr);
          assert.equal(s.already_archived, 1);
          assert.equal(row.status, "archived");
          assert.equal(row.sha256, sha256(bytes));
        } else {
          assert.equal(r.code, 3, r.stderr);
          assert.equal(s.failed, 1);
          assert.equal(row.status, "failed");
          for (const named of [
            key,
            `${key}.json`,
            "rival-run-1",
            String(s.run_id),
            sha256(theirs),
            sha256(bytes),
          ])
            assert.ok(String(row.last_error).includes(named), `${named} named in: ${row.last_error}`);
        }
      } finally {
        await rig.close();
      }
    });
  }

  test("two hosts archive the same calls at once: one object per recording, each run ends clean", async (t) => {
    const rec = recorder();
    const rig = await startRig(
      { calls: { count: 4, seed: 47, days: 1, sizeBytes: { min: 300_000, max: 12 * MiB } } },
      rec,
    );
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 8 * MiB });
      const runs = await Promise.all(
        // Without the lease (which keeps the second run out): the checks of each other's writes alone.
        ["a", "b"].map((h) =>
          collect(
            rig.spawn(["run", "--json", "--db", `${rig.dir}/${h}.db`], { ...PART, ARCHIVER_LEASE_TTL: "0" }),
          ),
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      for (const s of runs.map(summaryOf))
        assert.equal(Number(s.archived) + Number(s.already_archived), 4, "each run accounts for every call");
      for (const c of rig.sim.calls) {
        const stored = rec.completions(c.id, true) + rec.puts(`${c.id}.m4a`, true);
        assert.equal(
          stored,
          1,
          `${c.id}: stored once (of ${rec.puts(`${c.id}.m4a`) + rec.creates(c.id)} tries)`,
        );
      }
      for (const h of ["a", "b"]) await assertAllArchived(rig, "", `${rig.dir}/${h}.db`);
      assert.equal(await rig.multipartUploads(), 0);
      const [a, b] = runs.map(summaryOf);
      t.diagnostic(
        `figures: two hosts: a archived ${String(a!.archived)} + adopted ${String(a!.already_archived)}, b archived ${String(b!.archived)} + adopted ${String(b!.already_archived)}; each of 4 recordings stored once`,
      );
    } finally {
      await rig.close();
    }
  });
});

describe("a source that changes after it was archived", () => {
  for (const mode of ["report", "archive"] as const) {
    test(`ARCHIVER_ON_SOURCE_CHANGE=${mode}: the original stays, the change is recorded and reported`, async () => {
      const rig = await startRig({ calls: { count: 3, seed: 48, days: 1, sizeBytes: 200_000 } });
      try {
        // One large recording (the check before uploading finds it) and small ones (the conditional PUT does).
        rig.sim.calls[0]!.recording.size = 11 * MiB;
        if (rig.sim.calls[0]!.recording.reportedSize !== null)
          rig.sim.calls[0]!.recording.reportedSize = 11 * MiB;
        const first = await rig.run(["run", "--json"], PART);
        assert.equal(first.code, 0, first.stderr);
        const keys = (await rig.listKeys()).filter((k) => k.endsWith(".m4a"));
        const before = new Map(
          await Promise.all(keys.map(async (k) => [k, sha256((await rig.getObject(k)).body)] as const)),
        );
        // Re-encoded upstream, later (an object stored within a second or two of a transfer's start may be
        // another writer's: conflict.ts): two of the three change, and the state DB is lost (a new one).
        await new Promise((r) => setTimeout(r, 2500));
        const changed = rig.sim.calls.slice(0, 2);
        for (const c of changed) c.recording.mediaSeed ^= 0x5a5a;
        changed[1]!.recording.size += 1000;
        if (changed[1]!.recording.reportedSize !== null) changed[1]!.recording.reportedSize += 1000;
        const db = `${rig.dir}/lost.db`;
        const metrics = `${rig.dir}/metrics.prom`;
        const env = { ...PART, ARCHIVER_ON_SOURCE_CHANGE: mode };
        const r = await rig.run(["run", "--json", "--db", db, "--metrics-file", metrics], env);
        assert.equal(r.code, 0, r.stderr);
        const s = summaryOf(r);
        assert.equal(s.source_changed, 2);
        assert.equal(s.already_archived, 3, "the originals are what the state records");
        assert.equal(s.archived, mode === "archive" ? 0 : 0, "nothing new under the original keys");
        for (const [k, sha] of before)
          assert.equal(sha256((await rig.getObject(k)).body), sha, `${k} untouched`);
        const v2 = (await rig.listKeys()).filter((k) => /\.v2\.m4a$/.test(k));
        assert.equal(v2.length, mode === "archive" ? 2 : 0);
        for (const c of changed) {
          const k = v2.find((x) => x.includes(c.id));
          if (mode === "archive") {
            assert.equal(
              sha256((await rig.getObject(k!)).body),
              await expectedSha256(c),
              `${k} holds the new bytes`,
            );
            const side = JSON.parse((await rig.getObject(`${k}.json`)).body.toString()) as {
              archive: { supersedes: { key: string } };
            };
            assert.ok(side.archive.supersedes.key.endsWith(`${c.id}.m4a`));
          }
        }
        const state = new Database(db, { readonly: true });
        const rows = state
          .prepare(
            "SELECT call_id, archived_sha256, source_sha256, new_key FROM source_changes ORDER BY call_id",
          )
          .all() as {
          call_id: string;
          archived_sha256: string;
          source_sha256: string;
          new_key: string | null;
        }[];
        const details = JSON.parse(
          state.prepare("SELECT details FROM runs WHERE id = ?").pluck().get(s.run_id) as string,
        ) as { source_changed: unknown[] };
        state.close();
        assert.equal(rows.length, 2);
        for (const row of rows) {
          const c = changed.find((x) => x.id === row.call_id)!;
          const key = [...before.keys()].find((k) => k.includes(c.id))!;
          assert.equal(row.archived_sha256, before.get(key));
          assert.equal(row.source_sha256, await expectedSha256(c));
          assert.equal(row.new_key === null, mode === "report");
        }
        assert.equal(details.source_changed.length, 2, "in the audit trail");
        assert.match(readFileSync(metrics, "utf8"), /envoy_archiver_source_changed_total 2/);
        const status = JSON.parse((await rig.run(["status", "--json", "--db", db])).stdout) as {
          source_changes: { count: number };
        };
        assert.equal(status.source_changes.count, 2);
        assert.match((await rig.run(["run", "--db", db], env)).stdout, /already archived {2}3/);
        // The later copies are in the manifest and verified, as the recordings are.
        const manifest = (await rig.run(["manifest", "--format", "jsonl", "--db", db])).stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { key: string; sha256: string; bytes: number });
        assert.equal(manifest.length, mode === "archive" ? 5 : 3);
        for (const k of v2) {
          const row = manifest.find((m) => m.key === k);
          assert.ok(row, `${k} in the manifest`);
          assert.equal(row.sha256, sha256((await rig.getObject(k)).body));
        }
        for (const deep of [[], ["--deep"]]) {
          const v = await rig.run(["verify", "--json", "--db", db, ...deep]);
          assert.equal(v.code, 0, v.stderr);
          assert.equal(summaryOf(v).checked, mode === "archive" ? 5 : 3);
        }
        if (mode === "archive") {
          await rig.client.send(new DeleteObjectCommand({ Bucket: rig.bucket, Key: v2[0] }));
          const v = await rig.run(["verify", "--json", "--db", db]);
          assert.equal(v.code, 3);
          assert.equal(summaryOf(v).missing, 1);
          assert.match(v.stderr, new RegExp(`missing: ${v2[0]!.replace(/\./g, "\\.")}`));
        }
      } finally {
        await rig.close();
      }
    });
  }
});
