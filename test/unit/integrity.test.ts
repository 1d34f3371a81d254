/**
 * The integrity check runs where it earns its cost — verify (`always`), `status --check`, a lock taken over from a
 * dead process, after a command of this host died — and not on every open. A DB with a corrupt table page that no
 * query of the command reads shows the difference.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, writeSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { ArchiverError } from "../../src/base/errors.js";
import { StateDb } from "../../src/state/db.js";
import { acquireRunLock, openState } from "../../src/state/integrity.js";
import { readStatus } from "../../src/jobs/status.js";

const unusable = (e: unknown) =>
  e instanceof ArchiverError && e.code === "state_db_unusable" && /quick_check/.test(e.message);

/** A state DB whose calls table has one page of garbage in the middle (the indexes are intact). */
function corruptDb(): string {
  const path = join(mkdtempSync(join(tmpdir(), "integrity-")), "state.db");
  const s = StateDb.open(path);
  const insert = s.db.prepare(
    "INSERT INTO calls (call_id, call_json, first_seen_at, updated_at) VALUES (?, ?, 't', 't')",
  );
  s.db.transaction(() => {
    for (let i = 0; i < 400; i++) insert.run(`call_${i}`, "x".repeat(500));
  })();
  const leaves = s.db
    .prepare("SELECT pageno FROM dbstat WHERE name = 'calls' AND pagetype = 'leaf' ORDER BY pageno")
    .pluck()
    .all() as number[];
  const pageSize = s.db.pragma("page_size", { simple: true }) as number;
  s.db.pragma("wal_checkpoint(TRUNCATE)");
  s.close();
  const page = leaves[Math.floor(leaves.length / 2)]!;
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.alloc(pageSize - 8, 0xa5), 0, pageSize - 8, (page - 1) * pageSize + 8);
  closeSync(fd);
  return path;
}

test("not on every open: status and a command after clean shutdowns do not read the whole DB", () => {
  const path = corruptDb();
  assert.equal(readStatus(path).counts.pending, 400, "counts come from the index");
  openState(path).close();
});

test("verify's open and status --check find the corruption", () => {
  const path = corruptDb();
  assert.throws(() => openState(path, { always: true }), unusable);
  assert.throws(() => readStatus(path, 10, { check: true }), unusable);
});

test("after an unclean shutdown on this host: checked once, and the dead command is marked", () => {
  const path = corruptDb();
  const s = StateDb.open(path);
  const started = (id: string, pid: number) =>
    s.db
      .prepare(
        "INSERT INTO runs (id, command, mode, started_at, outcome, pid, host) VALUES (?, 'run', 'x', 't', 'running', ?, ?)",
      )
      .run(id, pid, hostname());
  started("dead", 4_000_001);
  started("alive", 4_000_002);
  s.close();
  const isAlive = (pid: number) => pid === 4_000_002;
  assert.throws(() => openState(path, { isAlive }), unusable);
  // Healthy DB, same situation: the check passes and the dead command is marked, so the next open skips it.
  const healthy = join(mkdtempSync(join(tmpdir(), "integrity-")), "state.db");
  const h = StateDb.open(healthy);
  h.db
    .prepare(
      "INSERT INTO runs (id, command, mode, started_at, outcome, pid, host) VALUES ('dead', 'run', 'x', 't', 'running', 4000001, ?)",
    )
    .run(hostname());
  h.close();
  openState(healthy, { isAlive }).close();
  const after = StateDb.open(healthy);
  const row = after.db.prepare("SELECT outcome, error FROM runs WHERE id = 'dead'").get() as {
    outcome: string;
    error: string;
  };
  after.close();
  assert.equal(row.outcome, "died");
  assert.match(row.error, /4000001 ended without finishing/);
});

test("a lock taken over from a dead process is followed by the check; a failing DB leaves the lock free", () => {
  const path = corruptDb();
  const s = StateDb.open(path);
  assert.equal(
    acquireRunLock(s, path, "r1", () => true),
    null,
    "a free lock: no check",
  );
  s.db.prepare("UPDATE run_lock SET pid = 4000003").run();
  assert.equal(acquireRunLock(s, path, "r2", () => true)?.run_id, "r1", "held by a live process");
  assert.throws(() => acquireRunLock(s, path, "r2", () => false), unusable);
  assert.equal(s.db.prepare("SELECT COUNT(*) FROM run_lock").pluck().get(), 0);
  s.close();
});
