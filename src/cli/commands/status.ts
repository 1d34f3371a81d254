/** `envoy-archiver status`: what the state DB knows. Read-only. */
import type { Command } from "commander";
import { loggerFor, settingsFor } from "../context.js";
import { ConfigError } from "../../base/config.js";
import { settingOptions, type SettingFlags } from "../options.js";

interface StatusFlags extends SettingFlags {
  json?: boolean;
  check?: boolean;
  runs: string;
}

export function addStatusCommand(program: Command): void {
  const cmd = program
    .command("status")
    .description(
      "Show what the state DB knows: recordings by state, bytes archived, the watermark, the last check against " +
        "the source (calls it counts that the archive does not hold, per UTC day), recent runs.",
    )
    .option("--json", "print the report as one JSON object")
    .option("--check", "also check the state DB's integrity (reads all of it; exit 1 if it fails)")
    .option("--runs <n>", "how many recent runs to show", "10");
  settingOptions(cmd, ["db"]).action(statusAction);
}

async function statusAction(flags: StatusFlags): Promise<void> {
  const { config, checked: runs } = settingsFor(flags, undefined, () => {
    const n = Number(flags.runs);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError("--runs must be a whole number");
    return n;
  });
  loggerFor(config); // for its warnings about files others can read
  const { readStatus, formatStatus } = await import("../../jobs/status.js");
  const report = readStatus(config.dbPath, runs, { check: flags.check ?? false });
  process.stdout.write(flags.json ? JSON.stringify(report) + "\n" : formatStatus(report));
}
