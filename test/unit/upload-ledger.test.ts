/**
 * The upload ledger against the real SQLite state and a small in-memory store of multipart uploads that fails
 * on the Nth call (an abort that S3 refuses answers false, as the real store does; a listing throws).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { ArchiverError } from "../../src/base/errors.js";
import { StateDb } from "../../src/state/db.js";
import { UploadLedger, type MultipartUploads } from "../../src/jobs/upload-ledger.js";

const PREFIX = "p/recordings/";
const HOUR = 3600_000;
const NOW = Date.parse("2026-11-27T12:00:00Z");
const id = (n: number) => `call_00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const keyOf = (n: number) => `${PREFIX}2026/11/01/${id(n)}.m4a`;

interface OpenUpload {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

/** Open multipart uploads in memory. Calls are numbered from 1; those in `failAt` fail. */
class FakeUploads implements MultipartUploads {
  readonly open = new Map<string, OpenUpload>();
  readonly calls: string[] = [];
  failAt = new Set<number>();
  private next = 1;

  create(key: string, initiated: Date | undefined = new Date(NOW)): string {
    const uploadId = `up-${this.next++}`;
    this.open.set(uploadId, { key, uploadId, initiated });
    return uploadId;
  }

  private fails(call: string): boolean {
    this.calls.push(call);
    return this.failAt.has(this.calls.length);
  }

  async listUploads(prefix: string): Promise<OpenUpload[]> {
    if (this.fails(`list ${prefix}`))
      throw new ArchiverError("retryable", "NotImplemented", "ListMultipartUploads is not supported");
    return [...this.open.values()].filter((u) => u.key.startsWith(prefix));
  }

  async abortUpload(_key: string, uploadId: string): Promise<boolean> {
    if (this.fails(`abort ${uploadId}`)) return false;
    this.open.delete(uploadId);
    return true;
  }
}

function logger() {
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as { msg: string; level: number });
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

function rig() {
  const state = StateDb.open(join(mkdtempSync(join(tmpdir(), "ledger-")), "state.db"));
  const store = new FakeUploads();
  const { log, lines } = logger();
  const ledger = (runId: string) => new UploadLedger(state, store, runId, log, () => NOW);
  return { state, store, lines, ledger };
}

/** Part n of a recording uploaded in 5 MiB parts with CRC32C checksums. */
const part = (n: number) => {
  const size = 5 * 1024 * 1024;
  return {
    partNumber: n,
    start: (n - 1) * size,
    end: n * size,
    etag: `"etag-${n}"`,
    checksumCRC32C: `crc-${n}`,
    prefixSha256: `sha-${n}`,
  };
};

/** An upload created in the store and tracked by `runId` with `parts` recorded parts, as a killed run leaves it. */
function leftBy(r: ReturnType<typeof rig>, runId: string, call: number, parts: number): string {
  const uploadId = r.store.create(keyOf(call));
  const hooks = r.ledger(runId).track(id(call), keyOf(call));
  hooks.onUploadStarted!(uploadId, "fp");
  for (let n = 1; n <= parts; n++) hooks.onPartStored!(uploadId, part(n));
  return uploadId;
}

const trackedIds = (s: StateDb) => s.trackedUploads().map((u) => u.upload_id);

test("sweep: each unarchived recording's upload with the most parts is kept, every other tracked one aborted", async () => {
  const r = rig();
  for (const n of [1, 2, 3]) r.state.recordListed(id(n), null, "{}", "old");
  const fewer = leftBy(r, "old", 1, 1);
  const best = leftBy(r, "old", 1, 2);
  const archived = leftBy(r, "old", 2, 3);
  r.state.markArchived(id(2), {
    key: keyOf(2),
    contentType: "audio/mp4",
    recordingStartTime: null,
    durationSeconds: 1,
    sha256: "ab",
    bytes: 30,
    etag: null,
    versionId: null,
  });
  const empty = leftBy(r, "old", 3, 0);

  const ledger = r.ledger("new");
  assert.equal(await ledger.sweep(PREFIX), 3);
  assert.deepEqual([...r.store.open.keys()], [best], "only the kept upload is still open in the store");
  assert.deepEqual(trackedIds(r.state), [best], "aborted uploads are forgotten");
  for (const gone of [fewer, archived, empty]) assert.ok(r.store.calls.includes(`abort ${gone}`));
  assert.ok(r.lines.some((l) => l.msg === "interrupted multipart uploads kept to be resumed"));

  assert.equal(ledger.claim(id(2)), undefined, "an archived recording has nothing to resume");
  const claimed = ledger.claim(id(1));
  assert.equal(claimed?.uploadId, best);
  assert.deepEqual(
    claimed?.parts.map((p) => p.partNumber),
    [1, 2],
    "the claim carries the recorded parts",
  );
  assert.equal(ledger.claim(id(1)), undefined, "a kept upload is taken over at most once");
});

test("sweep: an abort the store refuses keeps the row, and the next run's sweep aborts it", async () => {
  const r = rig();
  r.state.recordListed(id(1), null, "{}", "old");
  const stuck = leftBy(r, "old", 1, 0);
  const other = leftBy(r, "old", 1, 0);
  r.store.failAt = new Set([1]); // the first call: the abort of `stuck`
  assert.equal(await r.ledger("run2").sweep(PREFIX), 1);
  assert.deepEqual(trackedIds(r.state), [stuck], "the upload S3 would not abort is still tracked");
  assert.ok(r.store.open.has(stuck));
  assert.ok(!r.store.open.has(other));

  assert.equal(await r.ledger("run3").sweep(PREFIX), 1);
  assert.deepEqual(trackedIds(r.state), []);
  assert.deepEqual([...r.store.open.keys()], []);
});

test("abortUnclaimed: kept uploads no transfer took over are aborted at the end; this run's own are not", async () => {
  const r = rig();
  for (const n of [1, 2, 3]) r.state.recordListed(id(n), null, "{}", "old");
  const kept = leftBy(r, "old", 1, 2);
  const refused = leftBy(r, "old", 2, 1);
  const ledger = r.ledger("new");
  assert.equal(await ledger.sweep(PREFIX), 0, "both are kept to be resumed");
  const mine = r.store.create(keyOf(3));
  ledger.track(id(3), keyOf(3)).onUploadStarted!(mine, "fp");

  r.store.failAt = new Set([r.store.calls.length + 2]); // the second abort at the end: `refused`'s
  assert.equal(await ledger.abortUnclaimed(), 1);
  assert.ok(!r.store.open.has(kept), "an unclaimed kept upload is aborted");
  assert.deepEqual(
    trackedIds(r.state).sort(),
    [mine, refused].sort(),
    "this run's upload stays; a refused abort keeps its row",
  );
  assert.ok(r.store.open.has(mine) && r.store.open.has(refused));
  assert.ok(
    r.lines.some((l) => l.msg === "aborted interrupted multipart uploads that this run had no work for"),
  );
});

test("sweep: untracked leftovers under the prefix — ours aborted, others' only when older than a day", async () => {
  const r = rig();
  r.state.recordListed(id(1), null, "{}", "old");
  const at = (ms: number) => new Date(NOW - ms);
  const ours = r.store.create(keyOf(1), at(1000)); // a call this DB knows, created a second ago
  const othersFresh = r.store.create(keyOf(2), at(23 * HOUR));
  const othersStale = r.store.create(keyOf(3), at(24 * HOUR));
  const notACall = r.store.create(`${PREFIX}2026/11/01/notes.txt`, at(1000));
  const notACallStale = r.store.create(`${PREFIX}2026/11/01/notes.txt`, at(25 * HOUR));
  const noDate = r.store.create(keyOf(4), undefined);
  const outside = r.store.create(`q/recordings/2026/11/01/${id(5)}.m4a`, at(48 * HOUR));

  assert.equal(await r.ledger("new").sweep(PREFIX), 3);
  assert.deepEqual(r.store.calls[0], `list ${PREFIX}`);
  assert.deepEqual(
    [...r.store.open.keys()].sort(),
    [othersFresh, notACall, noDate, outside].sort(),
    "left: another's fresh uploads, one of unknown age, and everything outside the prefix",
  );
  for (const gone of [ours, othersStale, notACallStale]) assert.ok(!r.store.open.has(gone));
});

test("sweep: a store that cannot list uploads sweeps the tracked ones and says so; a fatal answer stops the run", async () => {
  const r = rig();
  r.state.recordListed(id(1), null, "{}", "old");
  const tracked = leftBy(r, "old", 1, 0);
  const untracked = r.store.create(keyOf(1));
  r.store.failAt = new Set([2]); // after the abort of `tracked`: the listing
  assert.equal(await r.ledger("new").sweep(PREFIX), 1);
  assert.ok(!r.store.open.has(tracked) && r.store.open.has(untracked));
  const said = () =>
    r.lines.filter(
      (l) =>
        l.level === 40 &&
        l.msg.startsWith("the S3 endpoint cannot list multipart uploads: untracked leftovers are not swept"),
    ).length;
  assert.equal(said(), 1);
  // The next run in this process (a worker's next tick: the same logger) does not warn again.
  r.store.failAt = new Set([r.store.calls.length + 1]); // the next listing fails as well
  await r.ledger("next").sweep(PREFIX);
  assert.ok(r.lines.some((l) => l.level === 20 && l.msg.startsWith("the S3 endpoint cannot list")));
  assert.equal(said(), 1, "said once per process");

  const fatal = new ArchiverError("fatal", "AccessDenied", "access denied");
  r.store.listUploads = async () => {
    throw fatal;
  };
  await assert.rejects(r.ledger("later").sweep(PREFIX), (err) => err === fatal);
});

test("track: the upload and its parts are recorded as the store confirms them, and forgotten when it ends", async () => {
  const r = rig();
  r.state.recordListed(id(1), null, "{}", "run1");
  const uploadId = r.store.create(keyOf(1));
  const hooks = r.ledger("run1").track(id(1), keyOf(1));
  hooks.onUploadStarted!(uploadId, "fp-1");
  hooks.onPartStored!(uploadId, part(1));
  hooks.onCompleting!(uploadId);
  assert.deepEqual(r.state.trackedUploads(), [
    { upload_id: uploadId, key: keyOf(1), call_id: id(1), run_id: "run1" },
  ]);
  const [up] = r.state.uploadsFor(id(1));
  assert.equal(up?.fingerprint, "fp-1");
  assert.deepEqual(up?.parts, [{ ...part(1), checksumSHA256: undefined }]);
  hooks.onUploadEnded!(uploadId);
  assert.deepEqual(r.state.trackedUploads(), []);
  hooks.onPartStored!(uploadId, part(2));
  assert.deepEqual(r.state.uploadsFor(id(1)), [], "a part of a forgotten upload is not recorded");
});
