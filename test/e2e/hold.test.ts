/**
 * Legal hold by selection on a real Object Lock bucket (Ceph RGW, GOVERNANCE): `hold --on` with a phone number
 * and a window reads back ON on exactly the selected recordings' and sidecars' versions (every version, a second
 * one written behind the archiver's back included) and OFF on every other; `hold --off` lifts them all; `status`
 * counts them; the audit trail records both; a selection that matches nothing is exit 3. s3rver cannot run it
 * (no Object Lock, no versions: see helpers/backends.ts).
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { ListObjectVersionsCommand, PutObjectCommand, type ObjectVersion } from "@aws-sdk/client-s3";
import { startRig, type Rig } from "../helpers/env.js";
import { protectionOf } from "../helpers/lock.js";

const ENV = { ARCHIVER_OBJECT_LOCK_MODE: "GOVERNANCE", ARCHIVER_RETENTION_DAYS: "30" };

async function versions(rig: Rig): Promise<ObjectVersion[]> {
  const out = await rig.client.send(new ListObjectVersionsCommand({ Bucket: rig.bucket, MaxKeys: 1000 }));
  assert.ok(!out.IsTruncated);
  return (out.Versions ?? []).filter((v) => !v.Key!.startsWith("_audit/"));
}

describe("Ceph RGW, GOVERNANCE Object Lock bucket: legal hold by selection", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(
      { calls: { count: 8, seed: 77, days: 3, sizeBytes: { min: 2_000, max: 30_000 } } },
      { objectLock: "enabled" },
    );
    const r = await rig.run(["run"], ENV);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rig.close());

  test("ON for exactly the selected versions, OFF again after --off, counted by status, in the trail", async () => {
    const calls = rig.sim.calls;
    const target = calls[0]!;
    const phone = target.phone_number;
    const day = (c: (typeof calls)[number]) => (c.recording.recording_start_time ?? c.call_time).slice(0, 10);
    const selected = calls.filter(
      (c) => [c.phone_number, c.from_number, c.to_number].includes(phone) && day(c) === day(target),
    );
    const isSelected = (key: string) => selected.some((c) => key.includes(c.id));
    // A second version of a selected recording, written behind the archiver's back: it must be held too.
    const key = (await rig.listKeys("recordings/")).find(
      (k) => k.includes(target.id) && !k.endsWith(".json"),
    )!;
    await rig.client.send(new PutObjectCommand({ Bucket: rig.bucket, Key: key, Body: Buffer.from("other") }));
    const spaced = `${phone.slice(0, 2)} (${phone.slice(2, 5)}) ${phone.slice(5, 8)}-${phone.slice(8)}`;
    const sel = ["--phone", spaced, "--since", day(target), "--until", day(target)];

    const on = await rig.run(["hold", "--on", ...sel, "--json"], ENV);
    assert.equal(on.code, 0, on.stdout + on.stderr);
    const res = JSON.parse(on.stdout) as Record<string, number | boolean>;
    const all = await versions(rig);
    const mine = all.filter((v) => isSelected(v.Key!));
    assert.equal(
      mine.length,
      selected.length * 2 + 1,
      "recording and sidecar of each, and the second version",
    );
    assert.deepEqual(res, {
      on: true,
      selected: selected.length,
      versions: mine.length,
      confirmed: mine.length,
      not_shown: 0,
      errors: 0,
      on_hold: selected.length,
    });
    for (const v of all) {
      const shown = await protectionOf(rig.client, rig.bucket, v.Key!, v.VersionId!);
      assert.equal(shown.hold === "ON", isSelected(v.Key!), `${v.Key} ${v.VersionId}: ${shown.hold}`);
    }
    const status = JSON.parse((await rig.run(["status", "--json"])).stdout) as { on_legal_hold: number };
    assert.equal(status.on_legal_hold, selected.length);

    const off = await rig.run(["hold", "--off", ...sel, "--json"], ENV);
    assert.equal(off.code, 0, off.stdout + off.stderr);
    assert.equal((JSON.parse(off.stdout) as { confirmed: number }).confirmed, mine.length);
    for (const v of all)
      assert.notEqual((await protectionOf(rig.client, rig.bucket, v.Key!, v.VersionId!)).hold, "ON", v.Key);
    assert.equal(
      (JSON.parse((await rig.run(["status", "--json"])).stdout) as { on_legal_hold: number }).on_legal_hold,
      0,
    );

    const trail = (await rig.run(["audit", "--json"])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { record: { command: string; outcome: string; details: string } });
    assert.deepEqual(
      trail.slice(-2).map((t) => [t.record.command, t.record.outcome]),
      [
        ["hold-on", "ok"],
        ["hold-off", "ok"],
      ],
    );
    assert.match(trail.at(-1)!.record.details, /"phone":"\+\d+"/);
    assert.equal((await rig.run(["audit", "--verify"], ENV)).code, 0);
  });

  test("a selection that matches nothing says so (exit 3); --on and --off together are a usage error", async () => {
    const r = await rig.run(["hold", "--on", "--since", "2001-01-01", "--until", "2001-01-02"], ENV);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /the selection matches no archived recording/);
    assert.equal((await rig.run(["hold", "--on", "--off"], ENV)).code, 2);
    assert.equal((await rig.run(["hold", "--on", "--direction", "sideways"], ENV)).code, 2);
  });
});
