/**
 * Configuration: command-line flags, then the environment, then a `.env` file (first found wins), validated
 * once at start. Every setting has one environment name; flags are overrides of those names.
 */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { parse as parseDotenv } from "dotenv";
import { z } from "zod";
import { normalizePrefix } from "./keys.js";
import { parseTags, tagsProblem } from "./tags.js";
import { credentialProblem } from "./header-values.js";

/** A usage or configuration mistake: exit 2 with the message. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine(
    (v) => ["true", "false", "1", "0", "yes", "no", "on", "off", ""].includes(v),
    "must be true or false",
  )
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const mediaTypes = z
  .string()
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
  .refine(
    (v) => v.length > 0 && v.every((t) => /^[a-z0-9][\w.+-]*\/(\*|[\w.+-]+)$/.test(t)),
    "must be media types (type/subtype or type/*) separated by commas",
  );

const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** The environment names, their defaults and their checks. `.env.example` documents the same list. */
const EnvSchema = z.object({
  ENVOY_API_URL: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .default("https://tryenvoy.ai/api/v1"),
  ENVOY_API_KEY: z.string().trim().optional(),
  ENVOY_API_TOKEN: z.string().trim().optional(),
  ENVOY_ORGANIZATION_ID: z.string().trim().optional(),
  ARCHIVER_S3_BUCKET: z.string().trim().optional(),
  ARCHIVER_S3_PREFIX: z.string().default(""),
  ARCHIVER_S3_FORCE_PATH_STYLE: bool.default(false),
  ARCHIVER_DB_PATH: z.string().trim().min(1).default("./data/archiver.db"),
  ARCHIVER_CONCURRENCY: int(1, 256).default(4),
  ARCHIVER_PAGE_SIZE: int(1, 100).default(100),
  ARCHIVER_ALLOW_INSECURE_URLS: bool.default(false),
  ARCHIVER_READY_STATUSES: list.default(["AVAILABLE", "COMPLETED", "READY"]),
  ARCHIVER_OVERLAP_DAYS: int(0, 365).default(1),
  ARCHIVER_PART_SIZE_MB: int(5, 5120).default(16),
  ARCHIVER_PART_QUEUE: int(1, 64).default(2),
  ARCHIVER_SPOOL_DIR: z.string().trim().optional(),
  ARCHIVER_API_RPS: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, "must be a number of requests per second")
    .transform(Number)
    .optional(),
  ARCHIVER_MAX_RETRIES: int(0, 100).default(6),
  ARCHIVER_OBJECT_LOCK_MODE: z
    .enum(["GOVERNANCE", "COMPLIANCE"], { error: "must be GOVERNANCE or COMPLIANCE" })
    .optional(),
  ARCHIVER_RETENTION_DAYS: int(1, 36_500).optional(),
  ARCHIVER_LEGAL_HOLD: bool.default(false),
  ARCHIVER_CHECKSUM_ALGORITHM: z
    .enum(["NONE", "MD5", "CRC32C", "SHA256"], { error: "must be NONE, MD5, CRC32C or SHA256" })
    .optional(),
  ARCHIVER_SSE: z.enum(["AES256", "aws:kms"], { error: "must be AES256 or aws:kms" }).optional(),
  ARCHIVER_SSE_KMS_KEY_ID: z.string().trim().optional(),
  ARCHIVER_STORAGE_CLASS: z
    .enum(["STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], {
      error: "must be STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER or DEEP_ARCHIVE",
    })
    .optional(),
  ARCHIVER_TAGS: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      const problem = tagsProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  ARCHIVER_ON_SOURCE_CHANGE: z
    .enum(["report", "archive"], { error: "must be report or archive" })
    .default("report"),
  ARCHIVER_MAX_PAGES: int(1, 10_000_000).default(100_000),
  ARCHIVER_MAX_BODY_MB: int(1, 5 * 1024 * 1024).default(4096),
  ARCHIVER_MEDIA_TYPES: mediaTypes.default(["audio/*", "video/*", "application/octet-stream"]),
  ARCHIVER_CHECK_MP4: bool.default(true),
  ARCHIVER_MIN_TRANSFER_RATE: int(0, 10_000_000).default(16),
  ARCHIVER_TRANSFER_GRACE: int(1, 86_400).default(60),
  ARCHIVER_PROGRESS_INTERVAL: int(1, 86_400).default(30),
  ARCHIVER_METRICS_PORT: int(0, 65_535).default(9464),
  ARCHIVER_SHARD_COUNT: int(1, 100_000).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Env = z.infer<typeof EnvSchema>;
export const ENV_NAMES = Object.keys(EnvSchema.shape) as (keyof Env)[];

export interface Config {
  envoy: {
    apiUrl: string;
    apiKey: string | undefined;
    token: string | undefined;
    organizationId: string | undefined;
    pageSize: number;
    readyStatuses: string[];
    rps: number | undefined;
    /** A listing longer than this many pages stops the run. */
    maxPages: number;
  };
  media: MediaLimits;
  s3: {
    bucket: string | undefined;
    prefix: string;
    forcePathStyle: boolean;
    partSize: number;
    queueSize: number;
    /** Where request bodies above 1 MiB wait for S3 (a file each); undefined: in memory. */
    spoolDir: string | undefined;
    region: string | undefined;
    endpoint: string | undefined;
  };
  storage: StorageSettings;
  dbPath: string;
  concurrency: number;
  allowInsecureUrls: boolean;
  overlapDays: number;
  maxRetries: number;
  /** A source that changed after archiving: only reported, or its new bytes also archived under `{call_id}.v2…`. */
  onSourceChange: "report" | "archive";
  logLevel: string;
  /** Seconds between progress log records when stderr is not a terminal. */
  progressIntervalS: number;
  metricsPort: number;
  shardCount: number | undefined;
}

/** What a media response must be, and how much and how long it may take. */
export interface MediaLimits {
  /** Largest body read when the recording's size is unknown (no file_size_bytes). */
  maxBodyBytes: number;
  /** Media types a response may have (`type/*` allowed). */
  allowedTypes: string[];
  /** MP4 containers must start with an MP4 box (`ftyp`). */
  checkMp4: boolean;
  /** A transfer must average at least this many bytes per second after the grace period (0: no floor). */
  minBytesPerSec: number;
  /** Time every transfer gets regardless of its size; also the margin before a URL's expiry. */
  graceMs: number;
}

/** How objects are stored: WORM lock, legal hold, encryption, class, tags, and the body checksum sent. */
export interface StorageSettings {
  lockMode: "GOVERNANCE" | "COMPLIANCE" | undefined;
  retentionDays: number | undefined;
  legalHold: boolean;
  /** MD5 → Content-MD5; CRC32C/SHA256 → x-amz-checksum-*; NONE → only what the operation requires. */
  checksum: "NONE" | "MD5" | "CRC32C" | "SHA256";
  sse: "AES256" | "aws:kms" | undefined;
  sseKmsKeyId: string | undefined;
  storageClass:
    | "STANDARD"
    | "STANDARD_IA"
    | "INTELLIGENT_TIERING"
    | "GLACIER_IR"
    | "GLACIER"
    | "DEEP_ARCHIVE"
    | undefined;
  tags: [string, string][];
}

export interface LoadOptions {
  /** Flag values, keyed by the environment name they override. Undefined values are ignored. */
  overrides?: Partial<Record<keyof Env, string | undefined>>;
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
  const problems: string[] = [];
  let fromFile: Record<string, string> = {};
  const path = opts.dotenvPath ?? ".env";
  try {
    fromFile = parseDotenv(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" || opts.requireDotenv)
      problems.push(`${path}: cannot read it (${(err as Error).message})`);
  }
  const raw: Record<string, string> = {};
  // An empty value means "unset" (docker-compose and systemd pass empty strings for unset values): the next
  // source is asked.
  const set = (v: string | undefined) => (v === "" ? undefined : v);
  for (const name of ENV_NAMES) {
    const v = set(opts.overrides?.[name]) ?? set(env[name]) ?? set(fromFile[name]);
    if (v !== undefined) raw[name] = v;
  }
  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
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
  const e = parsed.data;
  const locked = e.ARCHIVER_OBJECT_LOCK_MODE !== undefined || e.ARCHIVER_LEGAL_HOLD;
  return {
    storage: {
      lockMode: e.ARCHIVER_OBJECT_LOCK_MODE,
      retentionDays: e.ARCHIVER_RETENTION_DAYS,
      legalHold: e.ARCHIVER_LEGAL_HOLD,
      // Locked uploads must carry a checksum: Content-MD5 is the one every S3-compatible server understands.
      checksum: e.ARCHIVER_CHECKSUM_ALGORITHM ?? (locked ? "MD5" : "NONE"),
      sse: e.ARCHIVER_SSE,
      sseKmsKeyId: e.ARCHIVER_SSE_KMS_KEY_ID,
      storageClass: e.ARCHIVER_STORAGE_CLASS,
      tags: parseTags(e.ARCHIVER_TAGS ?? ""),
    },
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
    s3: {
      bucket: e.ARCHIVER_S3_BUCKET,
      prefix: normalizePrefix(e.ARCHIVER_S3_PREFIX),
      forcePathStyle: e.ARCHIVER_S3_FORCE_PATH_STYLE,
      partSize: e.ARCHIVER_PART_SIZE_MB * 1024 * 1024,
      queueSize: e.ARCHIVER_PART_QUEUE,
      spoolDir:
        e.ARCHIVER_SPOOL_DIR === "memory" ? undefined : e.ARCHIVER_SPOOL_DIR || `${e.ARCHIVER_DB_PATH}.spool`,
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? fromFile.AWS_REGION,
      endpoint: env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? fromFile.AWS_ENDPOINT_URL_S3,
    },
    dbPath: e.ARCHIVER_DB_PATH,
    concurrency: e.ARCHIVER_CONCURRENCY,
    allowInsecureUrls: e.ARCHIVER_ALLOW_INSECURE_URLS,
    overlapDays: e.ARCHIVER_OVERLAP_DAYS,
    maxRetries: e.ARCHIVER_MAX_RETRIES,
    onSourceChange: e.ARCHIVER_ON_SOURCE_CHANGE,
    logLevel: e.LOG_LEVEL,
    progressIntervalS: e.ARCHIVER_PROGRESS_INTERVAL,
    metricsPort: e.ARCHIVER_METRICS_PORT,
    shardCount: e.ARCHIVER_SHARD_COUNT,
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
  return [c.envoy.apiKey, c.envoy.token].filter((s): s is string => typeof s === "string" && s.length > 0);
}

/** A stable fingerprint of the settings that shape what is archived, without secrets (for the audit trail). */
export function configFingerprint(c: Config): string {
  const safe = {
    ...c,
    envoy: {
      ...c.envoy,
      apiKey: c.envoy.apiKey ? "set" : undefined,
      token: c.envoy.token ? "set" : undefined,
    },
  };
  return createHash("sha256").update(JSON.stringify(safe)).digest("hex").slice(0, 16);
}
