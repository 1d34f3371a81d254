/** `envoy-archiver report`: the attestation report of a window, as HTML and/or JSON. */
import type { Command } from "commander";
import { ConfigError } from "../../base/config.js";
import { loggerFor, settingsFor } from "../context.js";
import { settingOptions, windowOptions, type SettingFlags } from "../options.js";
import { windowFrom, type WindowFlags } from "../window.js";

interface ReportFlags extends SettingFlags, WindowFlags {
  out?: string;
  json?: boolean;
}

export function addReportCommand(program: Command): void {
  const cmd = program
    .command("report")
    .summary("write the attestation report of a window: one self-contained HTML file")
    .description(
      "Write the attestation report of a window: one self-contained HTML file (inline CSS and SVG, no script, " +
        "nothing fetched; readable on screen and printed) an auditor can read and sign. It shows the window and " +
        "scope; recordings archived, with a chart per day, and bytes; calls by state, failures by kind; the lock, " +
        "retention, legal hold, encryption and storage class the bucket showed when each recording and sidecar " +
        "was read back; how many are on legal hold; the last deep verify and its result; the SHA-256 of this " +
        "window's manifest (reproducible with `manifest --format csv --since … --until … | sha256sum`); the audit " +
        "trail checked against the bucket, with its head; the version and settings (no secrets).\n\n" +
        "The report's own SHA-256 is printed and recorded in the audit trail (command `report`).\n\n" +
        "  envoy-archiver report --since 2026-01-01 --until 2026-03-31 --out q1-2026.html",
    )
    .option("--out <file>", "write the HTML report here (mode 0600)")
    .option("--json", "print the report's facts as one JSON object on stdout");
  windowOptions(cmd, "filter");
  settingOptions(cmd, ["db", "bucket", "prefix"], {
    bucket: "bucket whose audit trail heads are compared (optional)",
  }).action(reportAction);
}

async function reportAction(flags: ReportFlags): Promise<void> {
  const { config, checked: window } = settingsFor(flags, undefined, () => {
    if (!flags.out && !flags.json) throw new ConfigError("report: give --out FILE, --json, or both");
    return windowFrom(flags);
  });
  const logger = loggerFor(config);
  const { writeReport } = await import("../../jobs/report.js");
  const res = await writeReport(config, { window, out: flags.out }, { logger });
  if (flags.json)
    process.stdout.write(JSON.stringify({ ...res.data, out: res.out, sha256: res.sha256 }) + "\n");
  if (res.out)
    process.stderr.write(
      `report: ${res.data.archived.count} recordings, written to ${res.out}, sha256 ${res.sha256}\n`,
    );
}
