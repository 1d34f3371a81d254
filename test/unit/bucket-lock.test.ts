/**
 * A bucket that cannot lock is refused once, at the start, naming the setting and what the bucket showed
 * (src/s3/bucket-checks.ts); a version the bucket will not protect is named in plain words (lock-evidence.ts).
 * On the in-memory ObjectStore, whose GetObjectLockConfiguration says "not configured", whose versioning is off
 * and whose PutObjectRetention answers 501.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import pino from "pino";
import { ArchiverError } from "../../src/base/errors.js";
import { checkObjectLock } from "../../src/s3/bucket-checks.js";
import { RepairLog, settleEvidence } from "../../src/s3/lock-evidence.js";
import { S3Sink } from "../../src/s3/s3.js";
import type { Versioning } from "../../src/s3/versioning.js";
import { FAST_POLICY, MemoryStore, s3Error } from "../helpers/memory-store.js";

const ASKED = "ARCHIVER_OBJECT_LOCK_MODE=COMPLIANCE";

function sinkOn(store: MemoryStore, logger = pino({ level: "silent" })) {
  return new S3Sink(
    store,
    { bucket: store.bucket, partSize: 5 << 20, queueSize: 1, checksum: "NONE" },
    FAST_POLICY,
    logger,
  );
}

function recordingLogger() {
  const seen: { msg: string; level: number }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      seen.push(JSON.parse(chunk.toString()) as { msg: string; level: number });
      done();
    },
  });
  return { logger: pino({ level: "info" }, destination), lines: () => seen };
}

const fatalNaming =
  (...parts: RegExp[]) =>
  (err: unknown) => {
    assert.ok(err instanceof ArchiverError, String(err));
    assert.equal(err.kind, "fatal");
    assert.equal(err.code, "object_lock_disabled");
    for (const p of parts) assert.match(err.message, p);
    return true;
  };

test("no Object Lock configuration: fatal, naming the setting and what GetObjectLockConfiguration answered", async () => {
  const sink = sinkOn(new MemoryStore("plain"));
  await assert.rejects(
    checkObjectLock(sink, ASKED, () => Promise.resolve("off")),
    fatalNaming(
      /bucket "plain" does not have Object Lock enabled/,
      /ObjectLockConfigurationNotFoundError/,
      /ARCHIVER_OBJECT_LOCK_MODE=COMPLIANCE cannot be honoured/,
    ),
  );
});

test("the lock question unanswered (501) and versioning shown off or suspended: fatal, naming both answers", async () => {
  for (const v of ["off", "suspended"] as const) {
    const store = new MemoryStore("quiet").failAt("objectLock", 1, s3Error("NotImplemented", 501));
    await assert.rejects(
      checkObjectLock(sinkOn(store), ASKED, () => Promise.resolve(v)),
      fatalNaming(
        /NotImplemented \(HTTP 501\)/,
        new RegExp(`shows versioning ${v}`),
        /ARCHIVER_OBJECT_LOCK_MODE/,
      ),
    );
  }
});

test("the lock question unanswered and versioning enabled or unreadable: a warning, the run goes on", async () => {
  for (const v of ["enabled", "unknown"] as Versioning[]) {
    const { logger, lines } = recordingLogger();
    const store = new MemoryStore().failAt("objectLock", 1, s3Error("AccessDenied", 403));
    assert.equal(await checkObjectLock(sinkOn(store, logger), ASKED, () => Promise.resolve(v)), "unknown");
    assert.ok(
      lines().some(
        (l) => l.level === 40 && /could not read the bucket's Object Lock configuration/.test(l.msg),
      ),
      JSON.stringify(lines()),
    );
  }
});

test("a version the bucket will not lock: its message says what the bucket shows, never 'lacks no retention'", async () => {
  const store = new MemoryStore();
  const sink = sinkOn(store);
  await sink.putObject({
    key: "k",
    body: Buffer.from("x"),
    length: 1,
    contentType: "audio/mp4",
    metadata: {},
    params: {},
  });
  const until = new Date("2040-01-01T00:00:00Z");
  const ctx = {
    sink,
    wanted: { retention: { mode: "GOVERNANCE", until }, legalHold: false, tags: null },
    versioned: false,
    repairs: new RepairLog(pino({ level: "silent" })),
  };
  await assert.rejects(
    settleEvidence(ctx, { key: "k", etag: null, versionId: null }, "PutObject"),
    (err: Error) => {
      assert.match(
        err.message,
        /^k shows no retention \(asked: GOVERNANCE retention until 2040-01-01T00:00:00\.000Z\), and PutObjectRetention failed: NotImplemented \(HTTP 501\)/,
      );
      assert.doesNotMatch(err.message, /lacks no/);
      return true;
    },
  );
});
