/** `envoy-archiver verify`: check every archived recording against the bucket. */
import type { Command } from "commander";
import { loggerFor, settingsFor } from "../context.js";
import { EXIT } from "../exit.js";
import { settingOptions, windowOptions, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";
import { windowFrom, type WindowFlags } from "../window.js";

interface VerifyFlags extends SettingFlags, WindowFlags {
  deep?: boolean;
  json?: boolean;
}

export function addVerifyCommand(program: Command): void {
  const cmd = program
    .command("verify")
    .description(
      "Check every archived recording against S3: present, same size, sha256 metadata equal to the state's. " +
        "--deep also reads every object back and recomputes its SHA-256. Exit 0 when all are intact, 3 when any " +
        "is missing or altered (each logged with its call id and key), 1 when some could not be checked or none " +
        "was (nothing archived in the window: proving nothing never passes).",
    );
  windowOptions(cmd, "filter")
    .option("--deep", "read back every byte and recompute SHA-256")
    .option("--json", "print { checked, ok, missing, mismatched, errors } on stdout");
  settingOptions(cmd, ["concurrency", "db", "bucket"], {
    concurrency: "objects checked at once",
    bucket: "bucket",
  }).action(verifyAction);
}

async function verifyAction(flags: VerifyFlags): Promise<void> {
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
