/**
 * Prometheus metrics: served on /metrics by the worker, or written by a one-shot run in node_exporter's textfile
 * format (--metrics-file). One registry per process; the run reports into it through the RunObserver events.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { createServer, type Server } from "node:http";
import type { RunObserver } from "./observer.js";
import { replaceFilePrivate, type Readers } from "../base/private-fs.js";
import { ageSeconds, type LagFacts } from "../base/lag.js";

export interface Metrics {
  registry: Registry;
  observer: RunObserver;
  runs: Counter<"outcome">;
  ticksSkipped: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const m = defineMetrics(registry);
  for (const o of ["archived", "already_archived", "not_ready", "no_recording", "failed"])
    m.recordings.inc({ outcome: o }, 0);
  return { registry, observer: metricsObserver(m), runs: m.runs, ticksSkipped: m.ticksSkipped };
}

/** The run's metrics, registered in `registry`. */
function defineMetrics(registry: Registry) {
  const registers = [registry];
  /** What the state DB last said about the lag (ages computed at each scrape, from these times). */
  const lag: { facts: LagFacts | null } = { facts: null };
  return {
    lag,
    recordings: new Counter({
      name: "envoy_archiver_recordings_total",
      help: "Recordings by outcome, as the run summary counts them (archived, already_archived: found archived or adopted, not_ready, no_recording, failed).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    failures: new Counter({
      name: "envoy_archiver_failures_total",
      help: "Recordings failed, by error code (lock_not_applied: the bucket would not hold a lock) and kind.",
      labelNames: ["code", "kind"] as const,
      registers,
    }),
    bytes: new Counter({
      name: "envoy_archiver_bytes_archived_total",
      help: "Bytes stored in S3.",
      registers,
    }),
    api: new Counter({
      name: "envoy_archiver_api_requests_total",
      help: "Envoy API responses, by HTTP status code.",
      labelNames: ["status"] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: "envoy_archiver_rate_limited_total",
      help: "Envoy API requests answered 429.",
      registers,
    }),
    retries: new Counter({
      name: "envoy_archiver_retries_total",
      help: "Retried operations, by where they failed (api, s3).",
      labelNames: ["source"] as const,
      registers,
    }),
    transfer: new Histogram({
      name: "envoy_archiver_transfer_seconds",
      help: "Time to download, hash and store one recording.",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600],
      registers,
    }),
    inflight: new Gauge({
      name: "envoy_archiver_inflight_transfers",
      help: "Transfers in flight.",
      registers,
    }),
    lastSuccess: new Gauge({
      name: "envoy_archiver_last_success_timestamp_seconds",
      help: "Unix time at which the last run finished with nothing failed.",
      registers,
    }),
    failedPermanently: new Gauge({
      name: "envoy_archiver_failed_permanently",
      help: "Recordings failed permanently in the state DB at the end of the last run: they stay until a run with --retry-failed archives them (`status` lists them). Alert when above 0.",
      registers,
    }),
    sourceChanged: new Counter({
      name: "envoy_archiver_source_changed_total",
      help: "Recordings whose source changed after they were archived (the archived original is kept).",
      registers,
    }),
    ...sourceGauges(registers),
    runs: new Counter({
      name: "envoy_archiver_runs_total",
      help: "Runs, by outcome (ok, failures, fatal, interrupted, budget).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    ...lagGauges(registers, lag),
    ticksSkipped: new Counter({
      name: "envoy_archiver_ticks_skipped_total",
      help: "Scheduled ticks skipped because a run was still in progress.",
      registers,
    }),
  };
}

/** How complete against the source: what the last run's check of the days before its window found. */
function sourceGauges(registers: Registry[]) {
  return {
    sourceMissing: new Gauge({
      name: "envoy_archiver_source_missing_calls",
      help: "Calls the source counts on the days the last run checked that the archive does not hold (ARCHIVER_COMPLETENESS_DAYS).",
      registers,
    }),
    sourceOldestGap: new Gauge({
      name: "envoy_archiver_source_oldest_gap_day_timestamp_seconds",
      help: "Start (UTC) of the oldest checked day with calls the archive does not hold; 0 when none.",
      registers,
    }),
  };
}

/** How far behind: ages computed when scraped, from the times the last run read from its state DB. */
function lagGauges(registers: Registry[], lag: { facts: LagFacts | null }) {
  const age = (iso: (f: LagFacts) => string | null) => {
    const f = lag.facts;
    return f ? (ageSeconds(iso(f), Date.now()) ?? 0) : 0;
  };
  const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);
  return {
    oldestPending: new Gauge({
      name: "envoy_archiver_oldest_pending_age_seconds",
      help: "Age of the oldest call whose recording is still waiting (pending, not ready, failed), by its call time; 0: none.",
      registers,
      collect() {
        this.set(age((f) => f.oldestPendingSince));
      },
    }),
    watermarkLag: new Gauge({
      name: "envoy_archiver_watermark_lag_seconds",
      help: "Time since the incremental runs' watermark (how far behind incremental listing is).",
      registers,
      collect() {
        this.set(age((f) => f.watermark));
      },
    }),
    lastRun: new Gauge({
      name: "envoy_archiver_last_run_timestamp_seconds",
      help: "Unix time at which the last run (of this state DB) finished.",
      registers,
      collect() {
        this.set(seconds(lag.facts?.lastRun?.finishedAt));
      },
    }),
    lastOutcome: new Gauge({
      name: "envoy_archiver_last_run_outcome",
      help: "1 for the outcome of the last run (ok, failures, fatal, interrupted, budget), 0 for the others.",
      labelNames: ["outcome"] as const,
      registers,
      collect() {
        for (const o of ["ok", "failures", "fatal", "interrupted", "budget"])
          this.set({ outcome: o }, lag.facts?.lastRun?.outcome === o ? 1 : 0);
      },
    }),
    pending: new Gauge({
      name: "envoy_archiver_pending_recordings",
      help: "Recordings waiting, by state (pending, not_ready, failed_retryable, failed_permanent).",
      labelNames: ["state"] as const,
      registers,
      collect() {
        for (const [state, n] of Object.entries(
          lag.facts?.pending ?? { pending: 0, not_ready: 0, failed_retryable: 0, failed_permanent: 0 },
        ))
          this.set({ state }, n);
      },
    }),
  };
}

/** The run's events (the tally's, and the run's start and end) into the metrics. */
function metricsObserver(m: ReturnType<typeof defineMetrics>): RunObserver {
  return {
    recordingFinished(outcome, n, seconds) {
      m.recordings.inc({ outcome });
      if (outcome === "archived") {
        m.bytes.inc(n);
        m.transfer.observe(seconds);
      }
    },
    recordingFailed: (code, kind) => m.failures.inc({ code, kind }),
    apiResponse: (status) => m.api.inc({ status: String(status) }),
    retried: (source) => m.retries.inc({ source }),
    rateLimited: () => m.rateLimited.inc(),
    transferStarted: () => m.inflight.inc(),
    transferEnded: () => m.inflight.dec(),
    sourceChanged: () => m.sourceChanged.inc(),
    runFinished(summary) {
      m.runs.inc({ outcome: summary.outcome });
      m.failedPermanently.set(summary.failed_permanently);
      if (summary.outcome === "ok") m.lastSuccess.set(Date.now() / 1000);
      const c = summary.completeness;
      if (c && c.days_checked > 0) {
        m.sourceMissing.set(c.missing_calls);
        m.sourceOldestGap.set(c.oldest_gap_day ? Date.parse(`${c.oldest_gap_day}T00:00:00Z`) / 1000 : 0);
      }
    },
    lagRead(facts) {
      m.lag.facts = facts;
      if (facts.lastSuccessAt) m.lastSuccess.set(Date.parse(facts.lastSuccessAt) / 1000);
    },
  };
}

/**
 * node_exporter textfile collector format, written atomically (the collector must never read half a file), mode
 * 0600, or 0640 with `readers: "group"` so that a node_exporter in the file's group can read it.
 */
export async function writeMetricsFile(
  path: string,
  registry: Registry,
  readers: Readers = "owner",
): Promise<void> {
  replaceFilePrivate(path, await registry.metrics(), readers);
}

/** /metrics (Prometheus text) and /healthz (JSON from `health`) on a port. */
export async function serveMetrics(
  port: number,
  registry: Registry,
  health: () => { ok: boolean } & Record<string, unknown>,
  host = "0.0.0.0",
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    } else if (path === "/healthz") {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify(h));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
