/** The command context: settings (with a command's own usage checks), the logger, the shard. */
import type { Logger } from "pino";
import { ConfigError, loadConfig, secretsOf, type Config, type LoadOptions } from "../base/config.js";
import { chmodFix, exposure, octal } from "../base/private-fs.js";
import { registerSecrets } from "../base/redact.js";
import { resolveShard, type Shard } from "../base/shard.js";
import { createLogger } from "../observe/logger.js";
import { sourcesFrom, type SettingFlags } from "./options.js";
import { together } from "./support.js";

/**
 * A command's settings and the result of its own usage checks (`check`: the window, a count), every problem of
 * both reported at once (exit 2). `require` names the settings the command cannot do without.
 */
export function settingsFor<T>(
  flags: SettingFlags,
  require: LoadOptions["require"],
  check: () => T,
  ...more: (() => void)[]
): { config: Config; checked: T } {
  const [checked, config] = together(
    check,
    () => {
      const c = loadConfig({ ...sourcesFrom(flags), ...(require ? { require } : {}) });
      registerSecrets(secretsOf(c));
      return c;
    },
    ...more,
  );
  return { config, checked };
}

/**
 * The logger (pretty on a terminal, JSON lines otherwise; secrets scrubbed), after one warning for each file of
 * the archiver's that other users may read. `announce`: a command that talks to Envoy and S3 also says
 * what about this machine or these settings deserves a word.
 */
export function loggerFor(config: Config, opts: { announce?: boolean } = {}): Logger {
  const logger = createLogger({
    level: config.logLevel,
    pretty: process.stderr.isTTY === true,
    secrets: secretsOf(config),
  });
  warnAboutExposedFiles(config, logger);
  if (!opts.announce) return logger;
  if (config.envoy.apiKey && config.envoy.token)
    logger.warn("both ENVOY_API_KEY and ENVOY_API_TOKEN are set: using the API key");
  return logger;
}

/**
 * What the archiver created owner-only (base/private-fs.ts) but found open to other users: the state DB (with the
 * -wal and -shm a killed run left, which SQLite keeps as they are) and spool directory as an older release or a
 * hand left them, and a settings file holding secrets. One warning each, not a refusal (README, "Security"):
 * the path, who may read it, and the fix.
 */
export function warnAboutExposedFiles(config: Config, logger: Logger): void {
  const db = config.dbPath;
  if (db !== ":memory:" && db !== "")
    warnIfOpen(logger, "state DB (call metadata: phone numbers, call times)", [db, `${db}-wal`, `${db}-shm`]);
  if (config.s3.spoolDir)
    warnIfOpen(logger, "spool directory (recording bytes in transit)", [config.s3.spoolDir], "directory");
  const file = config.exposedSettingsFile;
  if (file)
    logger.warn(
      { path: file.path, mode: octal(file.mode), holds: file.secrets },
      `the settings file ${file.path} holds ${file.secrets.join(", ")} and is open to ${file.who} (mode ${octal(file.mode)}): ${chmodFix([file.path])}, and replace those secrets if anyone else could read them`,
    );
}

/** One warning when any of `paths` (a file, and those kept beside it) is open: named by the first, fixed for all. */
function warnIfOpen(logger: Logger, what: string, paths: string[], kind?: "directory"): void {
  const open = paths.map((p) => exposure(p)).filter((e) => e !== undefined);
  if (open.length === 0) return;
  const modes = open.map((e) =>
    e.path === paths[0] ? `mode ${octal(e.mode)}` : `${e.path} ${octal(e.mode)}`,
  );
  logger.warn(
    { path: paths[0], mode: octal(open[0]!.mode) },
    `the ${what} ${paths[0]} is open to ${open[0]!.who} (${modes.join("; ")}): ${chmodFix(
      open.map((e) => e.path),
      kind,
    )}`,
  );
}

/** `--shard`, or the index the environment gives with ARCHIVER_SHARD_COUNT; a usage error when malformed. */
export function shardFrom(flag: string | undefined, config: Config): Shard | undefined {
  try {
    return resolveShard(flag, { ...process.env, ARCHIVER_SHARD_COUNT: config.shardCount?.toString() });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
