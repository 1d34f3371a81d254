/**
 * Lock evidence against Ceph RGW (a real S3 implementation with Object Lock), on buckets created with Object
 * Lock: every version of every recording (single PUT and multipart) and of every sidecar shows the retention,
 * legal hold and tags the archiver recorded; each is stored as exactly one version; a rerun with a lost state DB
 * adds no version; verify fails on a recording whose lock was removed behind the archiver's back.
 *
 * Runs on the RGW backend only (ARCHIVER_TEST_S3=rgw; the reason s3rver cannot is in helpers/backends.ts). Each
 * rig has its own uniquely named bucket, emptied and removed by its close() (COMPLIANCE versions stay).
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  ListObjectVersionsCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type S3Client,
  type ObjectVersion,
} from "@aws-sdk/client-s3";
import { startRig, summaryOf, type Rig } from "../helpers/env.js";
import { protectionOf } from "../helpers/lock.js";
import type { CallRow } from "../../src/state/db.js";

const MiB = 1024 * 1024;
const TAGS = "retention=kept&source=envoy";
const SIM = { calls: { count: 6, seed: 61, days: 3, sizeBytes: { min: 100_000, max: 12 * MiB } } };
const PARTS = { ARCHIVER_PART_SIZE_MB: "5" };

function lockEnv(mode: "GOVERNANCE" | "COMPLIANCE"): Record<string, string> {
  return {
    ...PARTS,
    ARCHIVER_OBJECT_LOCK_MODE: mode,
    // COMPLIANCE versions cannot be deleted before their date: 1 day (a recording older than that is kept one
    // more day from now). GOVERNANCE ones are removed after the test with the bypass header.
    ARCHIVER_RETENTION_DAYS: mode === "COMPLIANCE" ? "1" : "30",
    ARCHIVER_LEGAL_HOLD: "true",
    ARCHIVER_TAGS: TAGS.replace(/&/g, ","),
  };
}

/**
 * Every version of every object but the run's own bookkeeping: the audit trail's heads (one a command, checked on
 * their own) and the lease (one version a run, then a delete marker: s3/lease.ts).
 */
async function versions(client: S3Client, bucket: string): Promise<ObjectVersion[]> {
  return (await allVersions(client, bucket)).filter(
    (v) => !v.Key!.startsWith("_audit/") && !v.Key!.startsWith("leases/"),
  );
}

async function allVersions(client: S3Client, bucket: string): Promise<ObjectVersion[]> {
  const out: ObjectVersion[] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await client.send(
      new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker, VersionIdMarker }),
    );
    out.push(...(res.Versions ?? []));
    if (!res.IsTruncated) return out;
    ({ NextKeyMarker: KeyMarker, NextVersionIdMarker: VersionIdMarker } = res);
  }
  throw new Error("more than 100 pages of versions");
}

function rows(db: string): CallRow[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare("SELECT * FROM calls ORDER BY call_id").all() as CallRow[];
  } finally {
    d.close();
  }
}

/** Every version of every recording and sidecar: one each, showing what the state recorded. */
async function assertOneLockedVersionEach(
  client: S3Client,
  bucket: string,
  archived: CallRow[],
  mode: string,
) {
  const all = await versions(client, bucket);
  assert.equal(all.length, archived.length * 2, "one version per recording and one per sidecar");
  for (const r of archived) {
    assert.equal(r.status, "archived", r.last_error ?? "");
    const mine = all.filter((v) => v.Key === r.key);
    assert.deepEqual(
      mine.map((v) => v.VersionId),
      [r.version_id],
      `${r.key}: one version, the recorded one`,
    );
    assert.equal(mine[0]!.ETag, r.etag, `${r.key}: ETag recorded as stored`);
    assert.deepEqual(await protectionOf(client, bucket, r.key!, r.version_id), {
      mode,
      until: r.retain_until,
      hold: "ON",
      tags: TAGS,
    });
    assert.equal(r.lock_mode, mode);
    assert.equal(r.legal_hold, 1);
    assert.equal(r.tags, TAGS);
    const side = all.filter((v) => v.Key === `${r.key}.json`);
    assert.deepEqual(
      side.map((v) => v.VersionId),
      [r.sidecar_version_id],
      `${r.key}.json: one version, the recorded one`,
    );
    assert.deepEqual(await protectionOf(client, bucket, `${r.key}.json`, r.sidecar_version_id), {
      mode,
      until: r.sidecar_retain_until,
      hold: "ON",
      tags: TAGS,
    });
  }
}

for (const mode of ["GOVERNANCE", "COMPLIANCE"] as const) {
  describe(`Ceph RGW, ${mode} Object Lock bucket: lock evidence read back`, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(SIM, { objectLock: "enabled" });
    });
    after(() => rig.close());

    test("every version of every recording and sidecar shows what was recorded; one version each", async () => {
      const r = await rig.run(["run", "--json"], lockEnv(mode));
      assert.equal(r.code, 0, r.stderr);
      const archived = rows(rig.dbPath);
      assert.equal(archived.length, rig.sim.calls.length);
      const big = archived.filter((x) => x.bytes! >= 5 * MiB);
      assert.ok(big.length > 0 && big.length < archived.length, "single PUTs and multipart uploads");
      await assertOneLockedVersionEach(rig.client, rig.bucket, archived, mode);
      // RGW ignores lock and tag headers on CreateMultipartUpload: those were applied after the write.
      for (const x of archived) {
        const doc = JSON.parse((await rig.getObject(`${x.key}.json`)).body.toString()) as {
          archive: { protection_applied_after_write: string[]; version_id: string; etag: string };
        };
        assert.deepEqual(
          doc.archive.protection_applied_after_write,
          x.bytes! >= 5 * MiB ? ["PutObjectRetention", "PutObjectLegalHold", "PutObjectTagging"] : [],
          x.key!,
        );
        assert.equal(doc.archive.version_id, x.version_id);
        assert.equal(doc.archive.etag, x.etag);
      }
      assert.match(r.stderr, /after CreateMultipartUpload the bucket did not show all that was asked/);
      // The audit trail's head after the run: its own object, locked in the same mode, no legal hold or tags.
      const heads = (await allVersions(rig.client, rig.bucket)).filter((v) => v.Key!.startsWith("_audit/"));
      assert.equal(heads.length, 1, "one head for the one command");
      const head = await protectionOf(rig.client, rig.bucket, heads[0]!.Key!, heads[0]!.VersionId!);
      assert.equal(head.mode, mode);
      assert.ok(Date.parse(head.until!) > Date.now(), "retained");
      assert.notEqual(head.hold, "ON");
    });

    test("a rerun with a lost state DB adds no version", async () => {
      const before = (await versions(rig.client, rig.bucket)).length;
      const lost = join(rig.dir, "lost.db");
      const r = await rig.run(["run", "--json", "--db", lost], lockEnv(mode));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).already_archived, rig.sim.calls.length);
      assert.equal((await versions(rig.client, rig.bucket)).length, before, "no version added");
      await assertOneLockedVersionEach(rig.client, rig.bucket, rows(lost), mode);
    });

    if (mode === "GOVERNANCE")
      test("verify fails (exit 3) on a recording whose lock was removed behind its back", async () => {
        const env = lockEnv(mode);
        let r = await rig.run(["verify", "--json"], env);
        assert.equal(r.code, 0, r.stderr);
        const target = rows(rig.dbPath)[0]!;
        const at = { Bucket: rig.bucket, Key: target.key!, VersionId: target.version_id! };
        await rig.client.send(new PutObjectLegalHoldCommand({ ...at, LegalHold: { Status: "OFF" } }));
        await rig.client.send(
          new PutObjectRetentionCommand({
            ...at,
            BypassGovernanceRetention: true,
            Retention: { Mode: "GOVERNANCE", RetainUntilDate: new Date(Date.now() + 60_000) },
          }),
        );
        r = await rig.run(["verify", "--json"], env);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(summaryOf(r).mismatched, 1);
        assert.match(
          r.stderr,
          new RegExp(
            `${target.key}: lock weaker than archived: GOVERNANCE retention until .*; legal hold OFF`,
          ),
        );
      });

    if (mode === "GOVERNANCE")
      test("verify fails (exit 3) on a sidecar whose legal hold was lifted behind its back", async () => {
        const env = lockEnv(mode);
        const target = rows(rig.dbPath)[1]!;
        const at = { Bucket: rig.bucket, Key: `${target.key}.json`, VersionId: target.sidecar_version_id! };
        await rig.client.send(new PutObjectLegalHoldCommand({ ...at, LegalHold: { Status: "OFF" } }));
        const r = await rig.run(["verify", "--json"], env);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(
          summaryOf(r).mismatched,
          2,
          "the recording altered by the test before, and this sidecar",
        );
        assert.match(
          r.stderr,
          new RegExp(`${target.key}: sidecar ${target.key}.json: lock weaker than archived: legal hold OFF`),
        );
      });
  });
}

describe("Ceph RGW, versioned bucket without lock settings: version id and ETag as stored, one version each", () => {
  test("recorded from a HEAD where RGW's answers lack them; a rerun with a lost state DB adds no version", async () => {
    const rig = await startRig(SIM, { versioning: "enabled" });
    const { client, bucket } = rig;
    try {
      const r = await rig.run(["run", "--json"], PARTS);
      assert.equal(r.code, 0, r.stderr);
      const archived = rows(rig.dbPath);
      assert.ok(
        archived.some((x) => x.bytes! >= 5 * MiB),
        "a multipart upload",
      );
      const check = async (db: string) => {
        const all = await versions(client, bucket);
        assert.equal(all.length, archived.length * 2, "one version per recording and per sidecar");
        for (const x of rows(db)) {
          const v = all.filter((o) => o.Key === x.key);
          assert.deepEqual(
            v.map((o) => [o.VersionId, o.ETag]),
            [[x.version_id, x.etag]],
            `${x.key}: version id and ETag as stored`,
          );
          assert.ok(x.etag && x.version_id);
          assert.equal(x.lock_mode, null);
        }
      };
      await check(rig.dbPath);
      const again = await rig.run(["run", "--json", "--db", join(rig.dir, "lost.db")], PARTS);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(summaryOf(again).already_archived, archived.length);
      await check(join(rig.dir, "lost.db"));
      const v = await rig.run(["verify", "--json"], PARTS);
      assert.equal(v.code, 0, v.stderr);
    } finally {
      await rig.close();
    }
  });
});
