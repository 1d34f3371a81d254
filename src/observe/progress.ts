/**
 * Progress: a live line on a TTY, or a pino `progress` record every N seconds when not — never both; neither
 * with --quiet.
 */
import type { Logger } from "pino";
import type { RunObserver } from "./observer.js";
import type { LiveRun } from "./tally.js";

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export interface ProgressSnapshot {
  listed: number;
  done: number;
  total: number | null;
  archived: number;
  failed: number;
  bytes: number;
  /** MiB/s received from media URLs, rounded to 0.1. */
  mib_per_s: number;
  eta_s: number | null;
  retries: number;
  rate_limited: number;
  inflight: number;
}

/** A snapshot of a live run (the run's tally); ETA from the rate at which calls have been settled so far. */
export function snapshot(live: LiveRun, now = Date.now()): ProgressSnapshot {
  const s = live.summary;
  const done =
    s.archived + s.already_archived + s.not_ready + s.no_recording + s.failed + s.previously_failed;
  const elapsed = Math.max(0.001, (now - live.startedAt) / 1000);
  const total = live.totalCalls;
  const rate = done / elapsed;
  return {
    listed: s.listed,
    done,
    total,
    archived: s.archived,
    failed: s.failed,
    bytes: live.receivedBytes,
    mib_per_s: Math.round((live.receivedBytes / 1024 / 1024 / elapsed) * 10) / 10,
    eta_s: total !== null && rate > 0 ? Math.round(Math.max(0, (total - done) / rate)) : null,
    retries: s.retries,
    rate_limited: s.rate_limited,
    inflight: live.inflight,
  };
}

export function progressLine(p: ProgressSnapshot): string {
  const of = p.total !== null ? `/${p.total}` : "";
  return (
    `calls ${p.done}${of} done (${p.listed} listed) | archived ${p.archived}, ${formatBytes(p.bytes)} at ` +
    `${p.mib_per_s.toFixed(1)} MiB/s | ETA ${p.eta_s === null ? "?" : formatDuration(p.eta_s)} | ` +
    `${p.inflight} in flight | retries ${p.retries}, 429s ${p.rate_limited}` +
    (p.failed ? ` | failed ${p.failed}` : "")
  );
}

export interface ProgressOptions {
  mode: "tty" | "log" | "off";
  intervalMs: number;
  logger: Logger;
  stream?: NodeJS.WriteStream;
}

/** An observer that reports progress; stops by itself when the run finishes. */
export function progressReporter(opts: ProgressOptions): RunObserver {
  if (opts.mode === "off") return {};
  let timer: NodeJS.Timeout | undefined;
  let live: LiveRun | undefined;
  const stream = opts.stream ?? process.stderr;
  const draw = () => {
    if (!live) return;
    const p = snapshot(live);
    if (opts.mode === "tty") stream.write(`\r\x1b[2K${progressLine(p)}`);
    else opts.logger.info({ progress: p }, "progress");
  };
  return {
    runStarted(l) {
      live = l;
      timer = setInterval(draw, opts.mode === "tty" ? Math.min(opts.intervalMs, 250) : opts.intervalMs);
      timer.unref();
    },
    runFinished() {
      if (timer) clearInterval(timer);
      if (opts.mode === "tty") stream.write("\r\x1b[2K");
    },
  };
}
