/**
 * Run budgets (--max-duration, --max-bytes, --cutoff): a soft budget starts nothing new and leaves nothing
 * half-done; a hard one stops the transfer in flight and its large upload resumes next run; both end with exit
 * code 4 and a summary that says which budget ended the run and what is left.
 */
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { describe, test } from "../helpers/backends.js";
import { logsOf, startRig, summaryOf } from "../helpers/env.js";

const MiB = 1024 * 1024;

function archivedRows(dbPath: string): { call_id: string; key: string }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare("SELECT call_id, key FROM calls WHERE status = 'archived'").all() as {
      call_id: string;
      key: string;
    }[];
  } finally {
    db.close();
  }
}

describe("run budgets", () => {
  test("soft --max-duration: nothing new after it, nothing half-done, exit 4; the next run archives the rest", async () => {
    const rig = await startRig({ calls: { count: 6, seed: 81, days: 1, sizeBytes: 300_000 } });
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 200_000 }); // 1.5 s a recording, one at a time
      const r = await rig.run(["run", "--json", "--concurrency", "1", "--max-duration", "4s"]);
      assert.equal(r.code, 4, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.outcome, "budget");
      const budget = s.budget as { spent: string; limit: string; left_pending: number };
      assert.equal(budget.spent, "duration");
      assert.match(budget.limit, /--max-duration 4s \(--cutoff soft\)/);
      const archived = Number(s.archived);
      assert.ok(archived >= 1 && archived < 6, `archived ${archived}`);
      assert.equal(s.failed, 0, "the transfer in flight finished: soft");
      assert.ok(budget.left_pending >= 6 - archived - 1, JSON.stringify(budget));
      // Nothing half-done: every object in the bucket is an archived recording or its sidecar.
      const rows = archivedRows(rig.dbPath);
      assert.equal(rows.length, archived);
      assert.deepEqual(
        await rig.listKeys("recordings/"),
        rows.flatMap((x) => [x.key, `${x.key}.json`]).sort(),
      );
      assert.match(r.stderr, /run budget spent \(--max-duration 4s \(--cutoff soft\)\)/);
      rig.sim.setFaults({});
      const next = await rig.run(["run", "--json"]);
      assert.equal(next.code, 0, next.stderr);
      assert.equal(archivedRows(rig.dbPath).length, 6, "the next run went on from there");
    } finally {
      await rig.close();
    }
  });

  test("soft --max-bytes: no recording starts once the media bytes are spent", async () => {
    const rig = await startRig({ calls: { count: 5, seed: 82, days: 1, sizeBytes: 200_000 } });
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 400_000 });
      const r = await rig.run(["run", "--json", "--concurrency", "1", "--max-bytes", "100K"]);
      assert.equal(r.code, 4, r.stderr);
      const s = summaryOf(r);
      assert.equal((s.budget as { spent: string }).spent, "bytes");
      assert.equal(
        s.archived,
        1,
        "the recording in flight when 100 KiB were received finished; no other began",
      );
    } finally {
      await rig.close();
    }
  });

  test("hard --max-duration: the large upload in flight is stopped, kept, and resumed by the next run", async () => {
    const rig = await startRig({ calls: { count: 1, seed: 83, days: 1, sizeBytes: 14 * MiB } });
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 2 * MiB });
      const env = { ARCHIVER_PART_SIZE_MB: "5" };
      const r = await rig.run(["run", "--json", "--max-duration", "4s", "--cutoff", "hard"], env);
      assert.equal(r.code, 4, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.outcome, "budget");
      assert.equal(s.archived, 0);
      assert.equal(s.failed, 0, "stopped, not failed");
      assert.equal((s.budget as { left_pending: number }).left_pending, 1);
      assert.equal(await rig.multipartUploads(), 1, "the upload is kept for the next run");
      rig.sim.setFaults({});
      const next = await rig.run(["run", "--json"], env);
      assert.equal(next.code, 0, next.stderr);
      assert.equal(summaryOf(next).archived, 1);
      assert.ok(
        logsOf(next).some((l) => l.msg === "resumed an interrupted upload"),
        "resumed from its stored parts",
      );
      assert.equal(await rig.multipartUploads(), 0);
    } finally {
      await rig.close();
    }
  });
});

describe("bandwidth limit", () => {
  test("--bwlimit 1M: the run's media, all transfers together, within 10% of 1 MiB/s", async (t) => {
    const rig = await startRig({ calls: { count: 4, seed: 84, days: 1, sizeBytes: 1 * MiB } });
    try {
      const r = await rig.run(["run", "--json", "--concurrency", "4", "--bwlimit", "1M"]);
      assert.equal(r.code, 0, r.stderr);
      const s = summaryOf(r);
      assert.equal(s.archived, 4);
      // The run's whole duration (start-up, listing and S3 included) bounds the media's: the rate it gives is
      // at most the media rate, which the limit holds within 10%.
      const rate = Number(s.bytes) / (Number(s.duration_ms) / 1000);
      t.diagnostic(
        `figures: ${s.bytes} bytes in ${s.duration_ms} ms = ${(rate / MiB).toFixed(3)} MiB/s (limit 1)`,
      );
      assert.ok(rate <= 1.1 * MiB, `${(rate / MiB).toFixed(3)} MiB/s`);
      assert.ok(rate >= 0.75 * MiB, `${(rate / MiB).toFixed(3)} MiB/s: slower than the limit asks`);
    } finally {
      await rig.close();
    }
  });
});
