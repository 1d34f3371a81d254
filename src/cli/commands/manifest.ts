/** `envoy-archiver manifest`: one row per archived recording, for an auditor. */
import { Option, type Command } from "commander";
import { ConfigError } from "../../base/config.js";
import { loggerFor, settingsFor } from "../context.js";
import { settingOptions, windowOptions, type SettingFlags } from "../options.js";
import { windowFrom, type WindowFlags } from "../window.js";

interface ManifestFlags extends SettingFlags, WindowFlags {
  format: "csv" | "jsonl";
  out?: string;
  upload?: boolean;
  json?: boolean;
}

export function addManifestCommand(program: Command): void {
  const cmd = program
    .command("manifest")
    .description(
      "Write one row per archived recording (call_id, key, bytes, sha256, content_type, recording_start_time, " +
        "duration_seconds, archived_at, etag, version_id, lock_mode, retain_until, legal_hold, storage_class, sse). " +
        "Rows are streamed from the state DB; --since/--until filter on the recording's UTC day.",
    )
    .addOption(
      new Option("--format <format>", "csv (with a header) or jsonl")
        .choices(["csv", "jsonl"])
        .default("csv"),
    )
    .option("--out <file>", "write to this file (default: stdout)");
  windowOptions(cmd, "filter")
    .option(
      "--upload",
      "also store the manifest in S3 under {prefix}manifests/, with its SHA-256 in metadata",
    )
    .option(
      "--json",
      "print a JSON summary (rows, sha256, out, key) on stdout when done (needs --out or --upload)",
    );
  settingOptions(cmd, ["db", "bucket", "prefix"], { bucket: "bucket for --upload" }).action(manifestAction);
}

async function manifestAction(flags: ManifestFlags): Promise<void> {
  const { config, checked: window } = settingsFor(
    flags,
    flags.upload ? "bucket" : undefined,
    () => windowFrom(flags),
    () => {
      // stdout is the manifest's, unless it goes to a file or only to S3: then it is the JSON summary's.
      if (flags.json && !flags.out && !flags.upload)
        throw new ConfigError(
          "--json prints the summary on stdout, where the manifest goes: add --out FILE (or --upload)",
        );
    },
  );
  const logger = loggerFor(config);
  const { writeManifest } = await import("../../jobs/compliance/manifest.js");
  const res = await writeManifest(
    config,
    { format: flags.format, out: flags.out, window, upload: flags.upload ?? false },
    { logger },
  );
  const where = [res.out, res.key ? `s3://${config.s3.bucket}/${res.key}` : null]
    .filter(Boolean)
    .join(" and ");
  if (flags.json) process.stdout.write(JSON.stringify(res) + "\n");
  else
    process.stderr.write(
      `manifest: ${res.rows} recordings, sha256 ${res.sha256}${where ? `, written to ${where}` : ""}\n`,
    );
}
