/** `envoy-archiver hold --on|--off`: a legal hold on a selection of recordings, read back from the bucket. */
import type { Command } from "commander";
import { ConfigError } from "../../base/config.js";
import { loggerFor, settingsFor } from "../context.js";
import { EXIT } from "../exit.js";
import { selectionOptions, settingOptions, type SelectionFlags, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";
import { windowFrom } from "../window.js";

interface HoldFlags extends SettingFlags, SelectionFlags {
  on?: boolean;
  off?: boolean;
  json?: boolean;
}

export function addHoldCommand(program: Command): void {
  const cmd = program
    .command("hold")
    .summary("place or lift a legal hold on every version of selected recordings, read back")
    .description(
      "Place (--on) or lift (--off) an S3 Object Lock legal hold on the selected archived recordings: every " +
        "version of each recording and of its sidecar (and of a changed source's later copies, {call_id}.v2.m4a, " +
        "with theirs). A legal hold keeps a version from being deleted, whatever its retention, until it is " +
        "lifted; the bucket must have Object Lock enabled, and lifting needs s3:PutObjectLegalHold.\n\n" +
        "Each version is read back after the request: what is reported (and what the state DB and `status` then " +
        "show) is what the bucket shows. The selection comes from the state DB, never the source: --since/--until " +
        "(the recording's UTC day), --call-id, --phone, --direction; all given must match. Recorded in the audit " +
        "trail with the selection and the counts.\n\n" +
        "  envoy-archiver hold --on --phone '+1 415 555 0123' --since 2026-03-01\n" +
        "  envoy-archiver hold --off --call-id call_0f8b…\n\n" +
        "Exit 0 when every version reads back as asked; 3 when the selection matches nothing, or a version does " +
        "not show the hold asked; 1 when some could not be done.",
    )
    .option("--on", "place the legal hold")
    .option("--off", "lift the legal hold");
  selectionOptions(cmd).option(
    "--json",
    "print { on, selected, versions, confirmed, not_shown, errors, on_hold } on stdout",
  );
  settingOptions(cmd, ["concurrency", "db", "bucket", "prefix"], {
    concurrency: "recordings done at once",
    bucket: "bucket",
  }).action(holdAction);
}

async function holdAction(flags: HoldFlags): Promise<void> {
  const { selectionFrom } = await import("../../jobs/selection.js");
  const { config, checked } = settingsFor(flags, "bucket", () => {
    if (flags.on === flags.off) throw new ConfigError("hold: give exactly one of --on and --off");
    return selectionFrom({ ...flags, window: windowFrom(flags) });
  });
  const logger = loggerFor(config);
  const stop = stopOnSignals();
  const { holdSelection } = await import("../../jobs/hold.js");
  const res = await holdSelection(
    config,
    { on: flags.on === true, selection: checked },
    { logger, signal: stop.signal },
  );
  if (res.selected === 0) process.stderr.write("hold: the selection matches no archived recording\n");
  process.stdout.write(
    flags.json
      ? JSON.stringify(res) + "\n"
      : `hold ${res.on ? "--on" : "--off"}: ${res.selected} recordings, ${res.versions} versions, ${res.confirmed} read back ${res.on ? "ON" : "OFF"}, ${res.not_shown} not, ${res.errors} errors; ${res.on_hold} recordings on hold\n`,
  );
  process.exitCode =
    res.selected === 0 || res.not_shown > 0 ? EXIT.failures : res.errors > 0 ? EXIT.fatal : EXIT.ok;
}
