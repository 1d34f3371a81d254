/**
 * `envoy-archiver worker`: the incremental run on a cron schedule, in-process. Never two runs at once (a tick that
 * finds one in progress is skipped, logged and counted), a failed run is logged and counted and the next tick
 * tries again, /metrics and /healthz are served throughout, and SIGTERM stops it gracefully.
 */
import { Cron } from "croner";
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { ConfigError } from "../base/config.js";
import { createMetrics, serveMetrics } from "../observe/metrics.js";
import { combineObservers, type RunObserver } from "../observe/observer.js";
import { runArchive, type RunOptions, type RunSummary } from "./run.js";
import type { BudgetSettings } from "./budget.js";
import { redactText } from "../base/redact.js";

export interface WorkerOptions {
  cron: string;
  runOnStart: boolean;
  /** 0: pick a free port (tests); undefined: no metrics server. */
  metricsPort: number | undefined;
  metricsHost?: string;
  run: RunOptions;
}

export interface WorkerHandle {
  /** Resolves when the worker has stopped (after the signal aborts and the current run has wound down). */
  done: Promise<void>;
  metricsUrl: string | null;
}

/** Each tick's budget: ARCHIVER_MAX_DURATION, else the time between ticks. */
function tickBudget(config: Config, job: Cron): BudgetSettings {
  const [a, b] = job.nextRuns(2);
  const interval = a && b ? b.getTime() - a.getTime() : undefined;
  return { ...config.budget, maxDurationMs: config.budget.maxDurationMs ?? interval };
}

export async function startWorker(
  config: Config,
  opts: WorkerOptions,
  deps: { logger: Logger; signal: AbortSignal; observer?: RunObserver },
): Promise<WorkerHandle> {
  const { logger, signal } = deps;
  try {
    new Cron(opts.cron, { paused: true, timezone: "UTC" }).stop();
  } catch (err) {
    throw new ConfigError(`--cron "${opts.cron}" is not a cron expression: ${(err as Error).message}`);
  }
  const metrics = createMetrics();
  const observer = combineObservers(metrics.observer, deps.observer);
  let running: Promise<void> | null = null;
  let last: { outcome: string; finished_at: string; run_id?: string } | null = null;
  let ticks = 0;

  const tick = () => {
    ticks++;
    if (running) {
      metrics.ticksSkipped.inc();
      logger.warn({ tick: ticks }, "previous run still in progress: tick skipped");
      return;
    }
    logger.info({ tick: ticks }, "scheduled run starting");
    running = runArchive(
      config,
      { ...opts.run, budget: tickBudget(config, job) },
      { logger, signal, observer },
    )
      .then((s: RunSummary) => {
        last = { outcome: s.outcome, finished_at: new Date().toISOString(), run_id: s.run_id };
      })
      .catch((err: unknown) => {
        // A run that could not even start (state DB locked or unusable): logged and counted; the next tick retries.
        metrics.runs.inc({ outcome: "fatal" });
        last = { outcome: "fatal", finished_at: new Date().toISOString() };
        logger.error({ err }, `run failed: ${redactText((err as Error).message)}`);
      })
      .finally(() => {
        running = null;
      });
  };

  const job = new Cron(opts.cron, { timezone: "UTC", paused: true }, tick);
  const nextRun = () => job.nextRun()?.toISOString() ?? null;
  const server =
    opts.metricsPort === undefined
      ? null
      : await serveMetrics(
          opts.metricsPort,
          metrics.registry,
          () => ({
            ok: !signal.aborted,
            running: running !== null,
            ticks,
            last_run: last,
            next_run: nextRun(),
          }),
          opts.metricsHost,
        );
  const address = server?.address();
  const metricsUrl = address && typeof address === "object" ? `http://127.0.0.1:${address.port}` : null;

  job.resume();
  logger.info({ cron: opts.cron, next_run: nextRun(), metrics: metricsUrl }, "worker started");
  if (opts.runOnStart) tick();

  const done = new Promise<void>((resolve) => {
    const stop = async () => {
      job.stop();
      logger.info("worker stopping");
      await running;
      if (server) {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await closed;
      }
      resolve();
    };
    if (signal.aborted) void stop();
    else signal.addEventListener("abort", () => void stop(), { once: true });
  });
  return { done, metricsUrl };
}
