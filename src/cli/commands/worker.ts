/** `envoy-archiver worker`: the incremental run on a cron schedule, in-process, until SIGTERM/SIGINT. */
import type { Command } from "commander";
import { loggerFor, settingsFor, shardFrom } from "../context.js";
import { EXIT, signalExit } from "../exit.js";
import { settingOptions, shardOption, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";

interface WorkerFlags extends SettingFlags {
  cron: string;
  runOnStart?: boolean;
  shard?: string;
  quiet?: boolean;
}

export function addWorkerCommand(program: Command): void {
  const cmd = program
    .command("worker")
    .description(
      "Run the incremental archive on a cron schedule (UTC), in-process, never two runs at once, serving " +
        "/metrics (Prometheus) and /healthz on ARCHIVER_METRICS_PORT. Stops gracefully on SIGTERM/SIGINT.",
    )
    .requiredOption(
      "--cron <expr>",
      'cron expression, 5 fields or 6 with seconds, e.g. "17 * * * *" (hourly)',
    )
    .option("--run-on-start", "also run once immediately");
  shardOption(cmd, "only this shard of the calls (see run --help)").option("--quiet", "no progress output");
  settingOptions(
    cmd,
    ["metricsPort", "concurrency", "db", "bucket", "prefix", "maxDuration", "maxBytes", "cutoff", "bwlimit"],
    {
      maxDuration: "each tick: start no new recording after this long (default: the time to the next tick)",
    },
  ).action(workerAction);
}

async function workerAction(flags: WorkerFlags): Promise<void> {
  const { config } = settingsFor(flags, "run", () => undefined);
  const logger = loggerFor(config, { announce: true });
  const shard = shardFrom(flags.shard, config);
  const stop = stopOnSignals((sig) =>
    logger.info({ signal: sig }, "stopping: the current run (if any) aborts its transfers and saves state"),
  );
  const { startWorker } = await import("../../jobs/worker.js");
  const worker = await startWorker(
    config,
    {
      cron: flags.cron,
      runOnStart: flags.runOnStart ?? false,
      metricsPort: config.metricsPort,
      run: { shard },
    },
    { logger, signal: stop.signal },
  );
  await worker.done;
  const sig = stop.received();
  process.exitCode = sig ? signalExit(sig) : EXIT.ok;
}
