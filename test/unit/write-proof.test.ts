/**
 * The write proof (src/s3/write-proof.ts): each answer judged against the bytes sent, and the real transfer on an
 * in-memory ObjectStore whose Nth write stores other bytes than it was sent (the request's body swapped on the
 * way): caught, the wrong object deleted or the part sent again, the true bytes stored; after the retries, a
 * failure naming the key, the part and both digests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import pino from "pino";
import { classify, WriteMismatch } from "../../src/base/errors.js";
import { ServerProof } from "../../src/s3/checksum-echo.js";
import { S3Sink, type TransferInput } from "../../src/s3/s3.js";
import { proveAnswer, weakest } from "../../src/s3/write-proof.js";
import { FAST_POLICY, MemoryStore, s3Error } from "../helpers/memory-store.js";

const MiB = 1024 ** 2;
const PART = 5 * MiB;
const POLICY = FAST_POLICY;
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const sinkOn = (store: MemoryStore) =>
  new S3Sink(
    store,
    { bucket: store.bucket, partSize: PART, queueSize: 1, checksum: "NONE" },
    POLICY,
    pino({ level: "silent" }),
  );

function input(key: string, source: Buffer): TransferInput {
  return {
    key,
    contentType: "audio/mpeg",
    metadata: {},
    objectParams: {},
    expectedBytes: source.length,
    open: (offset) => {
      const chunks: Buffer[] = [];
      for (let at = offset; at < source.length; at += MiB) chunks.push(source.subarray(at, at + MiB));
      return Promise.resolve({ body: Readable.from(chunks), skip: 0, totalBytes: source.length });
    },
  };
}

/**
 * The write's body swapped for as many zero bytes: what reaches the store is not what was sent. The SHA-256 a
 * PUT declares is dropped too: this store checks it as AWS does, s3rver and Ceph RGW 16.2 do not.
 */
const corruptBody = (args: unknown[]) => {
  const req = args[0] as { body: unknown; length: number; checksumSHA256?: string };
  req.body = Buffer.alloc(req.length);
  delete req.checksumSHA256;
};

test("an answer proves the bytes sent by the echoed checksum, else the ETag; else it needs a read-back", () => {
  const body = Buffer.from("recording");
  const sum = createHash("sha256").update(body).digest("base64");
  const sent = { key: "k", md5: md5(body), etagIsMd5: true };
  assert.equal(
    proveAnswer({ ...sent, checksumSHA256: sum }, { etag: "x", versionId: undefined, checksumSHA256: sum }),
    "checksum",
  );
  assert.equal(
    proveAnswer(
      { ...sent, sdkChecksum: "CRC32C" },
      { etag: "", versionId: undefined, checksumCRC32C: "AAAAAA==" },
    ),
    "checksum",
  );
  assert.equal(proveAnswer(sent, { etag: `"${md5(body).toUpperCase()}"`, versionId: undefined }), "etag");
  assert.equal(
    proveAnswer({ ...sent, etagIsMd5: false }, { etag: `"${"0".repeat(32)}"`, versionId: undefined }),
    "read-back",
  );
  assert.equal(
    proveAnswer({ ...sent, md5: undefined }, { etag: `"${md5(body)}"`, versionId: undefined }),
    "read-back",
  );
  assert.equal(proveAnswer(sent, { etag: "", versionId: undefined }), "read-back");
  const wrong = md5(Buffer.from("recordinh"));
  assert.throws(
    () => proveAnswer({ ...sent, partNumber: 3 }, { etag: `"${wrong}"`, versionId: undefined }),
    (err: unknown) => {
      assert.ok(err instanceof WriteMismatch);
      assert.equal(classify(err).kind, "retryable");
      assert.equal(
        err.message,
        `S3 stored other bytes than were sent for part 3 of k: MD5 of the bytes sent ${md5(body)}, the server's ETag ${wrong}`,
      );
      return true;
    },
  );
  assert.throws(
    () =>
      proveAnswer(
        { ...sent, checksumSHA256: sum },
        { etag: "", versionId: undefined, checksumSHA256: Buffer.alloc(32).toString("base64") },
      ),
    /SHA-256 of the bytes sent [0-9a-f]{64}, the server's checksum 0{64}/,
  );
  assert.equal(weakest(["checksum", "etag", "checksum"]), "etag");
  assert.equal(weakest(["etag", "read-back"]), "read-back");
});

test("the server's own finding of a corrupted body (BadDigest, a signed payload's SHA-256) is retryable", () => {
  for (const code of ["BadDigest", "XAmzContentSHA256Mismatch"])
    assert.equal(classify(s3Error(code, 400)).kind, "retryable", code);
});

test("learned once per run: a kind of write whose answers echo a verified checksum needs no MD5", () => {
  const p = new ServerProof(pino({ level: "silent" }));
  assert.equal(p.needsMd5("PutObject"), true, "unknown until an answer says");
  p.learn("PutObject", "checksum");
  p.learn("UploadPart", "etag");
  assert.deepEqual([p.needsMd5("PutObject"), p.needsMd5("UploadPart")], [false, true]);
  p.learn("PutObject", "read-back"); // an answer without the echo after all: MD5 again from now on
  assert.equal(p.needsMd5("PutObject"), true);
  p.learn("PutObject", "checksum");
  assert.equal(p.needsMd5("PutObject"), true, "never trusted again in this run");
});

test("a single PUT stored wrong once: the wrong object deleted, sent again, the true bytes stored", async () => {
  const store = new MemoryStore().failAt("put", 1, corruptBody);
  const source = randomBytes(300_000);
  const r = await sinkOn(store).transfer(input("a.mp3", source));
  assert.equal(r.proof, "etag");
  assert.equal(r.sha256, sha256(source));
  assert.ok(store.objects.get("a.mp3")!.body.equals(source), "the true bytes");
  assert.deepEqual([store.calls.put, store.calls.deleteObject], [2, 1]);
});

test("part 2 stored wrong once: that part sent again before the completion; the completed ETag checked", async () => {
  const store = new MemoryStore().failAt("uploadPart", 2, corruptBody);
  const source = randomBytes(12 * MiB);
  const r = await sinkOn(store).transfer(input("b.mp3", source));
  assert.equal(r.proof, "etag");
  assert.ok(store.objects.get("b.mp3")!.body.equals(source), "the true bytes");
  assert.equal(store.calls.uploadPart, 4, "three parts, the second sent twice");
  assert.equal(store.calls.deleteObject, undefined, "nothing wrong was completed");
});

test("stored wrong on every try: a failure naming the key, the part and both digests; nothing left stored", async () => {
  const source = randomBytes(300_000);
  const put = new MemoryStore().failAt("put", 1, corruptBody, 3);
  await assert.rejects(sinkOn(put).transfer(input("c.mp3", source)), (err: unknown) => {
    assert.ok(err instanceof WriteMismatch);
    assert.equal(
      err.message,
      `S3 stored other bytes than were sent for c.mp3: MD5 of the bytes sent ${md5(source)}, the server's ETag ${md5(Buffer.alloc(source.length))}`,
    );
    return true;
  });
  assert.equal(put.objects.size, 0, "every wrong object deleted");

  const big = randomBytes(12 * MiB);
  const part = new MemoryStore().failAt("uploadPart", 2, corruptBody, 3);
  await assert.rejects(sinkOn(part).transfer(input("d.mp3", big)), (err: unknown) => {
    const c = classify(err);
    assert.equal(c.code, "part_failed");
    const sent = md5(big.subarray(PART, 2 * PART));
    assert.match(
      c.message,
      new RegExp(`part 2 of d\\.mp3: MD5 of the bytes sent ${sent}, the server's ETag [0-9a-f]{32}`),
    );
    return true;
  });
  assert.deepEqual([part.objects.size, part.uploads.size], [0, 0], "no object, the upload aborted");
});

test("a corrupt object that claims the source's SHA-256 is not adopted (read back, stored_corrupt)", async () => {
  const store = new MemoryStore();
  const source = randomBytes(300_000);
  const bad = Buffer.from(source);
  bad[1000]! ^= 1;
  await store.put({
    key: "e.mp3",
    body: bad,
    length: bad.length,
    contentType: "audio/mpeg",
    metadata: { sha256: sha256(source) },
    params: {},
  });
  await assert.rejects(
    sinkOn(store).transfer({ ...input("e.mp3", source), checkBeforeWrite: true }),
    (err: unknown) => classify(err).code === "stored_corrupt" && /hash to [0-9a-f]{64}/.test(String(err)),
  );
  assert.ok(store.objects.get("e.mp3")!.body.equals(bad), "left as it is");
});

test("a wrong object the bucket will not delete (a lock keeps it): a permanent failure naming it", async () => {
  const store = new MemoryStore()
    .failAt("put", 1, corruptBody)
    .failAt(
      "deleteObject",
      1,
      s3Error("AccessDenied", 403, "Access Denied because object protected by object lock."),
    );
  const source = randomBytes(300_000);
  await assert.rejects(sinkOn(store).transfer(input("f.mp3", source)), (err: unknown) => {
    const c = classify(err);
    assert.deepEqual([c.kind, c.code], ["permanent", "wrong_bytes_kept"]);
    assert.match(
      c.message,
      new RegExp(
        `^S3 stored other bytes than were sent for f\\.mp3: MD5 of the bytes sent ${md5(source)}, the server's ETag [0-9a-f]{32}; that object, f\\.mp3, could not be deleted \\(.*Access Denied.*\\) — in an Object Lock bucket its retention or legal hold keeps it\\. It is not recorded as archived`,
      ),
    );
    return true;
  });
  assert.equal(store.calls.put, 1, "not sent again over a version that stays");
});
