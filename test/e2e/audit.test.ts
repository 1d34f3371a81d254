/**
 * The tamper-evident audit trail end to end, through the CLI: every command that changes or attests the archive
 * appends a record and writes the chain's head to the bucket; `audit --verify` names the first broken record
 * of a hand-edited or a pruned state DB, and catches a DB swapped for an older copy by the heads in the bucket.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import Database from "better-sqlite3";
import { startRig, type Rig } from "../helpers/env.js";

const edit = (path: string, sql: string) => {
  const db = new Database(path);
  db.exec(sql);
  db.close();
};

describe("audit trail: a hash chain in the state DB, its heads in the bucket", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 3, seed: 5, days: 2, sizeBytes: { min: 2_000, max: 20_000 } } });
  });
  after(() => rig.close());

  test("run, verify and manifest each append a record; the bucket holds every head; edits are named", async () => {
    assert.equal((await rig.run(["run"])).code, 0);
    const older = `${rig.dbPath}.older`;
    copyFileSync(rig.dbPath, older);
    assert.equal((await rig.run(["verify"])).code, 0);
    assert.equal((await rig.run(["manifest", "--out", `${rig.dir}/m.csv`])).code, 0);

    const trail = await rig.run(["audit", "--json"]);
    assert.equal(trail.code, 0, trail.stderr);
    const records = trail.stdout
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as { seq: number; sha256: string; trail: string; record: Record<string, unknown> },
      );
    assert.deepEqual(
      records.map((r) => [r.seq, r.record.command, r.record.outcome]),
      [
        [1, "run", "ok"],
        [2, "verify", "ok"],
        [3, "manifest", "ok"],
      ],
    );
    assert.match(String(records[0]!.record.actor), /^.+@.+$/);
    const heads = (await rig.listKeys("_audit/")).sort();
    assert.deepEqual(
      heads,
      records.map((r) => `_audit/${r.trail}/${String(r.seq).padStart(12, "0")}-${r.sha256}.json`),
    );
    const head = await rig.getObject(heads[2]!);
    assert.equal((JSON.parse(head.body.toString()) as { sha256: string }).sha256, records[2]!.sha256);

    const ok = await rig.run(["audit", "--verify"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /intact, 3 records/);
    assert.match(ok.stdout, /the bucket holds 3 heads of this trail, the latest #3/);

    // A state DB swapped for the copy taken after the first run: whole by itself, behind the bucket.
    const live = `${rig.dbPath}.live`;
    copyFileSync(rig.dbPath, live);
    copyFileSync(older, rig.dbPath);
    const swapped = await rig.run(["audit", "--verify", "--json"]);
    assert.equal(swapped.code, 3, swapped.stdout + swapped.stderr);
    const s = JSON.parse(swapped.stdout) as { broken: { seq: number; reason: string } };
    assert.equal(s.broken.seq, 2);
    assert.match(s.broken.reason, /does not have \(its last record is #1\).*older copy/);

    // A hand-edited record.
    copyFileSync(live, rig.dbPath);
    edit(rig.dbPath, "UPDATE runs SET outcome = 'failures', failed = 1 WHERE chain_seq = 2");
    const edited = await rig.run(["audit", "--verify"]);
    assert.equal(edited.code, 3);
    assert.match(edited.stdout, /BROKEN at record #2: record #2 \(verify-[^)]+\) was altered/);

    // A deleted record, in the middle, and the last one (which only the bucket can tell).
    copyFileSync(live, rig.dbPath);
    edit(rig.dbPath, "DELETE FROM runs WHERE chain_seq = 2");
    const pruned = await rig.run(["audit", "--verify"]);
    assert.equal(pruned.code, 3);
    assert.match(pruned.stdout, /BROKEN at record #2: record #2 is missing/);
    copyFileSync(live, rig.dbPath);
    edit(rig.dbPath, "DELETE FROM runs WHERE chain_seq = 3");
    const truncated = await rig.run(["audit", "--verify"]);
    assert.equal(truncated.code, 3);
    assert.match(truncated.stdout, /BROKEN at record #3: the bucket holds head #3/);

    // The live DB again: intact, and the trail goes on.
    copyFileSync(live, rig.dbPath);
    assert.equal((await rig.run(["audit", "--verify"])).code, 0);
    const printed = await rig.run(["audit"]);
    assert.match(printed.stdout, /#1 .* run .* ok/);
    assert.match(printed.stdout, /audit: 3 records, head #3 [0-9a-f]{64}/);
  });
});
