/**
 * Compliance exports: the headers that make objects WORM, the manifest an auditor reads, and verify proving
 * integrity (finding a rewritten, a rotten and a deleted object).
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import Database from "better-sqlite3";
import { sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import type { CapturedRequest } from "../../scripts/s3-faults.js";
import { BACKEND, BACKEND_PARAMS, SERVER_FACTS } from "../helpers/backends.js";
import { expectedSha256 } from "../../simulator/data.js";

const MiB = 1024 * 1024;
const header = (r: CapturedRequest, name: string) => {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
/**
 * A request that writes object bytes (PutObject, CreateMultipartUpload, UploadPart), not one that sets a stored
 * version's retention, legal hold or tags (where a server dropped them from CreateMultipartUpload: Ceph RGW).
 */
const writesBytes = (q: CapturedRequest) =>
  (q.method === "PUT" || (q.method === "POST" && "uploads" in q.query)) &&
  !q.path.includes("/leases/") && // the run's lease (s3/lease.ts): not an archived object, it carries none of them
  !["retention", "legal-hold", "tagging"].some((s) => s in q.query);

const LOCK_ENV = {
  ARCHIVER_OBJECT_LOCK_MODE: "COMPLIANCE",
  ARCHIVER_RETENTION_DAYS: "2555",
  ARCHIVER_LEGAL_HOLD: "true",
  ...(BACKEND_PARAMS.sse ? { ARCHIVER_SSE: BACKEND_PARAMS.sse } : {}),
  ARCHIVER_STORAGE_CLASS: BACKEND_PARAMS.storageClass,
  ARCHIVER_TAGS: "retention=7y,source=envoy",
  ARCHIVER_PART_SIZE_MB: "5",
};

describe("Object Lock, legal hold, encryption, class, tags and checksums on every upload", () => {
  let rig: Rig;
  const requests: CapturedRequest[] = [];
  before(async () => {
    rig = await startRig(
      { calls: { count: 4, seed: 21, days: 3, sizeBytes: { min: 100_000, max: 7 * MiB } } },
      { onRequest: (r) => requests.push(r), objectLock: "enabled" },
    );
  });
  after(() => rig.close());

  test("single PUTs, multipart creates and parts, and sidecars all carry the settings", async () => {
    const r = await rig.run(["run", "--json"], LOCK_ENV);
    assert.equal(r.code, 0, r.stderr);
    // The audit trail's head is locked but carries no legal hold or tags (rgw-lock.test.ts reads it back).
    const writes = requests.filter((q) => writesBytes(q) && !q.path.includes("/_audit/"));
    const creates = writes.filter((q) => !("partNumber" in q.query) && !("x-amz-copy-source" in q.headers));
    const parts = writes.filter((q) => "partNumber" in q.query);
    assert.ok(parts.length > 0, "a multipart upload happened");
    assert.ok(
      creates.some((q) => q.method === "POST"),
      "a multipart create happened",
    );
    assert.ok(
      creates.some((q) => q.path.endsWith(".json")),
      "sidecars were written",
    );
    for (const q of creates) {
      assert.equal(header(q, "x-amz-object-lock-mode"), "COMPLIANCE", q.path);
      assert.equal(header(q, "x-amz-object-lock-legal-hold"), "ON", q.path);
      assert.equal(header(q, "x-amz-server-side-encryption"), BACKEND_PARAMS.sse, q.path);
      assert.equal(header(q, "x-amz-storage-class"), BACKEND_PARAMS.storageClass, q.path);
      assert.equal(header(q, "x-amz-tagging"), "retention=7y&source=envoy", q.path);
      const until = Date.parse(header(q, "x-amz-object-lock-retain-until-date") ?? "");
      assert.ok(until > Date.now() + 2500 * 86_400_000, `${q.path} retained ~7 years`);
    }
    // The retain-until date is the recording's start + 2555 days.
    for (const c of rig.sim.calls) {
      const put = creates.find((q) => q.path.includes(c.id) && !q.path.endsWith(".json"));
      const start = Date.parse(c.recording.recording_start_time ?? c.call_time);
      assert.equal(
        Date.parse(header(put!, "x-amz-object-lock-retain-until-date")!),
        start + 2555 * 86_400_000,
      );
    }
    for (const q of [...creates.filter((q) => q.method === "PUT"), ...parts])
      assert.match(header(q, "content-md5") ?? "", /^[A-Za-z0-9+/]{22}==$/, `${q.path} has Content-MD5`);
    // Bodies are streamed unsigned, never hashed twice; a single PUT carries the SHA-256 already computed as its
    // x-amz-checksum-sha256 (checked by AWS S3).
    for (const c of rig.sim.calls) {
      const put = creates.find(
        (q) => q.method === "PUT" && q.path.includes(c.id) && !q.path.endsWith(".json"),
      );
      if (!put) continue;
      const sha256 = Buffer.from(await expectedSha256(c), "hex").toString("base64");
      assert.equal(header(put, "x-amz-checksum-sha256"), sha256, put.path);
      assert.equal(header(put, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD", put.path);
    }
    for (const q of parts) assert.equal(header(q, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD", q.path);
    assert.ok(
      !/Object Lock configuration/.test(r.stderr),
      "no warning: the bucket reports Object Lock enabled",
    );
  });

  test("ARCHIVER_CHECKSUM_ALGORITHM=CRC32C sends x-amz-checksum-crc32c instead", async () => {
    requests.length = 0;
    const r = await rig.run(["run", "--json", "--db", join(rig.dir, "crc.db"), "--prefix", "crc"], {
      ...LOCK_ENV,
      ARCHIVER_CHECKSUM_ALGORITHM: "CRC32C",
    });
    assert.equal(r.code, 0, r.stderr);
    const bodies = requests.filter((q) => writesBytes(q) && q.method === "PUT");
    assert.ok(bodies.length > 0);
    for (const q of bodies) {
      const sent = header(q, "x-amz-checksum-crc32c") ?? header(q, "x-amz-trailer");
      assert.ok(sent, `${q.path} carries a CRC32C checksum`);
    }
    // A server that does not answer the checksum back did not confirm it: the user hears it, once.
    const unconfirmed =
      r.stderr.match(/answered .* without x-amz-checksum-crc32c, so it did not confirm/g) ?? [];
    assert.equal(unconfirmed.length, SERVER_FACTS.checksumAnswer === "absent" ? 1 : 0, r.stderr);
  });

  test("lock settings against a bucket without Object Lock: exit 1 before any download, naming the setting", async () => {
    const plain = await startRig({ calls: { count: 1, seed: 22 } }, { objectLock: "disabled" });
    try {
      const r = await plain.run(["run"], LOCK_ENV);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /does not have Object Lock enabled \(GetObjectLockConfiguration answered/);
      assert.match(
        r.stderr,
        /ARCHIVER_OBJECT_LOCK_MODE=COMPLIANCE and ARCHIVER_LEGAL_HOLD=true cannot be honoured/,
      );
      assert.equal(plain.sim.stats.mediaRequests, 0, "nothing downloaded");
      assert.deepEqual(await plain.listKeys("recordings/"), []);
    } finally {
      await plain.close();
    }
  });

  test("an endpoint that cannot answer the lock question (s3rver: 501) and shows versioning off: exit 1 before any download", async () => {
    const s3rver = await startRig({ calls: { count: 2, seed: 23 } });
    try {
      const r = await s3rver.run(["run"], LOCK_ENV);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /NotImplemented \(HTTP 501\), and GetBucketVersioning shows versioning off/);
      assert.equal(s3rver.sim.stats.mediaRequests, 0, "nothing downloaded");
    } finally {
      await s3rver.close();
    }
  });

  test("locked uploads without a checksum are refused at start (exit 2)", async () => {
    const r = await rig.run(["run"], { ...LOCK_ENV, ARCHIVER_CHECKSUM_ALGORITHM: "NONE" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /checksum/);
  });
});

describe("manifest, verify, status and the audit trail", () => {
  let rig: Rig;
  /** S3 requests by operation, as the server saw them. */
  let requests: Record<string, number> = {};
  before(async () => {
    rig = await startRig(
      { calls: { count: 12, seed: 31, days: 6 } },
      {
        onRequest: (q) => {
          // The audit trail's head (a PUT and a HEAD after each command) is counted by audit.test.ts.
          if (q.path.includes("/_audit/")) return;
          const op =
            q.method === "HEAD" ? "head" : q.method === "GET" && q.query["list-type"] === "2" ? "list" : null;
          if (op) requests[op] = (requests[op] ?? 0) + 1;
        },
      },
    );
    const r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rig.close());
  /** The recordings' keys, in a stable order (the first ones are tampered with below). */
  const recordingKeys = async () =>
    (await rig.listKeys("recordings/")).filter((k) => !k.endsWith(".json")).sort();

  test("CSV manifest: a header and one row per archived recording, matching S3", async () => {
    const out = join(rig.dir, "manifest.csv");
    const r = await rig.run(["manifest", "--format", "csv", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, "utf8").trimEnd().split("\n");
    assert.equal(
      lines[0],
      "call_id,key,bytes,sha256,content_type,recording_start_time,duration_seconds,archived_at,etag,version_id,lock_mode,retain_until,legal_hold,storage_class,sse,tags,sidecar_version_id,sidecar_lock_mode,sidecar_retain_until,sidecar_legal_hold",
    );
    assert.equal(lines.length - 1, rig.sim.calls.length);
    for (const line of lines.slice(1)) {
      const [callId, key, bytes, sha] = line.split(",");
      const obj = await rig.getObject(key!);
      assert.equal(obj.body.length, Number(bytes));
      assert.equal(sha256(obj.body), sha, callId);
    }
    assert.match(
      r.stderr,
      new RegExp(`sha256 ${sha256(readFileSync(out))}`),
      "prints the manifest's own SHA-256",
    );
  });

  test("JSONL manifest to stdout, filtered by window, and --upload with its SHA-256 in metadata", async () => {
    const days = [
      ...new Set(rig.sim.calls.map((c) => (c.recording.recording_start_time ?? c.call_time).slice(0, 10))),
    ].sort();
    const r = await rig.run(["manifest", "--format", "jsonl", "--since", days[1]!, "--until", days[1]!]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const want = rig.sim.calls.filter((c) =>
      (c.recording.recording_start_time ?? c.call_time).startsWith(days[1]!),
    );
    assert.deepEqual(rows.map((x) => x.call_id).sort(), want.map((c) => c.id).sort());

    const up = await rig.run(["manifest", "--format", "jsonl", "--upload", "--json"]);
    assert.equal(up.code, 0, up.stderr);
    assert.ok(up.stdout.endsWith("}\n"), "one JSON object on stdout, with a final newline");
    const res = JSON.parse(up.stdout) as {
      key: string;
      sha256: string;
      rows: number;
    };
    assert.match(res.key, /^manifests\/manifest-.*\.jsonl$/);
    const obj = await rig.getObject(res.key);
    assert.equal(sha256(obj.body), res.sha256);
    assert.equal(obj.metadata.sha256, res.sha256);
    assert.equal(obj.body.toString().trim().split("\n").length, res.rows);
  });

  test("verify: all intact by the listing alone; then a rewritten and a deleted object", async () => {
    requests = {};
    let r = await rig.run(["verify", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(summaryOf(r), { checked: 12, ok: 12, missing: 0, mismatched: 0, errors: 0 });
    assert.deepEqual(requests, { list: 1 }, "one listing, no HEAD");

    const [rewritten, deleted] = await recordingKeys();
    // Written again with the same size and metadata, one byte different: a new ETag.
    const orig = await rig.getObject(rewritten!);
    const evil = Buffer.from(orig.body);
    evil[Math.floor(evil.length / 2)]! ^= 0xff;
    await rig.client.send(
      new PutObjectCommand({
        Bucket: rig.bucket,
        Key: rewritten,
        Body: evil,
        Metadata: orig.metadata,
        ContentType: orig.contentType,
      }),
    );
    await rig.client.send(new DeleteObjectCommand({ Bucket: rig.bucket, Key: deleted }));

    requests = {};
    r = await rig.run(["verify", "--json"]);
    assert.equal(r.code, 3);
    assert.deepEqual(summaryOf(r), { checked: 12, ok: 10, missing: 1, mismatched: 1, errors: 0 });
    assert.match(r.stderr, new RegExp(`missing: ${deleted}`));
    assert.match(
      r.stderr,
      new RegExp(`mismatched: ${rewritten}: ETag \\S+ but \\S+ was archived: the object was written again`),
    );
    assert.deepEqual(requests, { list: 1, head: 2 }, "a HEAD for the two the listing did not prove");

    r = await rig.run(["verify", "--deep", "--json"]);
    assert.equal(r.code, 3);
    assert.deepEqual(summaryOf(r), { checked: 12, ok: 10, missing: 1, mismatched: 1, errors: 0 });
    assert.match(r.stderr, new RegExp(`mismatched: ${rewritten}: content hashes to`));
    const logLine = r.stderr.split("\n").find((l) => l.includes("mismatched"))!;
    assert.ok(logLine.includes(`"call_id":"call_`), "the problem is logged with its call id");
  });

  test("verify: bytes changed where they are stored, without a write, are found by --deep alone", async () => {
    const rotten = (await recordingKeys())[2]!;
    // s3rver keeps the ETag it computed when the object was written: only reading the bytes shows the change.
    const file = join(rig.dir, "s3", rig.bucket, `${rotten}._S3rver_object`);
    const bytes = readFileSync(file);
    bytes[7]! ^= 0x01;
    writeFileSync(file, bytes);
    let r = await rig.run(["verify", "--json"]);
    assert.deepEqual(
      summaryOf(r),
      { checked: 12, ok: 10, missing: 1, mismatched: 1, errors: 0 },
      "the shallow check cannot see it",
    );
    r = await rig.run(["verify", "--deep", "--json"]);
    assert.equal(r.code, 3);
    assert.deepEqual(summaryOf(r), { checked: 12, ok: 9, missing: 1, mismatched: 2, errors: 0 });
    assert.match(r.stderr, new RegExp(`mismatched: ${rotten}: content hashes to`));
  });

  test("status shows counts, bytes, watermark and the audit trail of runs, manifests and verifies", async () => {
    const r = await rig.run(["status", "--json", "--runs", "20"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      counts: Record<string, number>;
      bytes_archived: number;
      watermark: string | null;
      recent_runs: { command: string; outcome: string }[];
    };
    // The objects verify found missing or altered went back to pending, for the next run to archive again.
    const db = new Database(rig.dbPath, { readonly: true });
    const marked = db
      .prepare("SELECT call_id FROM calls WHERE status = 'pending' AND error_kind LIKE 'verify_%'")
      .pluck()
      .all() as string[];
    db.close();
    // Rewritten and deleted; and the rotten one where that test runs (s3rver).
    assert.equal(marked.length, BACKEND === "s3rver" ? 3 : 2);
    assert.equal(s.counts.archived, 12 - marked.length);
    assert.equal(s.counts.pending, marked.length);
    assert.equal(
      s.bytes_archived,
      rig.sim.calls.filter((c) => !marked.includes(c.id)).reduce((n, c) => n + c.recording.size, 0),
    );
    assert.ok(s.watermark);
    const commands = s.recent_runs.map((x) => x.command);
    for (const c of ["run", "manifest", "verify", "verify-deep"])
      assert.ok(commands.includes(c), `${c} recorded`);
    assert.ok(s.recent_runs.some((x) => x.command === "verify-deep" && x.outcome === "failures"));
    const human = await rig.run(["status"]);
    assert.match(human.stdout, new RegExp(`archived\\s+${12 - marked.length}`));
  });
});
