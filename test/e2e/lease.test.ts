/**
 * One writer per prefix and shard, whatever the hosts: two runs with their own state DBs, started together on one
 * prefix, leave exactly one version of every object (on Ceph RGW a versioned Object Lock bucket, where RGW ignores
 * If-None-Match; on s3rver, one successful write per key), and a run that finds the lease held exits 1 naming its
 * holder before it downloads anything.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ListObjectVersionsCommand, type ObjectVersion } from "@aws-sdk/client-s3";
import { BACKEND, describe, test } from "../helpers/backends.js";
import { collect, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { recorder } from "../helpers/recorder.js";

const TRIALS = 10;
const LOCK = {
  ARCHIVER_OBJECT_LOCK_MODE: "GOVERNANCE",
  ARCHIVER_RETENTION_DAYS: "1",
  ARCHIVER_PART_SIZE_MB: "5",
};

/** Every version (and delete marker) under `prefix`, by key. */
async function versionsUnder(rig: Rig, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await rig.client.send(
      new ListObjectVersionsCommand({
        Bucket: rig.bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionIdMarker,
      }),
    );
    const all: Pick<ObjectVersion, "Key">[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    for (const v of all) out.set(v.Key!, (out.get(v.Key!) ?? 0) + 1);
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}

describe("one writer per prefix and shard (a lease in the bucket)", () => {
  let rig: Rig;
  const rec = recorder();
  before(async () => {
    rig = await startRig(
      { calls: { count: 10, seed: 71, days: 1, sizeBytes: { min: 20_000, max: 200_000 } } },
      { ...rec, objectLock: "enabled" },
    );
  });
  after(() => rig.close());

  test(`two runs with their own state DBs started together: one version of every object, ${TRIALS} trials of 10`, async (t) => {
    const ready = rig.sim.calls.filter((c) => c.recording.ready && c.recording.hasRecording).length;
    let refused = 0;
    let leaseVersions = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const prefix = `t${trial}/`;
      rec.reset();
      const runs = await Promise.all(
        ["a", "b"].map((h) =>
          collect(
            rig.spawn(["run", "--json", "--db", join(rig.dir, `${trial}-${h}.db`), "--prefix", prefix], LOCK),
          ),
        ),
      );
      for (const r of runs) {
        assert.ok(r.code === 0 || r.code === 1, `trial ${trial}: exit ${r.code}: ${r.stderr}`);
        if (r.code === 1) {
          assert.match(r.stderr, /is being archived by [^ ]+@[^ ]+ \(run [^,]+, pid \d+\)/, r.stderr);
          refused++;
        }
      }
      assert.ok(
        runs.some((r) => r.code === 0),
        `trial ${trial}: one run archives`,
      );
      const done = runs.filter((r) => r.code === 0).map(summaryOf);
      for (const s of done) assert.equal(Number(s.archived) + Number(s.already_archived), ready);
      const keys = await rig.listKeys(`${prefix}recordings/`);
      assert.equal(keys.length, ready * 2, `trial ${trial}: every recording and its sidecar`);
      if (BACKEND === "rgw") {
        const versions = await versionsUnder(rig, `${prefix}recordings/`);
        for (const k of keys) assert.equal(versions.get(k), 1, `trial ${trial}: ${k} has one version`);
        leaseVersions += [...(await versionsUnder(rig, `${prefix}leases/`)).values()].reduce(
          (a, b) => a + b,
          0,
        );
      } else
        for (const k of keys) {
          const writes = rec.puts(k, true) + rec.completions(k, true);
          assert.equal(writes, 1, `trial ${trial}: ${k} written once`);
        }
    }
    t.diagnostic(
      `figures: ${TRIALS} trials of two runs at once on ${BACKEND}: ${refused} runs refused by the lease, every object one version; ${leaseVersions} lease versions and delete markers left in all (RGW)`,
    );
  });

  test("a run that finds the lease held exits 1 naming the holder, before any download; the holder is not disturbed", async () => {
    rig.sim.setFaults({ mediaSlowBytesPerSec: 50_000 });
    const env = { ...LOCK, ARCHIVER_CONCURRENCY: "1" };
    try {
      const first = collect(
        rig.spawn(["run", "--json", "--db", join(rig.dir, "held-a.db"), "--prefix", "held/"], env),
      );
      await new Promise((r) => setTimeout(r, 4000));
      const second = await collect(
        rig.spawn(["run", "--json", "--db", join(rig.dir, "held-b.db"), "--prefix", "held/"], env),
      );
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        second.stderr,
        /prefix \\?"held\/\\?" is being archived by [^ ]+@[^ ]+ \(run [^,]+, pid \d+\), whose lease runs until/,
      );
      assert.match(second.stderr, /s3:\/\/[^/]+\/held\/leases\/all\.json/);
      const b = summaryOf(second);
      assert.equal(b.api_requests, 0, "refused before it listed, let alone downloaded");
      assert.equal(b.outcome, "fatal");
      rig.sim.setFaults({});
      const a = await first;
      assert.equal(a.code, 0, a.stderr);
      // Released at the end: the next run takes it at once.
      const next = await collect(
        rig.spawn(["run", "--json", "--db", join(rig.dir, "held-b.db"), "--prefix", "held/"], env),
      );
      assert.equal(next.code, 0, next.stderr);
    } finally {
      rig.sim.setFaults({});
    }
  });
});
