/**
 * The settings' environment names, their defaults and their checks: what every source (flags, environment, `.env`)
 * is validated against. `.env.example`, `--help` and the README list the same names (test/unit/help-env.test.ts).
 */
import { z } from "zod";
import { tagsProblem } from "./tags.js";
import { parseDuration, parseSize } from "./units.js";
import { parseBwLimit } from "./bandwidth.js";

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine(
    (v) => ["true", "false", "1", "0", "yes", "no", "on", "off", ""].includes(v),
    "must be true or false",
  )
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const int = (min: number, max: number) => {
  const message = `must be a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, message)
    .transform(Number)
    .pipe(z.number().int().min(min, message).max(max, message));
};

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

/** A limit written as `parse` reads it ("", 0 or off: none). */
const limit = (parse: (v: string) => number | null, message: string) =>
  z
    .string()
    .trim()
    .transform((v, ctx) => {
      if (v === "" || v === "0" || v === "off") return undefined;
      const n = parse(v);
      if (n === null || n <= 0) ctx.addIssue({ code: "custom", message });
      return n ?? undefined;
    });

const duration = limit(parseDuration, "must be a duration such as 50m, 1h30m, 90s (or off)");
const size = limit(parseSize, "must be a size such as 200G, 512M, 10K (or off)");

/** The environment names, their defaults and their checks. */
export const EnvSchema = z.object({
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
  ARCHIVER_COMPLETENESS_DAYS: int(0, 3650).default(30),
  ARCHIVER_PART_SIZE_MB: int(5, 5120).default(16),
  ARCHIVER_PART_QUEUE: int(1, 64).default(2),
  ARCHIVER_SPOOL_DIR: z.string().trim().optional(),
  ARCHIVER_GROUP_READABLE: bool.default(false),
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
  ARCHIVER_MAX_DURATION: duration.optional(),
  ARCHIVER_MAX_BYTES: size.optional(),
  ARCHIVER_CUTOFF: z.enum(["soft", "hard"], { error: "must be soft or hard" }).default("soft"),
  ARCHIVER_BWLIMIT: z
    .string()
    .trim()
    .transform((v, ctx) => {
      const slots = parseBwLimit(v);
      if (!slots)
        ctx.addIssue({
          code: "custom",
          message: 'must be a rate such as 20M (bytes/s), off, or a timetable such as "08:00,5M 19:00,off"',
        });
      return slots ?? [];
    })
    .optional(),
  ARCHIVER_REBUILD_STATE: bool.default(false),
  ARCHIVER_LEASE_TTL: int(0, 86_400)
    .refine((v) => v === 0 || v >= 5, "must be 0 (no lease) or at least 5 seconds")
    .default(900),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Env = z.infer<typeof EnvSchema>;
export const ENV_NAMES = Object.keys(EnvSchema.shape) as (keyof Env)[];
