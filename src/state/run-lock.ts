/**
 * The run lock (the `run_lock` table, one row): one run or reconcile at a time per state DB. Its holder beats a
 * heartbeat; a holder that died is taken over (integrity.ts checks the DB when that happens).
 */
import { isoNow, type Sql } from "./sql.js";
import type { LockHolder } from "./types.js";

/** Is a process on this host alive? (EPERM: alive, owned by another user.) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Is the lock's holder dead? On this host: its pid is gone (or is ours). Elsewhere: its heartbeat is stale. */
function holderDead(
  held: LockHolder,
  host: string,
  staleMs: number,
  isAlive: (pid: number) => boolean,
): boolean {
  if (held.host === host) return !isAlive(held.pid) || held.pid === process.pid;
  return Date.now() - Date.parse(held.heartbeat_at) > staleMs;
}

/** Who holds the run lock; null when it is free. */
export function lockHolder(sql: Sql): LockHolder | null {
  return (sql.st("SELECT * FROM run_lock WHERE id = 1").get() as LockHolder | undefined) ?? null;
}

/**
 * Take the run lock, or say who holds it. A holder on this host whose pid is gone, or any holder whose
 * heartbeat is older than `staleMs`, is dead: its lock is taken over.
 */
export function acquireLock(
  sql: Sql,
  taker: {
    runId: string;
    host: string;
    staleMs: number;
    isAlive: (pid: number) => boolean;
    onTakeover?: ((dead: LockHolder) => void) | undefined;
  },
): LockHolder | null {
  const { runId, host, staleMs, isAlive, onTakeover } = taker;
  let takenFrom: LockHolder | undefined;
  const holder = sql.db
    .transaction((): LockHolder | null => {
      const held = lockHolder(sql);
      if (held) {
        if (!holderDead(held, host, staleMs, isAlive)) return held;
        takenFrom = held;
      }
      const t = isoNow();
      sql
        .st(
          `INSERT INTO run_lock (id, run_id, pid, host, acquired_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, pid = excluded.pid, host = excluded.host,
             acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at`,
        )
        .run(runId, process.pid, host, t, t);
      return null;
    })
    .immediate();
  if (takenFrom) onTakeover?.(takenFrom);
  return holder;
}

export function heartbeat(sql: Sql, runId: string): void {
  sql.st("UPDATE run_lock SET heartbeat_at = ? WHERE id = 1 AND run_id = ?").run(isoNow(), runId);
}

export function releaseLock(sql: Sql, runId: string): void {
  sql.st("DELETE FROM run_lock WHERE id = 1 AND run_id = ?").run(runId);
}
