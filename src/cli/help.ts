/**
 * The text `--help` ends with: every setting (generated from the schema: its names, the schema's defaults, the
 * line each has in config-docs.ts), where AWS settings come from, and the exit codes.
 */
import { SETTING_HELP, settingDefaults } from "../base/config-docs.js";
import { EXIT_HELP } from "./exit.js";

/** Help lines stay within the terminal's width (as commander wraps its own part), 80 columns when piped. */
const width = () => Math.max(60, Math.min(process.stdout.columns || 80, 160));
const NAME_COLUMN = 32;

export function settingsHelp(): string {
  const defaults: Partial<Record<string, string>> = settingDefaults();
  const lines = ["", "Configuration (flags override the environment, which overrides ./.env):"];
  for (const [name, text] of Object.entries(SETTING_HELP)) {
    const d = defaults[name];
    lines.push(...column(`  ${name}`, NAME_COLUMN, d === undefined ? text : `${text} (default ${d})`));
  }
  lines.push(
    ...column(
      "",
      0,
      "AWS settings: AWS_REGION, AWS_ENDPOINT_URL_S3 (MinIO or another S3-compatible endpoint), " +
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, from the environment or " +
        "the settings file; without keys, the SDK's chain (profile, instance or pod role).",
    ),
    "",
    "Exit codes:",
  );
  for (const [code, meaning] of EXIT_HELP) lines.push(...column(`  ${code}`, 11, meaning));
  return lines.join("\n") + "\n";
}

/** `head` padded to `indent` columns, then `text` wrapped at word boundaries (and at its own line breaks). */
function column(head: string, indent: number, text: string): string[] {
  const out: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      if (line && indent + line.length + 1 + word.length > width()) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
  }
  return out.map((l, i) => (i === 0 ? head.padEnd(indent) : " ".repeat(indent)) + l);
}
