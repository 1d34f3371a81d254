/**
 * The options several commands share, declared once: the flags that override a setting (each with the
 * environment name it overrides, which is also how its value reaches loadConfig), the settings file, the window,
 * the shard.
 */
import { Option, type Command } from "commander";
import type { Env, LoadOptions } from "../base/config.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

interface SettingFlag {
  flags: string;
  help: string;
  env: keyof Env;
  choices?: readonly string[];
}

/** Flags that override a setting, in the order help lists them. */
const SETTING_FLAGS = {
  concurrency: {
    flags: "--concurrency <n>",
    help: "recordings transferred at once",
    env: "ARCHIVER_CONCURRENCY",
  },
  metricsPort: {
    flags: "--metrics-port <port>",
    help: "port for /metrics and /healthz",
    env: "ARCHIVER_METRICS_PORT",
  },
  db: { flags: "--db <path>", help: "state DB file", env: "ARCHIVER_DB_PATH" },
  bucket: { flags: "--bucket <name>", help: "destination bucket", env: "ARCHIVER_S3_BUCKET" },
  prefix: { flags: "--prefix <prefix>", help: "key prefix", env: "ARCHIVER_S3_PREFIX" },
  logLevel: { flags: "--log-level <level>", help: "log level", env: "LOG_LEVEL", choices: LOG_LEVELS },
  maxDuration: {
    flags: "--max-duration <time>",
    help: "start no new recording after this long, e.g. 50m",
    env: "ARCHIVER_MAX_DURATION",
  },
  maxBytes: {
    flags: "--max-bytes <size>",
    help: "start no new recording after this many media bytes, e.g. 200G",
    env: "ARCHIVER_MAX_BYTES",
  },
  bwlimit: {
    flags: "--bwlimit <rate>",
    help: 'media bytes/s for all transfers together, e.g. 20M, or "08:00,5M 19:00,off"',
    env: "ARCHIVER_BWLIMIT",
  },
  cutoff: {
    flags: "--cutoff <mode>",
    help: "a spent budget: soft (in-flight transfers finish) or hard (stopped as by SIGTERM)",
    env: "ARCHIVER_CUTOFF",
    choices: ["soft", "hard"],
  },
} as const satisfies Record<string, SettingFlag>;

export type SettingName = keyof typeof SETTING_FLAGS;

/** What commander hands a command for the setting flags and the settings file. */
export type SettingFlags = Partial<Record<SettingName, string>> & { dotenv?: string; envFile?: string };

const DOTENV_HELP = "read settings from this .env-format file instead of ./.env (it must exist)";

/**
 * Add the setting flags named (with the help text given, or the default one), then `--dotenv`. `--env-file` was
 * that flag's old name. Node 20 takes `--env-file` for itself wherever it appears on the command line (and exits 9
 * when the file is missing) before this program runs, so the flag is `--dotenv`; the old name is still accepted,
 * unlisted, where Node lets it through.
 */
export function settingOptions(
  cmd: Command,
  names: SettingName[],
  help: Partial<Record<SettingName, string>> = {},
): Command {
  for (const name of names) {
    const s: SettingFlag = SETTING_FLAGS[name];
    const option = new Option(s.flags, `${help[name] ?? s.help} (${s.env})`);
    cmd.addOption(s.choices ? option.choices(s.choices) : option);
  }
  return cmd.option("--dotenv <path>", DOTENV_HELP).addOption(new Option("--env-file <path>").hideHelp());
}

/** The settings file and the setting flags given, as loadConfig takes them. */
export function sourcesFrom(
  flags: SettingFlags,
): Pick<LoadOptions, "overrides" | "flagNames" | "dotenvPath" | "requireDotenv"> {
  const overrides: LoadOptions["overrides"] = {};
  const flagNames: LoadOptions["flagNames"] = {};
  for (const [name, s] of Object.entries(SETTING_FLAGS) as [SettingName, SettingFlag][]) {
    overrides[s.env] = flags[name];
    flagNames[s.env] = s.flags.split(" ")[0]!;
  }
  const file = flags.dotenv ?? flags.envFile;
  return { overrides, flagNames, ...(file ? { dotenvPath: file, requireDotenv: true } : {}) };
}

/** `--since/--until`: the window of a backfill (`run`), or a filter on the recording's UTC day. */
export function windowOptions(cmd: Command, use: "backfill" | "filter"): Command {
  return use === "backfill"
    ? cmd
        .option("--since <date>", "backfill from this UTC date (YYYY-MM-DD), inclusive")
        .option("--until <date>", "backfill up to this UTC date (YYYY-MM-DD), inclusive; default today")
    : cmd
        .option("--since <date>", "only recordings from this UTC date (YYYY-MM-DD)")
        .option("--until <date>", "only recordings up to this UTC date (YYYY-MM-DD)");
}

/** `--shard i/n`: only the calls whose id hashes to shard i of n. */
export function shardOption(cmd: Command, help: string): Command {
  return cmd.option("--shard <i/n>", help);
}

/** What a selection's flags hand a command (export, hold). */
export interface SelectionFlags {
  since?: string;
  until?: string;
  callId?: string[];
  phone?: string;
  direction?: string;
}

/** The filters that select archived recordings (export, hold): all given must match. */
export function selectionOptions(cmd: Command): Command {
  return windowOptions(cmd, "filter")
    .option("--call-id <id...>", "only these calls (call_<uuid>; repeat the flag or list several after it)")
    .option(
      "--phone <number>",
      "only calls from or to this number; spaces, dashes and brackets are ignored (+1 415 555 0123)",
    )
    .addOption(
      new Option("--direction <direction>", "only inbound or only outbound calls").choices([
        "inbound",
        "outbound",
      ]),
    );
}
