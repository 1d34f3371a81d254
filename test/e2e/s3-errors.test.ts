/**
 * What a user is told when S3 refuses something, against real servers: the operation, the key, the HTTP status,
 * the S3 error code and the server's message (or that it sent none) — never a bare "UnknownError". And object
 * tags in any script, stored and read back.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { GetObjectTaggingCommand } from "@aws-sdk/client-s3";
import { describe, test } from "../helpers/backends.js";
import { logsOf, startRig, summaryOf, type Rig, type CliResult } from "../helpers/env.js";

const MiB = 1024 * 1024;

/** What a user reads: each log record's message and the summary's error (not the raw causes kept for debugging). */
const userText = (r: CliResult) =>
  logsOf(r)
    .map((l) => `${String(l.msg)} ${String(l.error ?? "")}`)
    .join("\n");

describe("S3 failures name themselves", () => {
  let rig: Rig;
  before(async () => {
    // Two recordings under the part size (single PUT), two above it (multipart).
    rig = await startRig({
      calls: { count: 4, seed: 61, days: 2, sizeBytes: { min: 100_000, max: 9 * MiB } },
    });
  });
  after(() => rig.close());

  test("a storage class the server does not have: operation, key, status and code, for a single PUT and a multipart upload", async () => {
    const small = rig.sim.calls.filter((c) => c.recording.size < 5 * MiB).length;
    assert.ok(small > 0 && small < rig.sim.calls.length, "the fixture has single and multipart uploads");
    const r = await rig.run(["run", "--json"], {
      ARCHIVER_STORAGE_CLASS: "STANDARD_IA",
      ARCHIVER_PART_SIZE_MB: "5",
    });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(summaryOf(r).failed, rig.sim.calls.length);
    const key = String.raw`recordings/\d{4}/\d{2}/\d{2}/call_[\w-]+\.(m4a|mp4)`;
    const named = (op: string) =>
      new RegExp(
        `recording failed: S3 ${op} ${key}: HTTP 400 InvalidArgument( \\(the server sent no message\\)|: .+)"`,
      );
    assert.match(r.stderr, named("PutObject"), "a single PUT");
    assert.match(r.stderr, named("CreateMultipartUpload"), "a multipart upload");
    assert.doesNotMatch(userText(r), /UnknownError/);
    const db = new Database(rig.dbPath, { readonly: true });
    const errors = db.prepare("SELECT last_error FROM calls").pluck().all() as string[];
    db.close();
    for (const e of errors)
      assert.match(e, /^S3 (PutObject|CreateMultipartUpload) .*HTTP 400 InvalidArgument/);
  });

  test("a wrong secret key: the operation, SignatureDoesNotMatch, and the setting to check", async () => {
    const r = await rig.run(["run", "--json", "--db", `${rig.dir}/secret.db`], {
      AWS_SECRET_ACCESS_KEY: "not-the-secret",
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /S3 ListObjectsV2 \(to name the HeadBucket refusal\): the request signature was refused \(check AWS_SECRET_ACCESS_KEY\): HTTP 403 SignatureDoesNotMatch/,
    );
    assert.doesNotMatch(userText(r), /UnknownError/);
    assert.doesNotMatch(r.stderr, /not-the-secret/);
  });
});

describe("object tags", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 2, seed: 62, days: 1, sizeBytes: 200_000 } });
  });
  after(() => rig.close());

  test("tags in any script (ü, Prüfung) are stored on recordings and sidecars and read back", async () => {
    const r = await rig.run(["run", "--json"], {
      ARCHIVER_TAGS: "ü=ü,Abteilung=Prüfung,owner=ops@example.com",
    });
    assert.equal(r.code, 0, r.stderr);
    const keys = await rig.listKeys("recordings/");
    assert.equal(keys.length, 4);
    for (const key of keys) {
      const out = await rig.client.send(new GetObjectTaggingCommand({ Bucket: rig.bucket, Key: key }));
      const tags = Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key, t.Value]));
      assert.deepEqual(tags, { ü: "ü", Abteilung: "Prüfung", owner: "ops@example.com" }, key);
    }
  });
});
