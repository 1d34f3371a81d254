/**
 * Lock evidence read back from the bucket (the local S3 server answers Object Lock, legal hold and tags as AWS
 * does; see scripts/local-s3-lock.ts): what state, sidecar and manifest record is what the bucket shows; a server
 * that ignores the headers of CreateMultipartUpload (as Ceph RGW does) is repaired; one that will not hold a lock
 * fails those recordings; verify finds a lock removed behind the archiver's back; a rerun with a lost state DB
 * writes nothing. The same promises are checked on Ceph RGW in rgw-lock.test.ts.
 */
import { after, before } from "node:test";
import { describe, SERVER_FACTS, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { PutObjectCommand, PutObjectLegalHoldCommand, PutObjectRetentionCommand } from "@aws-sdk/client-s3";
import { logsOf, sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { protectionOf, requestsFor } from "../helpers/lock.js";
import type { CapturedRequest } from "../../scripts/s3-faults.js";
import type { CallRow } from "../../src/state/db.js";

const MiB = 1024 * 1024;
const LOCK_ENV = {
  ARCHIVER_OBJECT_LOCK_MODE: "GOVERNANCE",
  ARCHIVER_RETENTION_DAYS: "30",
  ARCHIVER_LEGAL_HOLD: "true",
  ARCHIVER_TAGS: "retention=30d,source=envoy",
  ARCHIVER_PART_SIZE_MB: "5",
};
const TAGS = "retention=30d&source=envoy";
const SIM = { calls: { count: 6, seed: 41, days: 3, sizeBytes: { min: 100_000, max: 8 * MiB } } };

const REPAIRS = ["PUT ?retention", "PUT ?legal-hold", "PUT ?tagging"];

/**
 * The requests (parts aside) a multipart recording costs under LOCK_ENV: in a versioned bucket the key is asked
 * for before writing (HEAD); then one HEAD and one GetObjectTagging read the evidence back. Where the server
 * ignored the lock and tag headers of CreateMultipartUpload, the first read (no GetObjectTagging when HEAD counted
 * no tags) is followed by the repairs and a second read.
 */
function multipartRequests(lockOnMultipart: "kept" | "ignored"): string[] {
  // The key is asked for before the upload (adoption) and again just before completing, for another writer's
  // object (issue 14).
  const write = ["HEAD", "POST ?uploads", "HEAD", "POST ?uploadId"];
  const read = ["HEAD", "GET ?tagging"];
  if (lockOnMultipart === "kept") return [...write, ...read];
  const firstRead = SERVER_FACTS.tagCountWhenNone === "zero" ? ["HEAD"] : read;
  return [...write, ...firstRead, ...REPAIRS, ...read];
}

function archivedRows(rig: Rig, db = rig.dbPath): CallRow[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare("SELECT * FROM calls WHERE status = 'archived' ORDER BY call_id").all() as CallRow[];
  } finally {
    d.close();
  }
}

/** Every archived recording and its sidecar show what the state recorded, and that is what was asked. */
async function assertEvidence(rig: Rig, rows: CallRow[]) {
  for (const r of rows) {
    const shown = await protectionOf(rig.client, rig.bucket, r.key!);
    assert.deepEqual(
      shown,
      { mode: "GOVERNANCE", until: r.retain_until, hold: "ON", tags: TAGS },
      `${r.key} shows what the state recorded`,
    );
    assert.equal(r.lock_mode, "GOVERNANCE");
    assert.equal(r.legal_hold, 1);
    assert.equal(r.tags, TAGS);
    const side = await protectionOf(rig.client, rig.bucket, `${r.key}.json`);
    assert.deepEqual(side, {
      mode: r.sidecar_lock_mode,
      until: r.sidecar_retain_until,
      hold: r.sidecar_legal_hold ? "ON" : "OFF",
      tags: r.sidecar_tags,
    });
    assert.equal(r.sidecar_retain_until, r.retain_until, "the sidecar is kept as long as its recording");
    const doc = JSON.parse((await rig.getObject(`${r.key}.json`)).body.toString()) as {
      archive: Record<string, unknown>;
    };
    assert.deepEqual(doc.archive.object_lock, { mode: "GOVERNANCE", retain_until: r.retain_until });
    assert.equal(doc.archive.legal_hold, true);
    assert.deepEqual(doc.archive.tags, { retention: "30d", source: "envoy" });
    assert.equal(doc.archive.etag, r.etag);
  }
}

describe("lock evidence read back from the bucket", () => {
  let rig: Rig;
  const requests: CapturedRequest[] = [];
  before(async () => {
    rig = await startRig(SIM, { onRequest: (q) => requests.push(q), objectLock: "enabled" });
  });
  after(() => rig.close());

  test("state, sidecar and manifest record what the bucket shows; the S3 requests each recording costs", async () => {
    const r = await rig.run(["run", "--json"], LOCK_ENV);
    assert.equal(r.code, 0, r.stderr);
    const rows = archivedRows(rig);
    assert.equal(rows.length, rig.sim.calls.length);
    const big = rows.filter((x) => x.bytes! >= 5 * MiB);
    assert.ok(big.length > 0 && big.length < rows.length, "single PUTs and multipart uploads");
    for (const row of rows) {
      const sent = requestsFor(requests, rig.bucket, row.key!);
      const side = requestsFor(requests, rig.bucket, `${row.key}.json`);
      // The bucket is versioned (Object Lock): the key is asked for before writing (HEAD), then one HEAD and one
      // GetObjectTagging read the evidence back. No CopyObject; a repair only where the server dropped the
      // headers of CreateMultipartUpload (Ceph RGW).
      assert.deepEqual(
        sent.filter((x) => !x.includes("?partNumber")),
        row.bytes! >= 5 * MiB
          ? multipartRequests(SERVER_FACTS.lockOnMultipart)
          : ["HEAD", "PUT", "HEAD", "GET ?tagging"],
        row.key!,
      );
      assert.deepEqual(side, ["PUT", "HEAD", "GET ?tagging"], `${row.key}.json`);
    }
    await assertEvidence(rig, rows);
    const out = join(rig.dir, "m.jsonl");
    assert.equal((await rig.run(["manifest", "--format", "jsonl", "--out", out])).code, 0);
  });

  test("a rerun with a lost state DB writes nothing: every recording and sidecar is adopted", async () => {
    requests.length = 0;
    const r = await rig.run(["run", "--json", "--db", join(rig.dir, "lost.db")], LOCK_ENV);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).already_archived, rig.sim.calls.length);
    // The run's own bookkeeping is not an archived object: its audit-trail head (its own object under _audit/,
    // audit.test.ts) and its lease (s3/lease.ts: one PUT, one DELETE).
    const writes = requests.filter(
      (q) =>
        (q.method === "PUT" || q.method === "POST" || q.method === "DELETE") &&
        !q.path.includes("/_audit/") &&
        !q.path.includes("/leases/"),
    );
    assert.deepEqual(writes, [], "no object written, no lock re-applied");
    for (const row of archivedRows(rig)) {
      const sent = requestsFor(requests, rig.bucket, row.key!);
      // Single PUTs carry sha256 metadata; multipart ones are compared with their sidecar's, not read back.
      assert.ok(!sent.includes("GET"), `${row.key}: its bytes were not read back`);
      assert.deepEqual(
        requestsFor(requests, rig.bucket, `${row.key}.json`).filter((x) => x === "GET"),
        row.bytes! >= 5 * MiB ? ["GET"] : [],
      );
    }
    await assertEvidence(rig, archivedRows(rig, join(rig.dir, "lost.db")));
  });

  test("verify fails (exit 3) on a recording whose retention was shortened, or whose hold was lifted", async () => {
    let r = await rig.run(["verify", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const [a, b] = archivedRows(rig);
    await rig.client.send(
      new PutObjectRetentionCommand({
        Bucket: rig.bucket,
        Key: a!.key!,
        BypassGovernanceRetention: true,
        Retention: { Mode: "GOVERNANCE", RetainUntilDate: new Date(Date.now() + 3_600_000) },
      }),
    );
    await rig.client.send(
      new PutObjectLegalHoldCommand({ Bucket: rig.bucket, Key: b!.key!, LegalHold: { Status: "OFF" } }),
    );
    r = await rig.run(["verify", "--json"]);
    assert.equal(r.code, 3, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.mismatched, 2);
    assert.equal(s.ok, rig.sim.calls.length - 2);
    assert.match(r.stderr, new RegExp(`${a!.key}: lock weaker than archived: GOVERNANCE retention until`));
    assert.match(
      r.stderr,
      new RegExp(`${b!.key}: lock weaker than archived: legal hold OFF \\(archived: ON\\)`),
    );
  });

  // Never written over (issue 14): other bytes under the key are a source that changed, or an object replaced.
  test("a key holding other bytes of the same size is not adopted and not written over: the recording goes under .v2", async () => {
    const rows = archivedRows(rig);
    const others = [rows.find((x) => x.bytes! >= 5 * MiB)!, rows.find((x) => x.bytes! < 5 * MiB)!];
    const foreign = new Map<string, string>();
    for (const x of others) {
      const body = randomBytes(x.bytes!);
      foreign.set(x.key!, sha256(body));
      await rig.client.send(
        new PutObjectCommand({ Bucket: rig.bucket, Key: x.key!, Body: body, ContentType: x.content_type! }),
      );
    }
    const env = { ...LOCK_ENV, ARCHIVER_ON_SOURCE_CHANGE: "archive" };
    const r = await rig.run(["run", "--json", "--db", join(rig.dir, "other.db")], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).source_changed, 2);
    for (const x of others) {
      assert.equal(sha256((await rig.getObject(x.key!)).body), foreign.get(x.key!), `${x.key} left as it is`);
      const v2 = x.key!.replace(/\.(m4a|mp4|bin)$/, ".v2.$1");
      assert.equal(sha256((await rig.getObject(v2)).body), x.sha256, `${v2} holds the recording`);
    }
  });
});

describe("lock evidence on a server that ignores the headers of CreateMultipartUpload (as Ceph RGW 16.2)", () => {
  test("multipart recordings get retention, hold and tags applied to them and read back; the user is told", async () => {
    const requests: CapturedRequest[] = [];
    const rig = await startRig(SIM, {
      onRequest: (q) => requests.push(q),
      objectLock: "enabled",
      lockOnMultipart: "ignore",
    });
    try {
      const r = await rig.run(["run", "--json"], LOCK_ENV);
      assert.equal(r.code, 0, r.stderr);
      const rows = archivedRows(rig);
      assert.equal(rows.length, rig.sim.calls.length);
      const sentFor = (key: string) =>
        requestsFor(requests, rig.bucket, key).filter((x) => !x.includes("?partNumber"));
      const sent = new Map(rows.map((row) => [row.key!, sentFor(row.key!)]));
      await assertEvidence(rig, rows);
      for (const row of rows) {
        const big = row.bytes! >= 5 * MiB;
        assert.deepEqual(
          sent.get(row.key!),
          big ? multipartRequests("ignored") : ["HEAD", "PUT", "HEAD", "GET ?tagging"],
          row.key!,
        );
        const doc = JSON.parse((await rig.getObject(`${row.key}.json`)).body.toString()) as {
          archive: { protection_applied_after_write: string[] };
        };
        assert.deepEqual(
          doc.archive.protection_applied_after_write,
          big ? ["PutObjectRetention", "PutObjectLegalHold", "PutObjectTagging"] : [],
        );
      }
      const warned = logsOf(r).filter(
        (l) => l.level === 40 && /the bucket did not show all that was asked/.test(String(l.msg)),
      );
      assert.equal(warned.length, 1, "one warning, the rest at info");
      assert.match(
        String(warned[0]!.msg),
        /after CreateMultipartUpload the bucket did not show all that was asked \(no retention \(asked: GOVERNANCE/,
      );
    } finally {
      await rig.close();
    }
  });

  test("a server that answers the Put* calls but holds nothing: those recordings fail, never recorded as locked", async () => {
    const rig = await startRig(SIM, {
      objectLock: "enabled",
      lockOnMultipart: "ignore",
      lockCalls: "ignore",
    });
    try {
      const r = await rig.run(["run", "--json"], LOCK_ENV);
      assert.equal(r.code, 3, r.stderr);
      const d = new Database(rig.dbPath, { readonly: true });
      const rows = d.prepare("SELECT * FROM calls ORDER BY call_id").all() as CallRow[];
      d.close();
      const bigIds = new Set(rig.sim.calls.filter((c) => c.recording.size >= 5 * MiB).map((c) => c.id));
      assert.ok(bigIds.size > 0);
      for (const row of rows) {
        if (!bigIds.has(row.call_id)) {
          assert.equal(row.status, "archived");
          continue;
        }
        assert.equal(row.status, "failed");
        assert.equal(row.error_kind, "permanent");
        assert.equal(row.lock_mode, null);
        assert.equal(row.legal_hold, 0);
        assert.match(
          row.last_error ?? "",
          /after CreateMultipartUpload the bucket showed no retention .*; PutObjectRetention, PutObjectLegalHold, PutObjectTagging answered success, yet it still shows no retention .*Not recorded as protected/,
        );
      }
      const sidecars = (await rig.listKeys("recordings/")).filter((k) => k.endsWith(".json"));
      assert.equal(sidecars.length, rows.length - bigIds.size, "no sidecar claims a lock for them");
      const v = await rig.run(["verify", "--json"]);
      assert.equal(v.code, 0, v.stderr);
    } finally {
      await rig.close();
    }
  });
});

describe("without lock, hold or tag settings", () => {
  test("no extra S3 request: a single PUT per small recording and per sidecar, no CopyObject after a multipart upload", async () => {
    const requests: CapturedRequest[] = [];
    const rig = await startRig(SIM, { onRequest: (q) => requests.push(q) });
    try {
      const r = await rig.run(["run", "--json"], { ARCHIVER_PART_SIZE_MB: "5" });
      assert.equal(r.code, 0, r.stderr);
      const rows = archivedRows(rig);
      assert.equal(rows.length, rig.sim.calls.length);
      for (const row of rows) {
        const sent = requestsFor(requests, rig.bucket, row.key!).filter((x) => !x.includes("?partNumber"));
        // A multipart-sized recording was always asked for first (adoption); that is not new. It is asked for
        // again just before completing, for another writer's object (issue 14). Where CompleteMultipartUpload
        // answers no ETag (Ceph RGW), one HEAD reads the ETag as stored.
        const etagHead = SERVER_FACTS.completeEtag === "empty" ? ["HEAD"] : [];
        const multipart = ["HEAD", "POST ?uploads", "HEAD", "POST ?uploadId", ...etagHead];
        assert.deepEqual(sent, row.bytes! >= 5 * MiB ? multipart : ["PUT"]);
        assert.deepEqual(requestsFor(requests, rig.bucket, `${row.key}.json`), ["PUT"]);
        assert.ok(row.etag, "ETag recorded");
        assert.equal(row.lock_mode, null);
        assert.equal(row.tags, null);
      }
      let v = await rig.run(["verify", "--json"]);
      assert.equal(v.code, 0, v.stderr);
      // A multipart upload carries no sha256 metadata: shallow verify compares its ETag with the one recorded.
      const big = rows.find((x) => x.bytes! >= 5 * MiB)!;
      const orig = await rig.getObject(big.key!);
      await rig.client.send(
        new PutObjectCommand({
          Bucket: rig.bucket,
          Key: big.key!,
          Body: randomBytes(big.bytes!),
          Metadata: orig.metadata,
        }),
      );
      v = await rig.run(["verify", "--json"]);
      assert.equal(v.code, 3, v.stderr);
      assert.equal(summaryOf(v).mismatched, 1);
      assert.match(v.stderr, new RegExp(`${big.key}: ETag \\\\"[0-9a-f]+\\\\" but .*was archived`));
    } finally {
      await rig.close();
    }
  });
});
