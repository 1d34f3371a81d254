/**
 * Where the state DB's integrity check runs. `PRAGMA quick_check` reads every page: ~0.13 s per 100k recordings
 * from the page cache, seconds from disk at a million, which every hourly run used to pay on open. It runs where
 * it earns that: `verify`, `status --check`, a run or reconcile that takes over a dead process's lock, and any
 * command after an unclean shutdown (a command of this host recorded as running whose process is gone).
 * SQLite itself still refuses a page it finds corrupt while reading it (SQLITE_CORRUPT is fatal, errors.ts).
 */
import { hostname } from "node:os";
import { StateDb, type LockHolder } from "./db.js";
import { pidAlive } from "./run-lock.js";
import { stateDbUnusable } from "./schema-guard.js";

/** A run lock held from another host is presumed dead after this long without a heartbeat. */
export const LOCK_STALE_MS = 60_000;
/** How often the holder of the run lock says it is alive. */
export const HEARTBEAT_MS = 5_000;

const checked = new WeakSet<StateDb>();

/** The integrity check; a DB that fails it is a fatal error naming the fix. */
export function checkIntegrity(state: StateDb, path: string): void {
  if (checked.has(state)) return;
  const result = String(state.db.pragma("quick_check", { simple: true }));
  if (result !== "ok") throw stateDbUnusable(path, `quick_check: ${result.slice(0, 300)}`);
  checked.add(state);
}

/**
 * Open the state DB for a command that writes to it. Commands of this host that were recorded as running and
 * whose process is gone ended uncleanly (killed, or the machine stopped): the DB is checked, and they are marked
 * `died` so that the next command does not check again. `verify` checks every time (`always`). `mustExist`: a
 * command that checks what was archived never creates a DB (a typo in the path must not pass as "nothing to check").
 */
export function openState(
  path: string,
  opts: { always?: boolean; mustExist?: boolean; isAlive?: (pid: number) => boolean } = {},
): StateDb {
  const state = StateDb.open(path, { mustExist: opts.mustExist ?? false });
  try {
    const host = hostname();
    const isAlive = opts.isAlive ?? pidAlive;
    const dead = (
      state.db.prepare("SELECT id, pid FROM runs WHERE outcome = 'running' AND host = ?").all(host) as {
        id: string;
        pid: number | null;
      }[]
    ).filter((r) => r.pid !== null && r.pid !== process.pid && !isAlive(r.pid));
    if (opts.always || dead.length > 0) checkIntegrity(state, path);
    // Each becomes a record of the audit trail: it may have changed the archive before it died.
    for (const r of dead)
      state.markDied(r.id, `process ${r.pid} ended without finishing (killed, or the machine stopped)`);
    return state;
  } catch (err) {
    state.close();
    throw err;
  }
}

/**
 * Take the run lock (StateDb.acquireLock); a lock taken over from a dead process means that process did not
 * shut down cleanly, so the DB is checked before it is used. A DB that fails leaves the lock free.
 */
export function acquireRunLock(
  state: StateDb,
  path: string,
  runId: string,
  isAlive: (pid: number) => boolean = pidAlive,
): LockHolder | null {
  let takenOver = false;
  const holder = state.acquireLock(runId, hostname(), LOCK_STALE_MS, isAlive, () => (takenOver = true));
  if (takenOver) {
    try {
      checkIntegrity(state, path);
    } catch (err) {
      state.releaseLock(runId);
      throw err;
    }
  }
  return holder;
}
