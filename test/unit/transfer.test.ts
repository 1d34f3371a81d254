/**
 * The real transfer (src/s3/transfer*.ts, resume.ts, already-stored.ts) on an in-memory ObjectStore that fails the
 * Nth call of an operation: a failed part (retried, then permanent), a stop mid-part (the upload kept for the next
 * run, its stored parts recorded), a vanished upload (restarted from byte 0), a resume after the stored parts, and
 * "already in S3?" decided before writing. Every result is checked byte for byte against the source.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import pino from "pino";
import { StopRequested } from "../../src/base/errors.js";
import { SourceChanged } from "../../src/s3/conflict.js";
import { S3Sink, type ResumableUpload, type StoredPart, type TransferInput } from "../../src/s3/s3.js";
import { FAST_POLICY, MemoryStore, s3Error } from "../helpers/memory-store.js";

const MiB = 1024 ** 2;
const PART = 5 * MiB;
const POLICY = FAST_POLICY;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function sinkOn(store: MemoryStore, signal?: AbortSignal) {
  const settings = { bucket: store.bucket, partSize: PART, queueSize: 1, checksum: "NONE" as const };
  return new S3Sink(store, settings, POLICY, pino({ level: "silent" }), signal);
}

/** What a transfer told its caller: uploads started and ended, parts stored. */
function recorder() {
  return {
    started: [] as string[],
    ended: [] as string[],
    parts: [] as StoredPart[],
    fingerprint: "",
  };
}

function input(key: string, source: Buffer, rec = recorder()): TransferInput {
  return {
    key,
    contentType: "audio/mpeg",
    metadata: { "call-id": "c1" },
    objectParams: {},
    expectedBytes: source.length,
    // Sent in 1 MiB chunks, from the offset asked for, as a server honouring Range does.
    open: (offset) => {
      const chunks: Buffer[] = [];
      for (let at = offset; at < source.length; at += MiB) chunks.push(source.subarray(at, at + MiB));
      return Promise.resolve({ body: Readable.from(chunks), skip: 0, totalBytes: source.length });
    },
    onUploadStarted: (id, fp) => {
      rec.started.push(id);
      rec.fingerprint = fp;
    },
    onUploadEnded: (id) => rec.ended.push(id),
    onPartStored: (_id, p) => rec.parts.push(p),
  };
}

/** The object under `key`, byte for byte the source. */
function assertStored(store: MemoryStore, key: string, source: Buffer): void {
  const o = store.objects.get(key);
  assert.ok(o, `${key} is stored`);
  assert.equal(o.body.length, source.length);
  assert.ok(o.body.equals(source), "byte for byte the source");
}

const partsSent = (store: MemoryStore) => store.log.filter((l) => l.startsWith("uploadPart"));

test("a large recording: three parts, byte-exact, its SHA-256 and the multipart ETag; the upload ends", async () => {
  const store = new MemoryStore();
  const source = randomBytes(2 * PART + 123_457);
  const rec = recorder();
  const r = await sinkOn(store).transfer(input("rec/a.mp3", source, rec));
  assertStored(store, "rec/a.mp3", source);
  assert.equal(r.sha256, sha256(source));
  assert.equal(r.bytes, source.length);
  assert.equal(r.multipart, true);
  assert.equal(r.etag, store.objects.get("rec/a.mp3")!.etag);
  assert.match(r.etag!, /-3"$/);
  assert.deepEqual(
    rec.parts.map((p) => [p.partNumber, p.start, p.end]),
    [
      [1, 0, PART],
      [2, PART, 2 * PART],
      [3, 2 * PART, source.length],
    ],
  );
  assert.equal(rec.parts[1]!.prefixSha256, sha256(source.subarray(0, 2 * PART)));
  assert.deepEqual(rec.ended, rec.started, "the completed upload is no longer tracked");
  assert.equal(store.uploads.size, 0);
});

test("a small recording: one conditional PUT carrying its SHA-256 in metadata and as its checksum", async () => {
  const store = new MemoryStore();
  const source = randomBytes(200_000);
  const r = await sinkOn(store).transfer(input("rec/s.mp3", source));
  assertStored(store, "rec/s.mp3", source);
  assert.equal(r.sha256, sha256(source));
  assert.equal(r.multipart, false);
  assert.equal(store.objects.get("rec/s.mp3")!.metadata.sha256, sha256(source));
  assert.deepEqual(store.log, ["put rec/s.mp3"], "no look before writing: the PUT's condition is the check");
});

test("a failed part is retried and the recording stored whole", async () => {
  const store = new MemoryStore().failAt("uploadPart", 2, s3Error("InternalError", 500));
  const source = randomBytes(2 * PART + 10);
  const r = await sinkOn(store).transfer(input("rec/b.mp3", source));
  assertStored(store, "rec/b.mp3", source);
  assert.equal(r.sha256, sha256(source));
  assert.deepEqual(partsSent(store), [
    "uploadPart rec/b.mp3 1",
    "uploadPart rec/b.mp3 2",
    "uploadPart rec/b.mp3 2",
    "uploadPart rec/b.mp3 3",
  ]);
});

test("a part that fails through every retry fails the recording permanently and aborts its upload", async () => {
  const store = new MemoryStore().failAt("uploadPart", 2, s3Error("InternalError", 500), 10);
  const source = randomBytes(2 * PART + 10);
  const rec = recorder();
  await assert.rejects(sinkOn(store).transfer(input("rec/c.mp3", source, rec)), (err: unknown) => {
    const e = err as { kind: string; code: string };
    assert.equal(e.kind, "permanent");
    assert.equal(e.code, "part_failed");
    return true;
  });
  assert.equal(partsSent(store).filter((l) => l.endsWith(" 2")).length, 1 + POLICY.retries);
  assert.equal(store.objects.size, 0, "no object");
  assert.equal(store.uploads.size, 0, "the upload is aborted: no parts left behind");
  assert.deepEqual(rec.ended, rec.started);
});

test("a vanished upload (NoSuchUpload) starts the recording again from byte 0 with a new upload", async () => {
  const store = new MemoryStore();
  store.failAt("uploadPart", 2, () => store.dropUploads());
  const source = randomBytes(2 * PART + 77);
  const rec = recorder();
  const r = await sinkOn(store).transfer(input("rec/d.mp3", source, rec));
  assertStored(store, "rec/d.mp3", source);
  assert.equal(r.sha256, sha256(source));
  assert.equal(store.calls.createUpload, 2, "a second upload");
  // The part's request was retried as S3 requests are (NoSuchUpload may be a replica lagging), then the upload
  // counted as gone.
  assert.deepEqual(partsSent(store).slice(-3), [
    "uploadPart rec/d.mp3 1",
    "uploadPart rec/d.mp3 2",
    "uploadPart rec/d.mp3 3",
  ]);
  assert.equal(r.resumedBytes, undefined);
});

test("stopped mid-part: the upload is kept with its stored parts recorded; the next run resumes after them", async () => {
  const store = new MemoryStore();
  const stop = new AbortController();
  store.failAt("uploadPart", 2, () => stop.abort());
  const source = randomBytes(2 * PART + 4321);
  const rec = recorder();
  await assert.rejects(sinkOn(store, stop.signal).transfer(input("rec/e.mp3", source, rec)), StopRequested);
  assert.equal(store.uploads.size, 1, "the upload is kept for the next run");
  assert.deepEqual(rec.ended, [], "and still tracked");
  assert.deepEqual(
    rec.parts.map((p) => p.partNumber),
    [1],
    "the part stored before the stop is recorded",
  );

  const resume: ResumableUpload = {
    uploadId: rec.started[0]!,
    key: "rec/e.mp3",
    fingerprint: rec.fingerprint,
    parts: rec.parts,
  };
  const before = partsSent(store).length;
  const next = recorder();
  const r = await sinkOn(store).transfer({ ...input("rec/e.mp3", source, next), resume });
  assertStored(store, "rec/e.mp3", source);
  assert.equal(r.sha256, sha256(source), "the SHA-256 rebuilt from the re-read prefix");
  assert.equal(r.resumedBytes, PART);
  assert.deepEqual(partsSent(store).slice(before), ["uploadPart rec/e.mp3 2", "uploadPart rec/e.mp3 3"]);
  assert.deepEqual(next.started, [], "no new upload");
  assert.deepEqual(next.ended, [resume.uploadId]);
});

test("already in S3: an interrupted run's completion that landed is the recording, nothing read or written", async () => {
  const store = new MemoryStore();
  const source = randomBytes(PART + 99);
  const first = recorder();
  await sinkOn(store).transfer(input("rec/f.mp3", source, first));
  const resume: ResumableUpload = {
    uploadId: first.started[0]!,
    key: "rec/f.mp3",
    fingerprint: first.fingerprint,
    parts: first.parts,
  };
  store.log.length = 0;
  const rec = recorder();
  const r = await sinkOn(store).transfer({
    ...input("rec/f.mp3", source, rec),
    resume,
    checkBeforeWrite: false,
  });
  assert.equal(r.completedEarlier, true);
  assert.equal(r.sha256, sha256(source));
  assert.deepEqual(rec.ended, [resume.uploadId], "the caller untracks it");
  assert.deepEqual(store.log, ["head rec/f.mp3"]);
});

test("already in S3: the same bytes are adopted, other bytes are SourceChanged, nothing written over", async () => {
  const store = new MemoryStore();
  const source = randomBytes(300_000);
  await sinkOn(store).transfer(input("rec/g.mp3", source));
  store.log.length = 0;
  const r = await sinkOn(store).transfer({ ...input("rec/g.mp3", source), checkBeforeWrite: true });
  assert.equal(r.adopted, true);
  assert.equal(r.sha256, sha256(source));
  assert.ok(!store.log.some((l) => l.startsWith("put")), "nothing written");
  const other = randomBytes(300_000);
  await assert.rejects(
    sinkOn(store).transfer({ ...input("rec/g.mp3", other), checkBeforeWrite: true }),
    SourceChanged,
  );
  assertStored(store, "rec/g.mp3", source);
  // Not asked (a key the caller knows to be new): no look before writing; the PUT's condition still refuses it,
  // and the archive there (older than this transfer, its sidecar naming it) is a source that changed.
  const stored = store.objects.get("rec/g.mp3")!;
  stored.lastModified = new Date(Date.now() - 3_600_000);
  const archive = {
    key: "rec/g.mp3",
    bytes: source.length,
    etag: stored.etag,
    sha256: sha256(source),
    run_id: "r0",
  };
  await sinkOn(store).putJson("rec/g.mp3.json", { archive }, {});
  store.log.length = 0;
  await assert.rejects(sinkOn(store).transfer(input("rec/g.mp3", other)), SourceChanged);
  assert.equal(store.log[0], "put rec/g.mp3");
  assertStored(store, "rec/g.mp3", source);
});
