/**
 * Prometheus metrics: served on /metrics by the worker, or written by a one-shot run in node_exporter's textfile
 * format (--metrics-file). One registry per process; the run reports into it through the RunObserver events.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { createServer, type Server } from "node:http";
import { renameSync, writeFileSync } from "node:fs";
import type { RunObserver } from "./observer.js";

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
  return {
    recordings: new Counter({
      name: "envoy_archiver_recordings_total",
      help: "Recordings processed, by outcome (archived, already_archived, not_ready, no_recording, failed).",
      labelNames: ["outcome"] as const,
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
    sourceChanged: new Counter({
      name: "envoy_archiver_source_changed_total",
      help: "Recordings whose source changed after they were archived (the archived original is kept).",
      registers,
    }),
    runs: new Counter({
      name: "envoy_archiver_runs_total",
      help: "Runs, by outcome (ok, failures, fatal, interrupted, budget).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    ticksSkipped: new Counter({
      name: "envoy_archiver_ticks_skipped_total",
      help: "Scheduled ticks skipped because a run was still in progress.",
      registers,
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
    apiResponse: (status) => m.api.inc({ status: String(status) }),
    retried: (source) => m.retries.inc({ source }),
    rateLimited: () => m.rateLimited.inc(),
    transferStarted: () => m.inflight.inc(),
    transferEnded: () => m.inflight.dec(),
    sourceChanged: () => m.sourceChanged.inc(),
    runFinished(summary) {
      m.runs.inc({ outcome: summary.outcome });
      if (summary.outcome === "ok") m.lastSuccess.set(Date.now() / 1000);
    },
  };
}

/** node_exporter textfile collector format, written atomically (the collector must never read half a file). */
export async function writeMetricsFile(path: string, registry: Registry): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, await registry.metrics());
  renameSync(tmp, path);
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
