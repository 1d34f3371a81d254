/**
 * Real-world faults II on Ceph RGW, where the server's own behaviour matters (faults-ii.test.ts runs the rest on
 * RGW as well): RGW checks request time as AWS does (15 minutes), so the CLI runs under `faketime` 20 minutes
 * off; and in a versioned bucket RGW ignores If-None-Match (on PUT and on CompleteMultipartUpload) and completes
 * an upload again when asked twice, so lost answers, two writers and a changed source are run there, counting
 * versions. The rig's proxy loses the answers of writes RGW applied.
 *
 * Runs only with ARCHIVER_TEST_S3=rgw (test/helpers/backends.ts); skipped with the reason otherwise.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ListObjectVersionsCommand, PutBucketVersioningCommand } from "@aws-sdk/client-s3";
import type { SimulatorOptions } from "../../simulator/server.js";
import { expectedSha256 } from "../../simulator/data.js";
import { BACKEND } from "../helpers/backends.js";
import {
  CLI,
  collect,
  logsOf,
  sha256,
  startRig,
  summaryOf,
  type CliResult,
  type Rig,
} from "../helpers/env.js";
import { recorder } from "../helpers/recorder.js";

const MiB = 1024 * 1024;
const MIN = 60_000;
const SKIP = BACKEND === "rgw" ? false : "Ceph RGW only (ARCHIVER_TEST_S3=rgw)";
const NO_FAKETIME =
  spawnSync("faketime", ["-f", "+0", "true"]).status === 0
    ? false
    : "needs faketime (Debian package faketime)";
const PART = { ARCHIVER_PART_SIZE_MB: "5" };

/** A rig on RGW with the recording proxy in front; a versioned bucket when asked. */
async function rgwRig(sim: SimulatorOptions, versioned: boolean) {
  const rec = recorder();
  const rig = await startRig(sim, rec);
  if (versioned)
    await rig.client.send(
      new PutBucketVersioningCommand({ Bucket: rig.bucket, VersioningConfiguration: { Status: "Enabled" } }),
    );
  return { rig, rec };
}

/** The CLI with this machine's clock moved by `clock` (faketime's syntax: "+20m"). */
function runAt(
  rig: Rig,
  clock: string,
  args: string[],
  extra: Record<string, string> = {},
): Promise<CliResult> {
  const env = { PATH: process.env.PATH ?? "", HOME: rig.dir, NODE_OPTIONS: "", ...rig.env, ...extra };
  return collect(
    spawn("faketime", ["-f", clock, process.execPath, CLI, ...args], {
      env,
      cwd: rig.dir,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

/** Versions (and delete markers) of exactly this key. */
async function versions(rig: Rig, key: string): Promise<string[]> {
  const out = await rig.client.send(new ListObjectVersionsCommand({ Bucket: rig.bucket, Prefix: key }));
  return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])]
    .filter((v) => v.Key === key)
    .map((v) => v.VersionId ?? "null");
}

/** Every ready recording archived byte-exact, one version of it and of its sidecar, and the state says so. */
async function assertArchived(rig: Rig, dbPath = rig.dbPath): Promise<void> {
  const keys = await rig.listKeys("recordings/");
  const db = new Database(dbPath, { readonly: true });
  try {
    for (const c of rig.sim.calls.filter((x) => x.recording.hasRecording && x.recording.ready)) {
      const key = keys.find((k) => k.endsWith(`${c.id}.m4a`));
      assert.ok(key, `${c.id} archived`);
      const want = await expectedSha256(c);
      assert.equal(sha256((await rig.getObject(key)).body), want, `${key} byte-exact`);
      assert.equal((await versions(rig, key)).length, 1, `${key}: one version`);
      assert.equal((await versions(rig, `${key}.json`)).length, 1, `${key}.json: one version`);
      const row = db.prepare("SELECT status, sha256 FROM calls WHERE call_id = ?").get(c.id);
      assert.deepEqual(row, { status: "archived", sha256: want }, `${c.id} state`);
    }
  } finally {
    db.close();
  }
}

describe("Ceph RGW: a clock 20 minutes off (the CLI under faketime)", { skip: SKIP || NO_FAKETIME }, () => {
  for (const clock of ["+20m", "-20m"]) {
    test(`clock ${clock}: everything archived, signed and judged by the servers' clocks`, async (t) => {
      const { rig } = await rgwRig(
        { calls: { count: 6, seed: 61, days: 2, sizeBytes: { min: 200_000, max: 7 * MiB } } },
        false,
      );
      try {
        const r = await runAt(rig, clock, ["run", "--json"], PART);
        assert.equal(r.code, 0, r.stderr);
        const s = summaryOf(r);
        assert.equal(s.archived, 6);
        const offset = s.clock_offset_ms as { s3: number; api: number };
        const want = clock === "+20m" ? -20 * MIN : 20 * MIN;
        assert.ok(Math.abs(offset.s3 - want) < 5000, `S3 offset ${offset.s3}`);
        assert.ok(Math.abs(offset.api - want) < 5000, `API offset ${offset.api}`);
        assert.equal(rig.sim.stats.recordingRequests, 6, "no media URL looked expired");
        const refused = logsOf(r).filter((l) => l.code === "clock_skew_corrected").length;
        assert.equal(refused, 1, "only the first request was refused; every later one was signed right");
        await assertArchived(rig);
        t.diagnostic(
          `figures: clock ${clock}: ${String(s.archived)}/6 archived, S3 offset ${offset.s3} ms, API offset ${offset.api} ms, ${refused} request refused and re-signed, ${rig.sim.stats.recordingRequests} recording requests (no URL refreshed)`,
        );
      } finally {
        await rig.close();
      }
    });
  }
});

describe("Ceph RGW: answers lost after RGW applied the write (versioned bucket)", { skip: SKIP }, () => {
  for (const [what, sizeBytes, faults] of [
    ["PUT", 300_000, { dropAnswerEvery: 1 }],
    ["completion", 12 * MiB, { dropCompleteAnswerEvery: 1 }],
  ] as const)
    test(`every ${what} answer lost: found in the bucket, nothing sent twice, one version each`, async (t) => {
      const { rig, rec } = await rgwRig({ calls: { count: 3, seed: 62, days: 1, sizeBytes } }, true);
      try {
        rig.s3.setFaults(faults);
        const r = await rig.run(["run", "--json"], PART);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(summaryOf(r).archived, 3);
        for (const c of rig.sim.calls) {
          assert.equal(rig.sim.stats.mediaRequestsByCall[c.id], 1, `${c.id} downloaded once`);
          const writes = rec.puts(`${c.id}.m4a`) + rec.completions(c.id);
          assert.equal(writes, 1, `${c.id}: written once`);
        }
        await assertArchived(rig);
        t.diagnostic(
          `figures: every ${what} answer lost on RGW: 3/3 archived, ${rig.sim.stats.mediaRequests} media requests, each recording written once, one version of each recording and sidecar`,
        );
      } finally {
        await rig.close();
      }
    });
});

describe("Ceph RGW: two writers (versioned bucket; RGW ignores If-None-Match there)", { skip: SKIP }, () => {
  // Multipart recordings: the check of other writers' uploads and of the key before completing keeps one version
  // where the condition is ignored. (Small ones are checked before their PUT in a versioned bucket.)
  test("two hosts archive the same calls at once: one version per recording, both runs clean", async (t) => {
    const { rig, rec } = await rgwRig(
      { calls: { count: 4, seed: 64, days: 1, sizeBytes: { min: 6 * MiB, max: 12 * MiB } } },
      true,
    );
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 8 * MiB });
      const runs = await Promise.all(
        // Without the lease (which keeps the second run out): the checks of each other's writes alone.
        ["a", "b"].map((h) =>
          rig.run(["run", "--json", "--db", join(rig.dir, `${h}.db`)], { ...PART, ARCHIVER_LEASE_TTL: "0" }),
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const [a, b] = runs.map(summaryOf);
      for (const s of [a!, b!])
        assert.equal(Number(s.archived) + Number(s.already_archived), 4, "each run accounts for every call");
      for (const h of ["a", "b"]) await assertArchived(rig, join(rig.dir, `${h}.db`));
      const completions = rig.sim.calls.reduce((n, c) => n + rec.completions(c.id), 0);
      t.diagnostic(
        `figures: two hosts on RGW: a archived ${String(a!.archived)} + adopted ${String(a!.already_archived)}, b archived ${String(b!.archived)} + adopted ${String(b!.already_archived)}; ${completions} completions sent for 4 recordings; one version each`,
      );
    } finally {
      await rig.close();
    }
  });
});

describe("Ceph RGW: a source that changes after it was archived (versioned bucket)", { skip: SKIP }, () => {
  test("the original keeps its one version; the new bytes go under .v2; the change is recorded", async (t) => {
    const { rig } = await rgwRig({ calls: { count: 2, seed: 65, days: 1, sizeBytes: 7 * MiB } }, true);
    try {
      assert.equal((await rig.run(["run", "--json"], PART)).code, 0);
      const originals = new Map<string, string[]>();
      for (const k of (await rig.listKeys("recordings/")).filter((k) => k.endsWith(".m4a")))
        originals.set(k, await versions(rig, k));
      // Later than a transfer's own start (conflict.ts), the source is re-encoded and the state DB lost.
      await new Promise((r) => setTimeout(r, 2500));
      const changed = rig.sim.calls[0]!;
      changed.recording.mediaSeed ^= 0x77;
      const db = join(rig.dir, "lost.db");
      const r = await rig.run(["run", "--json", "--db", db], {
        ...PART,
        ARCHIVER_ON_SOURCE_CHANGE: "archive",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).source_changed, 1, r.stderr);
      for (const [k, v] of originals)
        assert.deepEqual(await versions(rig, k), v, `${k} untouched: no version added`);
      const v2 = (await rig.listKeys("recordings/")).filter((k) => k.endsWith(".v2.m4a"));
      assert.equal(v2.length, 1, String(v2));
      assert.ok(v2[0]!.includes(changed.id));
      assert.equal(sha256((await rig.getObject(v2[0]!)).body), await expectedSha256(changed));
      const state = new Database(db, { readonly: true });
      const row = state.prepare("SELECT source_sha256, new_key FROM source_changes").get();
      state.close();
      assert.deepEqual(row, { source_sha256: await expectedSha256(changed), new_key: v2[0] });
      t.diagnostic(
        `figures: changed source on RGW: 1 change recorded, ${originals.size} originals with ${[...originals.values()].map((v) => v.length).join("/")} version(s) before and after, new bytes in ${v2[0]}`,
      );
    } finally {
      await rig.close();
    }
  });
});
