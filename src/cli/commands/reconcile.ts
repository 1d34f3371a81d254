/** `envoy-archiver reconcile`: rebuild or repair the state DB from what the bucket holds. */
import type { Command } from "commander";
import { loggerFor, settingsFor, shardFrom } from "../context.js";
import { EXIT } from "../exit.js";
import { settingOptions, shardOption, windowOptions, type SettingFlags } from "../options.js";
import { windowFrom, type WindowFlags } from "../window.js";

interface ReconcileFlags extends SettingFlags, WindowFlags {
  shard?: string;
  json?: boolean;
}

export function addReconcileCommand(program: Command): void {
  const cmd = program
    .command("reconcile")
    .description(
      "Rebuild or repair the state DB from what the bucket holds (keys, sizes, sha256 metadata, sidecars), so a " +
        "lost state volume or a new shard count never causes re-uploads. Run it before `run` on a fresh DB.",
    );
  windowOptions(cmd, "filter");
  shardOption(cmd, "only this shard's calls").option(
    "--json",
    "print { objects, adopted, unchanged, skipped, errors } on stdout",
  );
  settingOptions(cmd, ["db", "bucket", "prefix"], { bucket: "bucket" }).action(reconcileAction);
}

async function reconcileAction(flags: ReconcileFlags): Promise<void> {
  const { config, checked: window } = settingsFor(flags, "bucket", () => windowFrom(flags));
  const logger = loggerFor(config, { announce: true });
  const shard = shardFrom(flags.shard, config);
  const { reconcile } = await import("../../jobs/reconcile.js");
  const res = await reconcile(config, { window, shard }, { logger });
  process.stdout.write(
    flags.json
      ? JSON.stringify(res) + "\n"
      : `reconcile: ${res.objects} objects, ${res.adopted} adopted into state, ${res.unchanged} already known, ${res.skipped} skipped, ${res.errors} errors\n`,
  );
  process.exitCode = res.errors > 0 ? EXIT.fatal : EXIT.ok;
}
