/**
 * Configuration: command-line flags, then the environment, then a `.env` file (first found wins), validated
 * once at start. Every setting has one environment name; flags are overrides of those names. The names and their
 * checks are in config-schema.ts, the shape the jobs read in config-types.ts (both re-exported here).
 */
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { parse as parseDotenv } from "dotenv";
import { normalizePrefix } from "./keys.js";
import { parseTags } from "./tags.js";
import { credentialProblem } from "./header-values.js";
import { exposureOf, type Exposure } from "./private-fs.js";
import { ENV_NAMES, EnvSchema, type Env } from "./config-schema.js";
import type { Config } from "./config-types.js";

export { ENV_NAMES, EnvSchema, type Env } from "./config-schema.js";
export type { Config, MediaLimits, StorageSettings } from "./config-types.js";

/** A usage or configuration mistake: exit 2 with the message. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export interface LoadOptions {
  /** Flag values, keyed by the environment name they override. Undefined values are ignored. */
  overrides?: Partial<Record<keyof Env, string | undefined>>;
  /** The flag that gives each override (`--concurrency`): a problem with a flag's value names the flag. */
  flagNames?: Partial<Record<keyof Env, string>>;
  env?: NodeJS.ProcessEnv;
  /** Path of the .env file; missing is fine unless `requireDotenv`. */
  dotenvPath?: string;
  /** The file was named by the user (--dotenv): a missing one is an error. */
  requireDotenv?: boolean;
  /** Settings the command cannot do without, reported together with every other problem. */
  require?: "run" | "bucket";
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const { fromFile, problems, exposed } = readDotenv(opts);
  const raw = rawSettings(opts, env, fromFile);
  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success)
    problems.push(...parsed.error.issues.map((i) => `${sourceOf(opts, i.path.join("."))}: ${i.message}`));
  problems.push(...crossFieldProblems(raw));
  if (opts.require)
    problems.push(
      ...missingSettings(opts.require, {
        key: raw.ENVOY_API_KEY,
        token: raw.ENVOY_API_TOKEN,
        bucket: raw.ARCHIVER_S3_BUCKET,
      }).map((n) => `${n}: required (flags, environment or .env; see --help)`),
    );
  if (problems.length > 0 || !parsed.success)
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  return { ...configOf(parsed.data, awsSettings(env, fromFile)), exposedSettingsFile: exposed };
}

/**
 * The AWS settings the SDK's chain would read from the environment, from the environment or else the settings
 * file, given to the S3 client explicitly: a `.env` or `--dotenv` file is a source like the environment for
 * them too (the SDK itself never reads that file).
 */
function awsSettings(env: NodeJS.ProcessEnv, fromFile: Record<string, string>): AwsSettings {
  const from = (...names: string[]) => {
    for (const source of [env, fromFile])
      for (const name of names) {
        const v = source[name]?.trim();
        if (v) return v;
      }
    return undefined;
  };
  const accessKeyId = from("AWS_ACCESS_KEY_ID");
  const secretAccessKey = from("AWS_SECRET_ACCESS_KEY");
  const sessionToken = from("AWS_SESSION_TOKEN");
  return {
    region: from("AWS_REGION", "AWS_DEFAULT_REGION"),
    endpoint: from("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    profile: from("AWS_PROFILE"),
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
        : undefined,
  };
}

/** How a problem names a setting: the flag and its value when the value came from a flag, else its name. */
function sourceOf(opts: LoadOptions, name: string): string {
  const flag = opts.flagNames?.[name as keyof Env];
  const value = opts.overrides?.[name as keyof Env];
  return flag && value !== undefined && value !== "" ? `${flag} ${JSON.stringify(value)} (${name})` : name;
}

/** Names of settings whose values are secrets: a file holding one must be its owner's alone. */
const SECRET_NAME = /(^|_)(API_KEY|TOKEN|SECRET|PASSWORD)(_|$)/;

/** The secrets a settings file holds (names only, those with a value). */
export function secretsIn(values: Record<string, string>): string[] {
  return Object.keys(values)
    .filter((name) => SECRET_NAME.test(name) && values[name]!.trim() !== "")
    .sort();
}

/**
 * The `.env` file's values; a missing file is fine unless it was named (`requireDotenv`). `exposed`: the file
 * holds secrets and other users may read it (judged on the file actually read).
 */
function readDotenv(opts: LoadOptions): {
  fromFile: Record<string, string>;
  problems: string[];
  exposed: (Exposure & { secrets: string[] }) | undefined;
} {
  const path = opts.dotenvPath ?? ".env";
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const fromFile = parseDotenv(readFileSync(fd));
    const secrets = secretsIn(fromFile);
    const exposure = secrets.length > 0 ? exposureOf(path, fstatSync(fd)) : undefined;
    return { fromFile, problems: [], exposed: exposure && { ...exposure, secrets } };
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT" && !opts.requireDotenv;
    return {
      fromFile: {},
      problems: missing ? [] : [`${path}: cannot read it (${(err as Error).message})`],
      exposed: undefined,
    };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Each setting from the first source that has it: flags, then the environment, then the file. */
function rawSettings(
  opts: LoadOptions,
  env: NodeJS.ProcessEnv,
  fromFile: Record<string, string>,
): Record<string, string> {
  const raw: Record<string, string> = {};
  // An empty value means "unset" (docker-compose and systemd pass empty strings for unset values): the next
  // source is asked.
  const set = (v: string | undefined) => (v === "" ? undefined : v);
  for (const name of ENV_NAMES) {
    const v = set(opts.overrides?.[name]) ?? set(env[name]) ?? set(fromFile[name]);
    if (v !== undefined) raw[name] = v;
  }
  return raw;
}

/** AWS settings the SDK's chain reads too, taken from the environment or the `.env` file. */
type AwsSettings = Pick<Config["s3"], "region" | "endpoint" | "profile" | "credentials">;

/** The validated settings in the jobs' shape. */
function configOf(e: Env, aws: AwsSettings): Config {
  return {
    storage: storageOf(e),
    envoy: {
      apiUrl: e.ENVOY_API_URL.replace(/\/+$/, ""),
      apiKey: e.ENVOY_API_KEY,
      token: e.ENVOY_API_TOKEN,
      organizationId: e.ENVOY_ORGANIZATION_ID,
      pageSize: e.ARCHIVER_PAGE_SIZE,
      readyStatuses: e.ARCHIVER_READY_STATUSES.map((s) => s.toUpperCase()),
      rps: e.ARCHIVER_API_RPS,
      maxPages: e.ARCHIVER_MAX_PAGES,
    },
    media: {
      maxBodyBytes: e.ARCHIVER_MAX_BODY_MB * 1024 * 1024,
      allowedTypes: e.ARCHIVER_MEDIA_TYPES,
      checkMp4: e.ARCHIVER_CHECK_MP4,
      minBytesPerSec: e.ARCHIVER_MIN_TRANSFER_RATE * 1024,
      graceMs: e.ARCHIVER_TRANSFER_GRACE * 1000,
    },
    s3: s3Of(e, aws),
    dbPath: e.ARCHIVER_DB_PATH,
    concurrency: e.ARCHIVER_CONCURRENCY,
    allowInsecureUrls: e.ARCHIVER_ALLOW_INSECURE_URLS,
    overlapDays: e.ARCHIVER_OVERLAP_DAYS,
    completenessDays: e.ARCHIVER_COMPLETENESS_DAYS,
    maxRetries: e.ARCHIVER_MAX_RETRIES,
    onSourceChange: e.ARCHIVER_ON_SOURCE_CHANGE,
    logLevel: e.LOG_LEVEL,
    progressIntervalS: e.ARCHIVER_PROGRESS_INTERVAL,
    metricsPort: e.ARCHIVER_METRICS_PORT,
    shardCount: e.ARCHIVER_SHARD_COUNT,
    outputReaders: e.ARCHIVER_GROUP_READABLE ? "group" : "owner",
    exposedSettingsFile: undefined, // set by loadConfig, which read the file
    leaseTtlMs: e.ARCHIVER_LEASE_TTL * 1000,
    rebuildState: e.ARCHIVER_REBUILD_STATE,
    bwLimit: e.ARCHIVER_BWLIMIT ?? [],
    budget: {
      maxDurationMs: e.ARCHIVER_MAX_DURATION,
      maxBytes: e.ARCHIVER_MAX_BYTES,
      cutoff: e.ARCHIVER_CUTOFF,
    },
  };
}

function storageOf(e: Env): Config["storage"] {
  const locked = e.ARCHIVER_OBJECT_LOCK_MODE !== undefined || e.ARCHIVER_LEGAL_HOLD;
  return {
    lockMode: e.ARCHIVER_OBJECT_LOCK_MODE,
    retentionDays: e.ARCHIVER_RETENTION_DAYS,
    legalHold: e.ARCHIVER_LEGAL_HOLD,
    // Locked uploads must carry a checksum: Content-MD5 is the one every S3-compatible server understands.
    checksum: e.ARCHIVER_CHECKSUM_ALGORITHM ?? (locked ? "MD5" : "NONE"),
    sse: e.ARCHIVER_SSE,
    sseKmsKeyId: e.ARCHIVER_SSE_KMS_KEY_ID,
    storageClass: e.ARCHIVER_STORAGE_CLASS,
    tags: parseTags(e.ARCHIVER_TAGS ?? ""),
  };
}

function s3Of(e: Env, aws: AwsSettings): Config["s3"] {
  return {
    bucket: e.ARCHIVER_S3_BUCKET,
    prefix: normalizePrefix(e.ARCHIVER_S3_PREFIX),
    forcePathStyle: e.ARCHIVER_S3_FORCE_PATH_STYLE,
    partSize: e.ARCHIVER_PART_SIZE_MB * 1024 * 1024,
    queueSize: e.ARCHIVER_PART_QUEUE,
    spoolDir:
      e.ARCHIVER_SPOOL_DIR === "memory" ? undefined : e.ARCHIVER_SPOOL_DIR || `${e.ARCHIVER_DB_PATH}.spool`,
    ...aws,
  };
}

/**
 * The rules between settings, and the ones zod's per-field checks do not cover, on the raw values: checked even
 * when single fields are invalid, so that every mistake is reported at once.
 */
function crossFieldProblems(raw: Record<string, string>): string[] {
  const out: string[] = [];
  try {
    normalizePrefix(raw.ARCHIVER_S3_PREFIX);
  } catch (err) {
    out.push(`ARCHIVER_S3_PREFIX: ${(err as Error).message}`);
  }
  const lockMode = raw.ARCHIVER_OBJECT_LOCK_MODE !== undefined;
  if (lockMode !== (raw.ARCHIVER_RETENTION_DAYS !== undefined))
    out.push(
      `${lockMode ? "ARCHIVER_RETENTION_DAYS" : "ARCHIVER_OBJECT_LOCK_MODE"}: ARCHIVER_OBJECT_LOCK_MODE and ARCHIVER_RETENTION_DAYS go together: set both, or neither`,
    );
  if (raw.ARCHIVER_SSE_KMS_KEY_ID && raw.ARCHIVER_SSE?.trim() !== "aws:kms")
    out.push("ARCHIVER_SSE_KMS_KEY_ID: needs ARCHIVER_SSE=aws:kms");
  const hold = ["true", "1", "yes", "on"].includes(raw.ARCHIVER_LEGAL_HOLD?.trim().toLowerCase() ?? "");
  if ((lockMode || hold) && raw.ARCHIVER_CHECKSUM_ALGORITHM?.trim() === "NONE")
    out.push(
      "ARCHIVER_CHECKSUM_ALGORITHM=NONE: S3 requires an integrity checksum on uploads with Object Lock or legal hold",
    );
  for (const name of ["ENVOY_API_KEY", "ENVOY_API_TOKEN", "ENVOY_ORGANIZATION_ID"] as const) {
    const problem = raw[name] === undefined ? undefined : credentialProblem(raw[name].trim());
    if (problem) out.push(`${name}: ${problem} (it is sent as an HTTP header)`);
  }
  return out;
}

/** The settings a command needs that are not set. */
function missingSettings(
  require: "run" | "bucket",
  have: { key: string | undefined; token: string | undefined; bucket: string | undefined },
): string[] {
  const missing: string[] = [];
  if (require === "run" && !have.key && !have.token) missing.push("ENVOY_API_KEY (or ENVOY_API_TOKEN)");
  if (!have.bucket) missing.push("ARCHIVER_S3_BUCKET");
  return missing;
}

/** What `run` needs beyond the defaults: credentials for Envoy and a bucket. */
export function requireRunSettings(c: Config): void {
  const missing = missingSettings("run", { key: c.envoy.apiKey, token: c.envoy.token, bucket: c.s3.bucket });
  if (missing.length > 0)
    throw new ConfigError(
      `missing required settings: ${missing.join(", ")} (flags, environment or .env; see --help)`,
    );
}

/** The secrets to scrub from every log line. */
export function secretsOf(c: Config): string[] {
  return [
    c.envoy.apiKey,
    c.envoy.token,
    c.s3.credentials?.secretAccessKey,
    c.s3.credentials?.sessionToken,
  ].filter((s): s is string => typeof s === "string" && s.length > 0);
}

/** A stable fingerprint of the settings that shape what is archived, without secrets (for the audit trail). */
export function configFingerprint(c: Config): string {
  // Which AWS credentials or profile were used is not a setting of what is archived (and the secret never goes
  // anywhere): left out, so that the fingerprint is the same whichever way the keys were given.
  const { credentials: _credentials, profile: _profile, ...s3 } = c.s3;
  const safe = {
    ...c,
    exposedSettingsFile: undefined, // the file's mode, not what is archived
    s3,
    envoy: {
      ...c.envoy,
      apiKey: c.envoy.apiKey ? "set" : undefined,
      token: c.envoy.token ? "set" : undefined,
    },
  };
  return createHash("sha256").update(JSON.stringify(safe)).digest("hex").slice(0, 16);
}
