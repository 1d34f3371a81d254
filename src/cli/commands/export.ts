/** `envoy-archiver export`: an eDiscovery export of a selection, each copy checked, with its own manifest. */
import type { Command } from "commander";
import { ConfigError } from "../../base/config.js";
import { loggerFor, settingsFor } from "../context.js";
import { EXIT } from "../exit.js";
import { selectionOptions, settingOptions, type SelectionFlags, type SettingFlags } from "../options.js";
import { stopOnSignals } from "../signals.js";
import { windowFrom } from "../window.js";

interface ExportFlags extends SettingFlags, SelectionFlags {
  to?: string;
  json?: boolean;
}

export function addExportCommand(program: Command): void {
  const cmd = program
    .command("export")
    .summary("copy selected recordings and sidecars to s3://bucket/prefix/ or a directory, each copy proven")
    .description(
      "Copy the selected archived recordings and their sidecars (the versions that were archived) for someone " +
        "outside the archive: opposing counsel, a regulator. The selection comes from the state DB, never the " +
        "source: --since/--until (the recording's UTC day), --call-id, --phone, --direction; all given must match.\n\n" +
        "--to s3://bucket/prefix/: a server-side CopyObject into that bucket (no bytes pass through this machine; " +
        "same endpoint and credentials), each copy's size checked and its ETag equal to the archived one's, or " +
        "else its bytes read back and hashed. --to DIR: each version streamed into DIR/recordings/yyyy/mm/dd/ and " +
        "hashed as it is written (files 0600, directories 0700).\n\n" +
        "Every copy's SHA-256 is compared with the one recorded when it was archived. export-manifest.jsonl, one " +
        "JSON line per file (call_id, source_key, source_version_id, to, bytes, sha256, checked), is written " +
        "beside the copies; its own SHA-256 is printed and recorded in the audit trail.\n\n" +
        "  envoy-archiver export --phone '+1 415 555 0123' --to ./counsel\n\n" +
        "Exit 0 when every copy is proven; 3 when the selection matches nothing (nothing is written) or a copy " +
        "does not match; 1 when some could not be copied.",
    )
    .option("--to <target>", "s3://bucket/prefix/ or a directory");
  selectionOptions(cmd).option(
    "--json",
    "print { to, selected, files, bytes, mismatched, errors, manifest } on stdout",
  );
  settingOptions(cmd, ["concurrency", "db", "bucket", "prefix"], {
    concurrency: "objects copied at once",
    bucket: "the archive's bucket (the source)",
  }).action(exportAction);
}

async function exportAction(flags: ExportFlags): Promise<void> {
  const { selectionFrom } = await import("../../jobs/selection.js");
  const { config, checked } = settingsFor(flags, "bucket", () => {
    if (!flags.to) throw new ConfigError("export: --to s3://bucket/prefix/ or --to DIR is required");
    return selectionFrom({ ...flags, window: windowFrom(flags) });
  });
  const logger = loggerFor(config);
  const stop = stopOnSignals();
  const { exportSelection } = await import("../../jobs/export.js");
  const res = await exportSelection(
    config,
    { selection: checked, to: flags.to! },
    { logger, signal: stop.signal },
  );
  if (res.selected === 0)
    process.stderr.write("export: the selection matches no archived recording; nothing written\n");
  process.stdout.write(
    flags.json
      ? JSON.stringify(res) + "\n"
      : `export: ${res.selected} recordings, ${res.files} files (${res.bytes} bytes) to ${res.to}, ${res.mismatched} mismatched, ${res.errors} errors` +
          (res.manifest ? `; manifest ${res.manifest.where} sha256 ${res.manifest.sha256}` : "") +
          "\n",
  );
  process.exitCode =
    res.selected === 0 || res.mismatched > 0 ? EXIT.failures : res.errors > 0 ? EXIT.fatal : EXIT.ok;
}
