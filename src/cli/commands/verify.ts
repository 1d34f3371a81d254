/** `envoy-archiver verify`: check every archived recording against the bucket. */
import type { Command } from "commander";
import { loggerFor, settingsFor } from "../context.js";
import { EXIT } from "../exit.js";
import { settingOptions, windowOptions, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";
import { windowFrom, type DayWindow, type WindowFlags } from "../window.js";
import { ConfigError } from "../../base/config.js";
import { addDays, formatDay } from "../../base/dates.js";
import type { DayCount } from "../../jobs/completeness.js";

interface VerifyFlags extends SettingFlags, WindowFlags {
  deep?: boolean;
  json?: boolean;
  source?: boolean;
}

export function addVerifyCommand(program: Command): void {
  const cmd = program
    .command("verify")
    .description(
      "Check every archived recording against S3: present, same size, sha256 metadata equal to the state's. " +
        "--deep also reads every object back and recomputes its SHA-256. Exit 0 when all are intact, 3 when any " +
        "is missing or altered (each logged with its call id and key), 1 when some could not be checked or none " +
        "was (nothing archived in the window: proving nothing never passes). " +
        "--source instead compares, for each UTC day (of call_time) from --since to --until (default: the " +
        "ARCHIVER_COMPLETENESS_DAYS days up to yesterday, 30 when it is 0), Envoy's count of calls with what the " +
        "archive holds (archived, or without a recording): one API request a day. Exit 3 when any day is short " +
        "(each named), 0 when every day is complete; days with fewer calls at Envoy than archived are named too.",
    );
  windowOptions(cmd, "filter")
    .option("--deep", "read back every byte and recompute SHA-256")
    .option("--source", "compare each day's call count at Envoy with the archive (needs ENVOY_API_KEY)")
    .option(
      "--json",
      "print { checked, ok, missing, mismatched, errors } on stdout (--source: the per-day result)",
    );
  settingOptions(cmd, ["concurrency", "db", "bucket"], {
    concurrency: "objects checked at once",
    bucket: "bucket",
  }).action(verifyAction);
}

async function verifyAction(flags: VerifyFlags): Promise<void> {
  if (flags.source) return verifySourceAction(flags);
  const { config, checked: window } = settingsFor(flags, "bucket", () => windowFrom(flags));
  const logger = loggerFor(config);
  const stop = stopOnSignals();
  const { verifyArchive } = await import("../../jobs/compliance/verify.js");
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
  // Proving nothing never passes: a check of nothing (a wrong window, a state DB with nothing archived) is exit 1.
  if (res.checked === 0 && !stop.received())
    process.stderr.write(
      `verify: nothing was checked: the state DB ${config.dbPath} records no archived recording${window.startDate || window.endDate ? " in this window" : ""} (check ARCHIVER_DB_PATH/--db and --since/--until)\n`,
    );
  process.exitCode =
    res.missing + res.mismatched > 0
      ? EXIT.failures
      : res.errors > 0 || res.checked === 0
        ? EXIT.fatal
        : EXIT.ok;
}

async function verifySourceAction(flags: VerifyFlags): Promise<void> {
  const { config, checked } = settingsFor(flags, "run", () => {
    if (flags.deep) throw new ConfigError("--deep and --source are separate checks: run them one at a time");
    return windowFrom(flags);
  });
  const logger = loggerFor(config);
  const stop = stopOnSignals();
  const { verifySource } = await import("../../jobs/compliance/source-verify.js");
  const res = await verifySource(config, sourceWindow(checked, config.completenessDays), {
    logger,
    signal: stop.signal,
  });
  const named = (days: DayCount[], held: (d: DayCount) => number) =>
    days.map((d) => `${d.day} (source ${d.source}, archive ${held(d)})`).join(", ");
  process.stdout.write(
    flags.json
      ? JSON.stringify(res) + "\n"
      : [
          `verify --source ${res.first_day}..${res.last_day}: ${res.days_checked} days, ${res.source_calls} calls at the source, ${res.held_calls} in the archive, ${res.missing_calls} missing`,
          ...(res.short_days.length
            ? [`  short: ${named(res.short_days, (d) => d.archived + d.no_recording)}`]
            : []),
          ...(res.fewer_at_source.length
            ? [
                `  fewer at the source than archived (deleted upstream; kept): ${named(res.fewer_at_source, (d) => d.known)}`,
              ]
            : []),
        ].join("\n") + "\n",
  );
  process.exitCode = res.short_days.length > 0 ? EXIT.failures : EXIT.ok;
}

/** --since/--until as given; by default the last N whole days (up to yesterday, UTC). */
function sourceWindow(w: DayWindow, completenessDays: number): { startDate: string; endDate: string } {
  const endDate = w.endDate ?? (w.startDate && w.startDate > yesterday() ? w.startDate : yesterday());
  return { startDate: w.startDate ?? addDays(endDate, 1 - (completenessDays || 30)), endDate };
}

const yesterday = () => addDays(formatDay(new Date()), -1);
