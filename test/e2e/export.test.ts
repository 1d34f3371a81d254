/**
 * eDiscovery export end to end: a selection by date to a directory and by phone number to an S3 prefix (server-side
 * copies, multipart recordings among them, whose copies the server may give another ETag); each is byte-exact,
 * holds exactly the selected recordings, their sidecars and the manifest, and the manifest's SHA-256 is the one
 * printed and recorded in the audit trail. Files 0600, directories 0700. An empty selection writes nothing (exit 3).
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { sha256, startRig, type Rig } from "../helpers/env.js";
import { expectedSha256 } from "../../simulator/data.js";

const MiB = 1024 * 1024;
const PARTS = { ARCHIVER_PART_SIZE_MB: "5" };

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

interface Line {
  call_id: string;
  source_key: string;
  to: string;
  bytes: number;
  sha256: string;
  checked: string;
}
interface Result {
  selected: number;
  files: number;
  mismatched: number;
  errors: number;
  manifest: { where: string; sha256: string };
}

describe("eDiscovery export: by date to a directory, by phone number to S3", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 6, seed: 91, days: 2, sizeBytes: { min: 2_000, max: 7 * MiB } } });
    const r = await rig.run(["run"], PARTS);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rig.close());
  const day = (c: Rig["sim"]["calls"][number]) =>
    (c.recording.recording_start_time ?? c.call_time).slice(0, 10);

  const lastTrailRecord = async () => {
    const lines = (await rig.run(["audit", "--json"])).stdout.trim().split("\n");
    return (JSON.parse(lines.at(-1)!) as { record: { command: string; outcome: string; details: string } })
      .record;
  };

  test("by date into a directory: byte-exact, owner-only, exactly the selection and the manifest", async () => {
    const d = day(rig.sim.calls[0]!);
    const selected = rig.sim.calls.filter((c) => day(c) === d);
    const dir = join(rig.dir, "counsel");
    const r = await rig.run(["export", "--since", d, "--until", d, "--to", dir, "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const res = JSON.parse(r.stdout) as Result;
    assert.equal(res.selected, selected.length);
    assert.equal(res.files, selected.length * 2);
    const files = walk(dir)
      .map((f) => relative(dir, f))
      .sort();
    const want = selected
      .flatMap((c) => {
        const rec = `recordings/${d.replace(/-/g, "/")}/${c.id}.m4a`;
        return [rec, `${rec}.json`];
      })
      .concat("export-manifest.jsonl")
      .sort();
    assert.deepEqual(files, want, "exactly the selection and the manifest");
    for (const c of selected) {
      const body = readFileSync(join(dir, `recordings/${d.replace(/-/g, "/")}/${c.id}.m4a`));
      assert.equal(sha256(body), await expectedSha256(c), `${c.id} byte-exact`);
    }
    for (const f of walk(dir)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, "recordings")).mode & 0o777, 0o700);
    const manifest = readFileSync(join(dir, "export-manifest.jsonl"));
    assert.equal(sha256(manifest), res.manifest.sha256);
    const lines = manifest
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    assert.equal(lines.length, res.files);
    for (const l of lines) assert.equal(sha256(readFileSync(l.to)), l.sha256, l.to);
    const rec = await lastTrailRecord();
    assert.equal(rec.command, "export");
    assert.equal(rec.outcome, "ok");
    assert.ok(rec.details.includes(res.manifest.sha256), "the manifest's SHA-256 is in the audit trail");
  });

  test("by phone number to an S3 prefix: server-side copies, each checked, with the manifest beside them", async () => {
    const phone = rig.sim.calls[1]!.phone_number;
    const selected = rig.sim.calls.filter((c) =>
      [c.phone_number, c.from_number, c.to_number].includes(phone),
    );
    const to = `s3://${rig.bucket}/counsel/`;
    const r = await rig.run(["export", "--phone", phone, "--to", to, "--json"], PARTS);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const res = JSON.parse(r.stdout) as Result;
    assert.equal(res.selected, selected.length);
    assert.equal(res.manifest.where, `${to}export-manifest.jsonl`);
    const keys = await rig.listKeys("counsel/");
    assert.equal(keys.length, selected.length * 2 + 1, keys.join("\n"));
    for (const c of selected) {
      const key = keys.find((k) => k.endsWith(`${c.id}.m4a`));
      assert.ok(key, `${c.id} exported`);
      assert.equal(sha256(await rig.getObject(key).then((o) => o.body)), await expectedSha256(c), key);
      assert.ok(keys.includes(`${key}.json`), `${c.id}'s sidecar exported`);
    }
    const m = await rig.getObject("counsel/export-manifest.jsonl");
    assert.equal(sha256(m.body), res.manifest.sha256);
    const lines = m.body
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    assert.equal(lines.length, selected.length * 2);
    for (const l of lines) {
      const copy = await rig.getObject(l.to.slice(`s3://${rig.bucket}/`.length));
      assert.equal(sha256(copy.body), l.sha256, l.to);
      assert.equal(copy.body.length, l.bytes);
    }
    assert.equal((await lastTrailRecord()).command, "export");
  });

  test("a selection that matches nothing writes nothing and says so (exit 3)", async () => {
    const dir = join(rig.dir, "nothing");
    const r = await rig.run([
      "export",
      "--direction",
      "outbound",
      "--since",
      "2001-01-01",
      "--until",
      "2001-01-01",
      "--to",
      dir,
    ]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /matches no archived recording; nothing written/);
    assert.equal(existsSync(dir), false);
    assert.equal((await rig.run(["export", "--since", "2026-01-01"])).code, 2, "--to is required");
  });
});
