import { test } from "node:test";
import assert from "node:assert/strict";
import { objectParamsFor, retainUntil, tagging } from "../../src/s3/object-params.js";
import { csvField, formatRow, manifestRow } from "../../src/jobs/compliance/manifest.js";
import type { StorageSettings } from "../../src/base/config.js";

const now = new Date("2026-11-24T12:00:00Z");
const none: StorageSettings = {
  lockMode: undefined,
  retentionDays: undefined,
  legalHold: false,
  checksum: "NONE",
  sse: undefined,
  sseKmsKeyId: undefined,
  storageClass: undefined,
  tags: [],
};

test("retain-until is recording start + N days in UTC; a date already past is moved to tomorrow", () => {
  assert.deepEqual(retainUntil(10, "2026-11-20T08:30:00Z", now), {
    date: new Date("2026-11-30T08:30:00Z"),
    clamped: false,
  });
  assert.deepEqual(retainUntil(10, "2026-11-20T10:30:00+02:00", now).date, new Date("2026-11-30T08:30:00Z"));
  assert.deepEqual(retainUntil(30, "2020-01-01T00:00:00Z", now), {
    date: new Date("2026-11-25T12:00:00Z"),
    clamped: true,
  });
  assert.deepEqual(retainUntil(5, null, now).date, new Date("2026-11-29T12:00:00Z"), "no start: from now");
});

test("object parameters: nothing by default, everything when configured", () => {
  assert.deepEqual(objectParamsFor(none, "2026-11-20T00:00:00Z", now), {});
  const all = objectParamsFor(
    {
      ...none,
      lockMode: "GOVERNANCE",
      retentionDays: 365,
      legalHold: true,
      sse: "aws:kms",
      sseKmsKeyId: "arn:aws:kms:eu-west-1:1:key/abc",
      storageClass: "GLACIER_IR",
      tags: [
        ["team", "ops & sales"],
        ["retention", "1y"],
      ],
    },
    "2026-11-20T00:00:00Z",
    now,
  );
  assert.deepEqual(all, {
    ObjectLockMode: "GOVERNANCE",
    ObjectLockRetainUntilDate: new Date("2027-11-20T00:00:00Z"),
    ObjectLockLegalHoldStatus: "ON",
    ServerSideEncryption: "aws:kms",
    SSEKMSKeyId: "arn:aws:kms:eu-west-1:1:key/abc",
    StorageClass: "GLACIER_IR",
    Tagging: "team=ops%20%26%20sales&retention=1y",
  });
  assert.equal(tagging([]), undefined);
});

test("manifest rows: CSV quoting and JSONL", () => {
  assert.equal(csvField(null), "");
  assert.equal(csvField("plain"), "plain");
  assert.equal(csvField('a,"b"'), '"a,""b"""');
  assert.equal(csvField(true), "true");
  const row = manifestRow({
    call_id: "call_1",
    key: "recordings/2026/11/20/call_1.m4a",
    bytes: 10,
    sha256: "ab",
    content_type: "audio/mp4",
    recording_start_time: "2026-11-20T00:00:00Z",
    duration_seconds: 3.5,
    archived_at: "2026-11-24T00:00:00Z",
    etag: '"e1"',
    version_id: null,
    lock_mode: "COMPLIANCE",
    retain_until: "2033-11-18T00:00:00Z",
    legal_hold: 1,
    storage_class: null,
    sse: "AES256",
    tags: "team=ops%20%26%20sales",
    sidecar_version_id: "v2",
    sidecar_etag: null,
    sidecar_lock_mode: "COMPLIANCE",
    sidecar_retain_until: "2033-11-18T00:00:00Z",
    sidecar_legal_hold: 1,
  });
  // The ETag's bare value (issue 20: the quotes HTTP puts around it came out tripled in CSV).
  assert.equal(
    formatRow(row, "csv"),
    "call_1,recordings/2026/11/20/call_1.m4a,10,ab,audio/mp4,2026-11-20T00:00:00Z,3.5,2026-11-24T00:00:00Z,e1,,COMPLIANCE,2033-11-18T00:00:00Z,true,STANDARD,AES256,team=ops%20%26%20sales,v2,COMPLIANCE,2033-11-18T00:00:00Z,true\n",
  );
  assert.equal(JSON.parse(formatRow(row, "jsonl")).legal_hold, true);
  assert.equal(JSON.parse(formatRow(row, "jsonl")).etag, "e1");
});
