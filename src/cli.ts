#!/usr/bin/env node
/**
 * The command line: a thin shell that parses flags, loads config, calls the library, prints the summary and
 * maps the outcome to an exit code. Everything it does can be called from a test through src/index.ts.
 */
import { Command, CommanderError, Option } from "commander";
import {
  ConfigError,
  loadConfig,
  secretsOf,
  type Config,
  type Env,
  type LoadOptions,
} from "./base/config.js";
import { DOTENV_HELP, envFileAlias, exitWhenFlushed, together } from "./cli/support.js";
import { redactText, registerSecrets } from "./base/redact.js";
import { createLogger } from "./observe/logger.js";
import { PACKAGE_VERSION } from "./base/paths.js";
import type { RunSummary } from "./jobs/run.js";
import { backfillWindow, parseDay, type Window } from "./base/dates.js";
import { resolveShard, type Shard } from "./base/shard.js";
import { progressReporter } from "./observe/progress.js";
import { combineObservers } from "./observe/observer.js";
import { describeOffset } from "./base/clock.js";
// Each command imports what it needs when it runs (the AWS SDK, SQLite, prom-client, croner): `--help` stays
// instant and a run does not evaluate modules it never uses. (The build bundles this file: scripts/bundle.ts.)

// A reader that goes away (`envoy-archiver --help | head -3`) is not our error: stop writing to it and go on.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

// The AWS SDK prints a multi-line deprecation notice on Node 20 at every start; cron would mail it hourly.
// We say it once, in our own log (see run's "node" warning), instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export const EXIT = { ok: 0, fatal: 1, usage: 2, failures: 3, sigint: 130, sigterm: 143 } as const;

const ENV_HELP = `
Configuration (flags override the environment, which overrides ./.env):
  ENVOY_API_URL                 Envoy API base URL (default https://tryenvoy.ai/api/v1)
  ENVOY_API_KEY                 organization API key, sent as X-API-Key (recommended for batch jobs)
  ENVOY_API_TOKEN               short-lived JWT, sent as Authorization: Bearer (used when no API key is set)
  ENVOY_ORGANIZATION_ID         optional X-Organization-ID header
  ARCHIVER_S3_BUCKET            destination bucket (required)
  ARCHIVER_S3_PREFIX            key prefix, e.g. "envoy/" (default empty)
  ARCHIVER_S3_FORCE_PATH_STYLE  true for MinIO and most S3-compatible servers (default false)
  ARCHIVER_DB_PATH              state DB file (default ./data/archiver.db)
  ARCHIVER_CONCURRENCY          recordings transferred at once (default 4)
  ARCHIVER_PAGE_SIZE            calls per list page, 1-100 (default 100)
  ARCHIVER_READY_STATUSES       recording_status values that mean ready (default AVAILABLE,COMPLETED,READY)
  ARCHIVER_OVERLAP_DAYS         incremental runs re-list this many days before the watermark (default 1)
  ARCHIVER_PART_SIZE_MB         multipart part size; smaller recordings use one PUT (default 16, min 5)
  ARCHIVER_PART_QUEUE           parts of one recording uploaded at once (default 2)
  ARCHIVER_SPOOL_DIR            where bodies above 1 MiB wait for S3, or "memory" (default <db path>.spool)
  ARCHIVER_API_RPS              client-side cap on Envoy API requests per second (default none)
  ARCHIVER_MAX_RETRIES          retries for transient errors per operation (default 6)
  ARCHIVER_ON_SOURCE_CHANGE     a source that changed after archiving: report (default), or archive it too
                                under {call_id}.v2.m4a (.v3, ...); the archived original is never touched
  ARCHIVER_ALLOW_INSECURE_URLS  allow http: and loopback/private media URLs - tests and demos only (default false)
  ARCHIVER_MAX_PAGES            a listing longer than this many pages stops the run (default 100000)
  ARCHIVER_MAX_BODY_MB          most bytes read for a recording with no file_size_bytes (default 4096)
  ARCHIVER_MEDIA_TYPES          media response types accepted (default audio/*,video/*,application/octet-stream)
  ARCHIVER_CHECK_MP4            MP4 recordings must start with an MP4 box, ftyp (default true)
  ARCHIVER_MIN_TRANSFER_RATE    KiB/s a transfer must average after the grace time; 0 = no floor (default 16)
  ARCHIVER_TRANSFER_GRACE       seconds every transfer gets whatever its size; URL expiry margin (default 60)
  ARCHIVER_PROGRESS_INTERVAL    seconds between progress log records when not on a terminal (default 30)
  ARCHIVER_METRICS_PORT         /metrics and /healthz port of \`worker\` (default 9464)
  ARCHIVER_SHARD_COUNT          shards, index from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX
  ARCHIVER_OBJECT_LOCK_MODE     GOVERNANCE|COMPLIANCE, with ARCHIVER_RETENTION_DAYS (from recording start)
  ARCHIVER_RETENTION_DAYS       days to retain each object under Object Lock
  ARCHIVER_LEGAL_HOLD           true: every object under legal hold
  ARCHIVER_CHECKSUM_ALGORITHM   NONE|MD5|CRC32C|SHA256 per upload body (default MD5 with lock/hold)
  ARCHIVER_SSE                  AES256|aws:kms (ARCHIVER_SSE_KMS_KEY_ID for the key)
  ARCHIVER_STORAGE_CLASS        STANDARD|STANDARD_IA|INTELLIGENT_TIERING|GLACIER_IR|GLACIER|DEEP_ARCHIVE
  ARCHIVER_TAGS                 object tags, k=v,k2=v2
  LOG_LEVEL                     fatal|error|warn|info|debug|trace|silent (default info)
AWS settings come from the SDK's standard chain: AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a
profile/role, AWS_ENDPOINT_URL_S3 for MinIO or another S3-compatible endpoint.

Exit codes:
  0  done, nothing failed          2  usage or configuration error (every problem listed at once)
  1  fatal: API key rejected, bucket missing/denied, state DB unusable, a listing that does not end
  3  run: done, but some recordings failed (logged, kept in the state DB for the next run);
     verify: something is missing or altered
  130/143  stopped by SIGINT/SIGTERM (in-flight transfers stopped, stored parts kept, state saved)
`;

interface RunFlags {
  since?: string;
  until?: string;
  concurrency?: string;
  dryRun?: boolean;
  json?: boolean;
  retryFailed?: boolean;
  db?: string;
  bucket?: string;
  prefix?: string;
  envFile?: string;
  dotenv?: string;
  logLevel?: string;
  shard?: string;
  quiet?: boolean;
  metricsFile?: string;
}

function shardFrom(flags: RunFlags, config: Config): Shard | undefined {
  try {
    return resolveShard(flags.shard, { ...process.env, ARCHIVER_SHARD_COUNT: config.shardCount?.toString() });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** Everything a run-like command sets up: logger, progress (TTY line, log records, or nothing). */
function runContext(flags: RunFlags, config: Config) {
  const tty = process.stderr.isTTY === true;
  const logger = createLogger({ level: config.logLevel, pretty: tty, secrets: secretsOf(config) });
  if (Number(process.versions.node.split(".")[0]) < 22)
    logger.info(
      { node: process.version },
      "Node 20 is end-of-life: AWS SDK releases from 2027 need Node 22 or later",
    );
  if (config.envoy.apiKey && config.envoy.token)
    logger.warn("both ENVOY_API_KEY and ENVOY_API_TOKEN are set: using the API key");
  const progress = progressReporter({
    mode: flags.quiet ? "off" : tty ? "tty" : "log",
    intervalMs: config.progressIntervalS * 1000,
    logger,
  });
  return { logger, progress, shard: shardFrom(flags, config) };
}

/** Settings for a command; `require` names what it cannot do without (reported with every other problem). */
function configFrom(flags: RunFlags, require?: LoadOptions["require"]): Config {
  const overrides: Partial<Record<keyof Env, string | undefined>> = {
    ARCHIVER_CONCURRENCY: flags.concurrency,
    ARCHIVER_DB_PATH: flags.db,
    ARCHIVER_S3_BUCKET: flags.bucket,
    ARCHIVER_S3_PREFIX: flags.prefix,
    LOG_LEVEL: flags.logLevel,
  };
  const file = flags.dotenv ?? flags.envFile;
  const config = loadConfig({
    overrides,
    ...(file ? { dotenvPath: file, requireDotenv: true } : {}),
    ...(require ? { require } : {}),
  });
  registerSecrets(secretsOf(config));
  return config;
}

/** --since/--until as a window, with usage errors (exit 2) for bad dates. */
function windowFlags(flags: { since?: string; until?: string }): Partial<Window> {
  try {
    const w: Partial<Window> = {};
    if (flags.since !== undefined) w.startDate = parseDay(flags.since, "--since");
    if (flags.until !== undefined) w.endDate = parseDay(flags.until, "--until");
    if (w.startDate && w.endDate && w.startDate > w.endDate)
      throw new Error(`--since ${w.startDate} is after --until ${w.endDate}`);
    return w;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function printSummary(s: RunSummary, json: boolean): void {
  if (json) {
    // The documented fields first, in their documented order; then the extras.
    process.stdout.write(
      JSON.stringify({
        run_id: s.run_id,
        listed: s.listed,
        archived: s.archived,
        already_archived: s.already_archived,
        not_ready: s.not_ready,
        no_recording: s.no_recording,
        failed: s.failed,
        bytes: s.bytes,
        duration_ms: s.duration_ms,
        outcome: s.outcome,
        mode: s.mode,
        window: s.window,
        dry_run: s.dry_run,
        would_archive: s.would_archive,
        previously_failed: s.previously_failed,
        other_shards: s.other_shards,
        source_changed: s.source_changed,
        clock_offset_ms: s.clock_offset_ms,
        api_requests: s.api_requests,
        rate_limited: s.rate_limited,
        retries: s.retries,
        ...(s.error ? { error: s.error } : {}),
      }) + "\n",
    );
    return;
  }
  const mb = (s.bytes / 1024 / 1024).toFixed(1);
  const secs = (s.duration_ms / 1000).toFixed(1);
  const window = `${s.window.startDate ?? "(beginning)"} .. ${s.window.endDate}`;
  const lines = [
    `envoy-archiver ${s.mode} run ${s.run_id}: ${s.outcome}${s.dry_run ? " (dry run: nothing written)" : ""}`,
    `  window            ${window}`,
    `  listed            ${s.listed}`,
    s.dry_run
      ? `  would archive     ${s.would_archive}`
      : `  archived          ${s.archived} (${mb} MiB in ${secs}s)`,
    `  already archived  ${s.already_archived}`,
    `  not ready yet     ${s.not_ready}`,
    `  no recording      ${s.no_recording}`,
    `  failed            ${s.failed}${s.previously_failed ? ` (+${s.previously_failed} failed in earlier runs; --retry-failed retries them)` : ""}`,
    `  API requests      ${s.api_requests} (${s.rate_limited} rate-limited, ${s.retries} retried)`,
  ];
  if (s.source_changed > 0)
    lines.push(
      `  source changed    ${s.source_changed} (archived originals kept; see the log and \`status\`)`,
    );
  for (const [server, ms] of [
    ["S3", s.clock_offset_ms.s3] as const,
    ["Envoy", s.clock_offset_ms.api] as const,
  ])
    if (Math.abs(ms) >= 60_000)
      lines.push(`  clock             ${describeOffset(ms)} ${server}'s (its time is used)`);
  if (s.error) lines.push(`  error             ${s.error}`);
  process.stdout.write(lines.join("\n") + "\n");
}

export function exitCodeFor(s: RunSummary, stopSignal: NodeJS.Signals | undefined): number {
  switch (s.outcome) {
    case "ok":
      return EXIT.ok;
    case "failures":
      return EXIT.failures;
    case "fatal":
      return EXIT.fatal;
    case "interrupted":
      return stopSignal === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
  }
}

/** SIGINT/SIGTERM: stop taking work, abort in-flight transfers, save state; a second signal exits at once. */
function stopOnSignals(): { signal: AbortSignal; received: () => NodeJS.Signals | undefined } {
  const ac = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) process.exit(sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
    received = sig;
    process.stderr.write(
      `\n${sig}: stopping (in-flight transfers are aborted and state is saved; send again to exit now)\n`,
    );
    ac.abort();
    // Never hang on the way out: whatever is still running after 10 s is abandoned.
    setTimeout(() => process.exit(sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm), 10_000).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return { signal: ac.signal, received: () => received };
}

export function buildProgram(): Command {
  const program = new Command();
  // Before any subcommand is added, so that each inherits it: a bad flag anywhere is a usage error (exit 2).
  program.exitOverride();
  program
    .name("envoy-archiver")
    .description("Archive Envoy call recordings into S3, byte for byte, resumably.")
    .version(PACKAGE_VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", ENV_HELP);

  program
    .command("run")
    .description(
      "Archive every recording not archived yet. Without dates: incremental (since the last run's watermark,\n" +
        "minus ARCHIVER_OVERLAP_DAYS, plus calls still pending from earlier runs). With --since/--until: a backfill\n" +
        "of exactly that window (inclusive UTC dates).",
    )
    .option("--since <date>", "backfill from this UTC date (YYYY-MM-DD), inclusive")
    .option("--until <date>", "backfill up to this UTC date (YYYY-MM-DD), inclusive; default today")
    .option("--concurrency <n>", "recordings transferred at once (ARCHIVER_CONCURRENCY)")
    .option("--dry-run", "list calls and fetch recording metadata; download, upload and record nothing")
    .option("--retry-failed", "also retry recordings that failed permanently in earlier runs")
    .option("--json", "print one JSON summary object on stdout (logs stay on stderr)")
    .option(
      "--shard <i/n>",
      "only calls whose id hashes to shard i of n (or JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX with ARCHIVER_SHARD_COUNT)",
    )
    .option("--quiet", "no progress line or progress log records")
    .option("--metrics-file <path>", "write Prometheus metrics for this run (node_exporter textfile format)")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--bucket <name>", "destination bucket (ARCHIVER_S3_BUCKET)")
    .option("--prefix <prefix>", "key prefix (ARCHIVER_S3_PREFIX)")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .addOption(
      new Option("--log-level <level>", "log level (LOG_LEVEL)").choices([
        "fatal",
        "error",
        "warn",
        "info",
        "debug",
        "trace",
        "silent",
      ]),
    )
    .addHelpText(
      "after",
      `
Examples:
  envoy-archiver run                                   # hourly from cron: only what is new
  envoy-archiver run --since 2026-01-01 --until 2026-06-30 --concurrency 16   # a backfill
  envoy-archiver run --dry-run --json                  # what would be archived, as JSON`,
    )
    .action(async (flags: RunFlags) => {
      const [, config] = together(
        () => {
          windowFlags(flags);
          if (flags.since !== undefined && flags.until === undefined) {
            try {
              backfillWindow(flags.since, undefined, new Date());
            } catch (err) {
              throw new ConfigError((err as Error).message);
            }
          }
        },
        () => configFrom(flags, "run"),
      );
      const { logger, progress, shard } = runContext(flags, config);
      const { runArchive } = await import("./jobs/run.js");
      const { createMetrics, writeMetricsFile } = await import("./observe/metrics.js");
      const metrics = flags.metricsFile ? createMetrics() : undefined;
      const stop = stopOnSignals();
      const summary = await runArchive(
        config,
        {
          since: flags.since,
          until: flags.until,
          dryRun: flags.dryRun ?? false,
          retryFailed: flags.retryFailed ?? false,
          shard,
        },
        { logger, signal: stop.signal, observer: combineObservers(progress, metrics?.observer) },
      );
      if (metrics && flags.metricsFile) await writeMetricsFile(flags.metricsFile, metrics.registry);
      printSummary(summary, flags.json ?? false);
      process.exitCode = exitCodeFor(summary, stop.received());
    });

  program
    .command("worker")
    .description(
      "Run the incremental archive on a cron schedule (UTC), in-process, never two runs at once, serving\n" +
        "/metrics (Prometheus) and /healthz on ARCHIVER_METRICS_PORT. Stops gracefully on SIGTERM/SIGINT.",
    )
    .requiredOption(
      "--cron <expr>",
      'cron expression, 5 fields or 6 with seconds, e.g. "17 * * * *" (hourly)',
    )
    .option("--run-on-start", "also run once immediately")
    .option("--metrics-port <port>", "port for /metrics and /healthz (ARCHIVER_METRICS_PORT, default 9464)")
    .option("--concurrency <n>", "recordings transferred at once (ARCHIVER_CONCURRENCY)")
    .option("--shard <i/n>", "only this shard of the calls (see run --help)")
    .option("--quiet", "no progress output")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--bucket <name>", "destination bucket (ARCHIVER_S3_BUCKET)")
    .option("--prefix <prefix>", "key prefix (ARCHIVER_S3_PREFIX)")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .action(async (flags: RunFlags & { cron: string; runOnStart?: boolean; metricsPort?: string }) => {
      const config = configFrom({ ...flags, quiet: true }, "run");
      const port = flags.metricsPort === undefined ? config.metricsPort : Number(flags.metricsPort);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new ConfigError("--metrics-port must be a port number");
      const { logger, shard } = runContext({ ...flags, quiet: true }, config);
      const ac = new AbortController();
      let received: NodeJS.Signals | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        if (received) process.exit(sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
        received = sig;
        logger.info(
          { signal: sig },
          "stopping: the current run (if any) aborts its transfers and saves state",
        );
        ac.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const { startWorker } = await import("./jobs/worker.js");
      const worker = await startWorker(
        config,
        { cron: flags.cron, runOnStart: flags.runOnStart ?? false, metricsPort: port, run: { shard } },
        { logger, signal: ac.signal },
      );
      await worker.done;
      process.exitCode =
        received === "SIGINT" ? EXIT.sigint : received === "SIGTERM" ? EXIT.sigterm : EXIT.ok;
    });

  program
    .command("reconcile")
    .description(
      "Rebuild or repair the state DB from what the bucket holds (keys, sizes, sha256 metadata, sidecars), so a\n" +
        "lost state volume or a new shard count never causes re-uploads. Run it before `run` on a fresh DB.",
    )
    .option("--since <date>", "only recordings from this UTC date (YYYY-MM-DD)")
    .option("--until <date>", "only recordings up to this UTC date (YYYY-MM-DD)")
    .option("--shard <i/n>", "only this shard's calls")
    .option("--json", "print { objects, adopted, unchanged, skipped, errors } on stdout")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--bucket <name>", "bucket (ARCHIVER_S3_BUCKET)")
    .option("--prefix <prefix>", "key prefix (ARCHIVER_S3_PREFIX)")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .action(async (flags: RunFlags) => {
      const [window, config] = together(
        () => windowFlags(flags),
        () => configFrom(flags, "bucket"),
      );
      const { logger, shard } = runContext({ ...flags, quiet: true }, config);
      const { reconcile } = await import("./jobs/reconcile.js");
      const res = await reconcile(config, { window, shard }, { logger });
      process.stdout.write(
        flags.json
          ? JSON.stringify(res) + "\n"
          : `reconcile: ${res.objects} objects, ${res.adopted} adopted into state, ${res.unchanged} already known, ${res.skipped} skipped, ${res.errors} errors\n`,
      );
      process.exitCode = res.errors > 0 ? EXIT.fatal : EXIT.ok;
    });

  program
    .command("manifest")
    .description(
      "Write one row per archived recording (call_id, key, bytes, sha256, content_type, recording_start_time,\n" +
        "duration_seconds, archived_at, etag, version_id, lock_mode, retain_until, legal_hold, storage_class, sse).\n" +
        "Rows are streamed from the state DB; --since/--until filter on the recording's UTC day.",
    )
    .addOption(
      new Option("--format <format>", "csv (with a header) or jsonl")
        .choices(["csv", "jsonl"])
        .default("csv"),
    )
    .option("--out <file>", "write to this file (default: stdout)")
    .option("--since <date>", "only recordings from this UTC date (YYYY-MM-DD)")
    .option("--until <date>", "only recordings up to this UTC date (YYYY-MM-DD)")
    .option(
      "--upload",
      "also store the manifest in S3 under {prefix}manifests/, with its SHA-256 in metadata",
    )
    .option("--json", "print a JSON summary (rows, sha256, key) on stderr when done")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--bucket <name>", "bucket for --upload (ARCHIVER_S3_BUCKET)")
    .option("--prefix <prefix>", "key prefix (ARCHIVER_S3_PREFIX)")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .action(async (flags: RunFlags & { format: "csv" | "jsonl"; out?: string; upload?: boolean }) => {
      const [window, config] = together(
        () => windowFlags(flags),
        () => configFrom(flags, flags.upload ? "bucket" : undefined),
      );
      const logger = createLogger({
        level: config.logLevel,
        pretty: process.stderr.isTTY === true,
        secrets: secretsOf(config),
      });
      const { writeManifest } = await import("./jobs/compliance/manifest.js");
      const res = await writeManifest(
        config,
        { format: flags.format, out: flags.out, window, upload: flags.upload ?? false },
        { logger },
      );
      const where = [res.out, res.key ? `s3://${config.s3.bucket}/${res.key}` : null]
        .filter(Boolean)
        .join(" and ");
      process.stderr.write(
        flags.json
          ? JSON.stringify(res) + "\n"
          : `manifest: ${res.rows} recordings, sha256 ${res.sha256}${where ? `, written to ${where}` : ""}\n`,
      );
    });

  program
    .command("verify")
    .description(
      "Check every archived recording against S3: present, same size, sha256 metadata equal to the state's.\n" +
        "--deep also reads every object back and recomputes its SHA-256. Exit 0 when all are intact, 3 when any\n" +
        "is missing or altered (each logged with its call id and key), 1 when some could not be checked.",
    )
    .option("--since <date>", "only recordings from this UTC date (YYYY-MM-DD)")
    .option("--until <date>", "only recordings up to this UTC date (YYYY-MM-DD)")
    .option("--deep", "read back every byte and recompute SHA-256")
    .option("--json", "print { checked, ok, missing, mismatched, errors } on stdout")
    .option("--concurrency <n>", "objects checked at once (ARCHIVER_CONCURRENCY)")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--bucket <name>", "bucket (ARCHIVER_S3_BUCKET)")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .action(async (flags: RunFlags & { deep?: boolean }) => {
      const [window, config] = together(
        () => windowFlags(flags),
        () => configFrom(flags, "bucket"),
      );
      const logger = createLogger({
        level: config.logLevel,
        pretty: process.stderr.isTTY === true,
        secrets: secretsOf(config),
      });
      const stop = stopOnSignals();
      const { verifyArchive } = await import("./jobs/compliance/verify.js");
      const res = await verifyArchive(
        config,
        { window, deep: flags.deep ?? false },
        { logger, signal: stop.signal },
      );
      process.stdout.write(
        flags.json
          ? JSON.stringify(res) + "\n"
          : `verify${flags.deep ? " --deep" : ""}: checked ${res.checked}, ok ${res.ok}, missing ${res.missing}, mismatched ${res.mismatched}, errors ${res.errors}\n`,
      );
      process.exitCode =
        res.missing + res.mismatched > 0 ? EXIT.failures : res.errors > 0 ? EXIT.fatal : EXIT.ok;
    });

  program
    .command("status")
    .description(
      "Show what the state DB knows: recordings by state, bytes archived, the watermark, recent runs.",
    )
    .option("--json", "print the report as one JSON object")
    .option("--check", "also check the state DB's integrity (reads all of it; exit 1 if it fails)")
    .option("--db <path>", "state DB file (ARCHIVER_DB_PATH)")
    .option("--runs <n>", "how many recent runs to show", "10")
    .option("--dotenv <path>", DOTENV_HELP)
    .addOption(envFileAlias())
    .action(
      async (flags: {
        json?: boolean;
        check?: boolean;
        db?: string;
        runs: string;
        envFile?: string;
        dotenv?: string;
      }) => {
        const config = configFrom(flags);
        const runs = Number(flags.runs);
        if (!Number.isInteger(runs) || runs < 0) throw new ConfigError("--runs must be a whole number");
        const { readStatus, formatStatus } = await import("./jobs/status.js");
        const report = readStatus(config.dbPath, runs, { check: flags.check ?? false });
        process.stdout.write(flags.json ? JSON.stringify(report) + "\n" : formatStatus(report));
      },
    );

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; unknown flags and bad values have already been printed.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`envoy-archiver: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(
      `envoy-archiver: fatal: ${redactText(err instanceof Error ? err.message : String(err))}\n`,
    );
    return EXIT.fatal;
  }
}

main(process.argv).then(exitWhenFlushed);
