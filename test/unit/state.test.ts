import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArchiverError } from "../../src/base/errors.js";
import { StateDb } from "../../src/state/db.js";
import { waitingCalls } from "../../src/state/scans.js";

const tmp = () => mkdtempSync(join(tmpdir(), "state-"));
const ID = "call_00000000-0000-4000-8000-000000000001";

test("migrations apply once and are recorded", () => {
  const path = join(tmp(), "a.db");
  StateDb.open(path).close();
  const s = StateDb.open(path);
  const rows = s.db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all() as {
    version: number;
    name: string;
  }[];
  assert.deepEqual(
    rows.map((r) => r.version),
    [1, 2, 3, 4, 5, 6, 8, 9, 10, 12],
  );
  assert.equal(s.db.pragma("journal_mode", { simple: true }), "wal");
  s.close();
});

test("call lifecycle: listed, duplicate within a run, archived, leftovers", () => {
  const s = StateDb.open(join(tmp(), "b.db"));
  const first = s.recordListed(ID, "2026-11-01T00:00:00Z", "{}", "run1");
  assert.equal(first.previous, undefined);
  assert.equal(first.duplicate, false);
  assert.equal(s.recordListed(ID, "2026-11-01T00:00:00Z", "{}", "run1").duplicate, true);
  s.markStatus(ID, "not_ready", { kind: "not_ready", message: "PROCESSING" });
  assert.deepEqual(
    [...waitingCalls(s, "run2", false)].map((r) => r.call_id),
    [ID],
    "not ready: retried by later runs",
  );
  s.markArchived(ID, {
    key: "k",
    contentType: "audio/mp4",
    recordingStartTime: null,
    durationSeconds: 3,
    sha256: "ab",
    bytes: 10,
    etag: null,
    versionId: null,
  });
  assert.deepEqual([...waitingCalls(s, "run2", false)], []);
  s.markStatus(ID, "failed", { kind: "permanent", message: "x" });
  assert.equal(s.getCall(ID)!.status, "archived", "an archived call never goes back");
  assert.equal(s.countsByStatus().archived.count, 1);
  assert.equal(s.countsByStatus().archived.bytes, 10);
  s.close();
});

test("an archived row without key, sha256 or bytes is impossible", () => {
  const s = StateDb.open(join(tmp(), "c.db"));
  s.recordListed(ID, null, "{}", "r");
  assert.throws(
    () => s.db.prepare("UPDATE calls SET status = 'archived' WHERE call_id = ?").run(ID),
    /CHECK constraint/,
  );
  s.close();
});

test("permanent failures wait for --retry-failed; retryable ones do not", () => {
  const s = StateDb.open(join(tmp(), "d.db"));
  const other = ID.replace(/1$/, "2");
  s.recordListed(ID, null, "{}", "r1");
  s.recordListed(other, null, "{}", "r1");
  s.markStatus(ID, "failed", { kind: "permanent", message: "bad" });
  s.markStatus(other, "failed", { kind: "retryable", message: "reset" });
  assert.deepEqual(
    [...waitingCalls(s, "r2", false)].map((r) => r.call_id),
    [other],
  );
  assert.equal([...waitingCalls(s, "r2", true)].length, 2);
  s.close();
});

test("the run lock: refused while held by a live process, taken over from a dead one", () => {
  const path = join(tmp(), "e.db");
  const a = StateDb.open(path);
  const b = StateDb.open(path);
  assert.equal(
    a.acquireLock("r1", "host1", 60_000, () => true),
    null,
  );
  // Same host, holder alive (pretend the holder is another pid that is alive).
  a.db.prepare("UPDATE run_lock SET pid = 999999").run();
  assert.equal(b.acquireLock("r2", "host1", 60_000, () => true)?.run_id, "r1");
  assert.equal(
    b.acquireLock("r2", "host1", 60_000, () => false),
    null,
    "dead pid: taken over",
  );
  // Another host: trusted until its heartbeat is stale.
  b.db.prepare("UPDATE run_lock SET host = 'other', heartbeat_at = ?").run(new Date().toISOString());
  assert.equal(a.acquireLock("r3", "host1", 60_000, () => true)?.run_id, "r2");
  b.db.prepare("UPDATE run_lock SET heartbeat_at = ?").run(new Date(Date.now() - 120_000).toISOString());
  assert.equal(
    a.acquireLock("r3", "host1", 60_000, () => true),
    null,
    "stale heartbeat: taken over",
  );
  a.releaseLock("r3");
  assert.equal(a.db.prepare("SELECT COUNT(*) FROM run_lock").pluck().get(), 0);
  a.close();
  b.close();
});

test("a file that is not a SQLite DB is a fatal, clear error", () => {
  const path = join(tmp(), "junk.db");
  writeFileSync(path, "this is not a database".repeat(100));
  assert.throws(
    () => StateDb.open(path),
    (e: unknown) => e instanceof ArchiverError && e.kind === "fatal" && /unusable/.test(e.message),
  );
});

test("multipart parts are recorded for resume, most complete upload first, and go with their upload", () => {
  const s = StateDb.open(join(tmp(), "f.db"));
  const part = (n: number) => ({
    partNumber: n,
    start: (n - 1) * 10,
    end: n * 10,
    etag: `"e${n}"`,
    prefixSha256: `p${n}`,
  });
  s.trackUpload({ uploadId: "u1", key: "k", callId: ID, runId: "r1", fingerprint: "f" });
  s.trackUpload({ uploadId: "u2", key: "k", callId: ID, runId: "r2", fingerprint: "f" });
  s.recordPart("u1", part(1));
  s.recordPart("u2", part(1));
  s.recordPart("u2", part(2));
  s.recordPart("gone", part(1)); // an upload already untracked: nothing recorded
  const ups = s.uploadsFor(ID);
  assert.deepEqual(
    ups.map((u) => [u.uploadId, u.parts.map((p) => p.partNumber)]),
    [
      ["u2", [1, 2]],
      ["u1", [1]],
    ],
  );
  assert.deepEqual(ups[0]!.parts[1], { ...part(2), checksumCRC32C: undefined, checksumSHA256: undefined });
  s.untrackUpload("u2");
  assert.equal(s.db.prepare("SELECT COUNT(*) FROM upload_parts WHERE upload_id = 'u2'").pluck().get(), 0);
  assert.equal(s.db.prepare("SELECT COUNT(*) FROM upload_parts").pluck().get(), 1);
  s.close();
});

test("group commit: other processes see changes at the next commit; a tracked upload at once", async () => {
  const path = join(tmp(), "g.db");
  const writer = StateDb.open(path);
  const reader = StateDb.open(path);
  const count = (sql: string) => reader.db.prepare(sql).pluck().get() as number;
  writer.startGroupCommit(50);
  writer.recordListed(ID, null, "{}", "r1");
  assert.equal(count("SELECT COUNT(*) FROM calls"), 0, "not committed yet");
  writer.trackUpload({ uploadId: "u", key: "k", callId: ID, runId: "r1", fingerprint: "f" });
  assert.equal(count("SELECT COUNT(*) FROM uploads"), 1, "an open upload is committed at once");
  writer.markStatus(ID, "not_ready");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(count("SELECT COUNT(*) FROM calls WHERE status = 'not_ready'"), 1, "committed by the timer");
  writer.markStatus(ID, "failed", { kind: "retryable", message: "x" });
  writer.stopGroupCommit();
  assert.equal(count("SELECT COUNT(*) FROM calls WHERE status = 'failed'"), 1, "committed on stop");
  assert.equal(writer.db.inTransaction, false);
  writer.close();
  reader.close();
});
