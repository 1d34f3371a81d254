/** `envoy-archiver run`: one archive run, incremental or a backfill of a window. */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { progressReporter } from "../../observe/progress.js";
import { combineObservers } from "../../observe/observer.js";
import { loggerFor, settingsFor, shardFrom } from "../context.js";
import { exitCodeFor } from "../exit.js";
import { settingOptions, shardOption, windowOptions, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";
import { printSummary } from "../summary.js";
import { windowFrom, type WindowFlags } from "../window.js";

interface RunFlags extends SettingFlags, WindowFlags {
  dryRun?: boolean;
  retryFailed?: boolean;
  json?: boolean;
  shard?: string;
  quiet?: boolean;
  metricsFile?: string;
}

export function addRunCommand(program: Command): void {
  const cmd = program
    .command("run")
    .description(
      "Archive every recording not archived yet. Without dates: incremental (since the last run's watermark, " +
        "minus ARCHIVER_OVERLAP_DAYS, plus calls still pending from earlier runs, plus each of the " +
        "ARCHIVER_COMPLETENESS_DAYS days before whose call count at Envoy differs from the archive's: one request a " +
        "day). With --since/--until: a backfill of exactly that window (inclusive UTC dates).",
    );
  windowOptions(cmd, "backfill");
  cmd
    .option(
      "--dry-run",
      "the pre-flight check: list calls, fetch recording metadata, check the bucket and credentials, and say how " +
        "many recordings and bytes would move; download, upload and record nothing",
    )
    .option("--retry-failed", "also retry recordings that failed permanently in earlier runs")
    .option("--json", "print one JSON summary object on stdout (logs stay on stderr)");
  shardOption(
    cmd,
    "only calls whose id hashes to shard i of n (or JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX with ARCHIVER_SHARD_COUNT)",
  )
    .option("--quiet", "no progress line or progress log records")
    .option("--metrics-file <path>", "write Prometheus metrics for this run (node_exporter textfile format)");
  settingOptions(cmd, [
    "concurrency",
    "db",
    "bucket",
    "prefix",
    "logLevel",
    "maxDuration",
    "maxBytes",
    "cutoff",
    "bwlimit",
  ])
    .addHelpText(
      "after",
      `
Examples:
  envoy-archiver run                     # hourly from cron: only what is new
  envoy-archiver run --since 2026-01-01 --until 2026-06-30 --concurrency 16
                                         # a backfill
  envoy-archiver run --dry-run --json    # the pre-flight check, as JSON`,
    )
    .action(runAction);
}

async function runAction(flags: RunFlags): Promise<void> {
  const { config, checked: window } = settingsFor(flags, "run", () =>
    windowFrom(flags, { openEndIsToday: true }),
  );
  const logger = loggerFor(config, { announce: true });
  const shard = shardFrom(flags.shard, config);
  const tty = process.stderr.isTTY === true;
  const progress = progressReporter({
    mode: flags.quiet ? "off" : tty ? "tty" : "log",
    intervalMs: config.progressIntervalS * 1000,
    logger,
  });
  if (config.rebuildState && !flags.dryRun && !existsSync(config.dbPath)) {
    // A new or lost state DB (a node-local volume): rebuilt from the bucket before the run, so nothing is fetched twice.
    const { reconcile } = await import("../../jobs/reconcile.js");
    const res = await reconcile(config, { shard }, { logger });
    logger.info({ ...res }, "state DB rebuilt from the bucket before the run");
    if (res.errors > 0)
      logger.warn({ errors: res.errors }, "some objects could not be reconciled: the run checks them itself");
  }
  const { runArchive } = await import("../../jobs/run.js");
  const { createMetrics, writeMetricsFile } = await import("../../observe/metrics.js");
  const metrics = flags.metricsFile ? createMetrics() : undefined;
  const stop = stopOnSignals();
  const summary = await runArchive(
    config,
    {
      since: window.startDate,
      until: window.endDate,
      dryRun: flags.dryRun ?? false,
      retryFailed: flags.retryFailed ?? false,
      shard,
    },
    {
      logger,
      signal: stop.signal,
      observer: combineObservers(progress, metrics?.observer),
      summaryInLog: !tty,
    },
  );
  if (metrics && flags.metricsFile)
    await writeMetricsFile(flags.metricsFile, metrics.registry, config.outputReaders);
  printSummary(summary, flags.json ?? false);
  process.exitCode = exitCodeFor(summary, stop.received());
}
