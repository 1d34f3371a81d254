/**
 * One line of help for every setting, in the order `--help` lists them. Typed by the schema's names, so a setting
 * added to the schema without a line here (or a line left here for a setting that is gone) does not compile.
 * A setting with a default in the schema gets "(default …)" from the schema itself, never from this text.
 */
import { EnvSchema, type Env } from "./config-schema.js";

export const SETTING_HELP = {
  ENVOY_API_URL: "Envoy API base URL",
  ENVOY_API_KEY: "organization API key, sent as X-API-Key (recommended for batch jobs)",
  ENVOY_API_TOKEN: "short-lived JWT, sent as Authorization: Bearer (used when no API key is set)",
  ENVOY_ORGANIZATION_ID: "optional X-Organization-ID header",
  ARCHIVER_S3_BUCKET: "destination bucket (required)",
  ARCHIVER_S3_PREFIX: 'key prefix, e.g. "envoy/"',
  ARCHIVER_S3_FORCE_PATH_STYLE: "true for MinIO and most S3-compatible servers",
  ARCHIVER_DB_PATH: "state DB file",
  ARCHIVER_CONCURRENCY: "recordings transferred at once",
  ARCHIVER_PAGE_SIZE: "calls per list page, 1-100",
  ARCHIVER_READY_STATUSES: "recording_status values that mean ready",
  ARCHIVER_OVERLAP_DAYS: "incremental runs re-list this many days before the watermark",
  ARCHIVER_COMPLETENESS_DAYS:
    "incremental runs count the calls of this many UTC days before their window at the source " +
    "(one request a day) and list in full each day that differs from the state; 0 = off",
  ARCHIVER_PART_SIZE_MB: "multipart part size in MiB, min 5; smaller recordings use one PUT",
  ARCHIVER_PART_QUEUE: "parts of one recording uploaded at once",
  ARCHIVER_SPOOL_DIR: 'where bodies above 1 MiB wait for S3, or "memory" (default <db path>.spool)',
  ARCHIVER_GROUP_READABLE:
    "true: manifests, reports, exports and the metrics file are 0640, their group may read them; else 0600 (state and spool always 0600)",
  ARCHIVER_API_RPS: "client-side cap on Envoy API requests per second (default none)",
  ARCHIVER_MAX_RETRIES: "retries for transient errors per operation",
  ARCHIVER_ON_SOURCE_CHANGE:
    "a source that changed after archiving: report, or archive it too under {call_id}.v2.m4a (.v3, ...); " +
    "the archived original is never touched",
  ARCHIVER_ALLOW_INSECURE_URLS: "allow http: and loopback/private media URLs - tests and demos only",
  ARCHIVER_MAX_PAGES: "a listing longer than this many pages stops the run",
  ARCHIVER_MAX_BODY_MB: "most MiB read for a recording with no file_size_bytes",
  ARCHIVER_MEDIA_TYPES: "media response types accepted",
  ARCHIVER_CHECK_MP4: "MP4 recordings must start with an MP4 box, ftyp",
  ARCHIVER_MIN_TRANSFER_RATE: "KiB/s a transfer must average after the grace time; 0 = no floor",
  ARCHIVER_TRANSFER_GRACE: "seconds every transfer gets whatever its size; URL expiry margin",
  ARCHIVER_PROGRESS_INTERVAL: "seconds between progress log records when not on a terminal",
  ARCHIVER_METRICS_PORT: "/metrics and /healthz port of `worker`",
  ARCHIVER_SHARD_COUNT: "shards, index from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX",
  ARCHIVER_MAX_DURATION: "run budget: no new recording after this long, e.g. 50m, 2h (worker: its interval)",
  ARCHIVER_MAX_BYTES: "run budget: no new recording after this many media bytes, e.g. 200G",
  ARCHIVER_CUTOFF:
    "when a budget is spent: soft lets transfers in flight finish; hard stops them as SIGTERM does",
  ARCHIVER_BWLIMIT:
    'media bytes/s for all transfers together, e.g. 20M, or a timetable "08:00,5M 19:00,off" (local time)',
  ARCHIVER_REBUILD_STATE:
    "true: a run whose state DB does not exist yet rebuilds it from the bucket first (reconcile, its shard)",
  ARCHIVER_LEASE_TTL:
    "seconds a run's lease on its prefix and shard lasts unrenewed (renewed every half); 0 = no lease",
  ARCHIVER_OBJECT_LOCK_MODE: "GOVERNANCE|COMPLIANCE, with ARCHIVER_RETENTION_DAYS (from recording start)",
  ARCHIVER_RETENTION_DAYS: "days to retain each object under Object Lock",
  ARCHIVER_LEGAL_HOLD: "true: every object under legal hold",
  ARCHIVER_CHECKSUM_ALGORITHM:
    "NONE|MD5|CRC32C|SHA256 per upload body (default MD5 with lock/hold, else NONE)",
  ARCHIVER_SSE: "AES256|aws:kms",
  ARCHIVER_SSE_KMS_KEY_ID: "KMS key id for ARCHIVER_SSE=aws:kms",
  ARCHIVER_STORAGE_CLASS: "STANDARD|STANDARD_IA|INTELLIGENT_TIERING|GLACIER_IR|GLACIER|DEEP_ARCHIVE",
  ARCHIVER_TAGS: "object tags, k=v,k2=v2",
  LOG_LEVEL: "fatal|error|warn|info|debug|trace|silent",
} as const satisfies Record<keyof Env, string>;

/** Each setting's default as a user writes it (lists with commas, "" as "empty"); absent: no default. */
export function settingDefaults(): Partial<Record<keyof Env, string>> {
  const defaults = EnvSchema.parse({});
  const out: Partial<Record<keyof Env, string>> = {};
  for (const [name, value] of Object.entries(defaults) as [keyof Env, unknown][]) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(",") : String(value);
    out[name] = text === "" ? "empty" : text;
  }
  return out;
}
