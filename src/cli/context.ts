/** The command context: settings (with a command's own usage checks), the logger, the shard. */
import type { Logger } from "pino";
import { ConfigError, loadConfig, secretsOf, type Config, type LoadOptions } from "../base/config.js";
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
 * The logger (pretty on a terminal, JSON lines otherwise; secrets scrubbed). `announce`: a command that talks to
 * Envoy and S3 also says what about this machine or these settings deserves a word.
 */
export function loggerFor(config: Config, opts: { announce?: boolean } = {}): Logger {
  const logger = createLogger({
    level: config.logLevel,
    pretty: process.stderr.isTTY === true,
    secrets: secretsOf(config),
  });
  if (!opts.announce) return logger;
  if (config.envoy.apiKey && config.envoy.token)
    logger.warn("both ENVOY_API_KEY and ENVOY_API_TOKEN are set: using the API key");
  return logger;
}

/** `--shard`, or the index the environment gives with ARCHIVER_SHARD_COUNT; a usage error when malformed. */
export function shardFrom(flag: string | undefined, config: Config): Shard | undefined {
  try {
    return resolveShard(flag, { ...process.env, ARCHIVER_SHARD_COUNT: config.shardCount?.toString() });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
