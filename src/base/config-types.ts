import type { BwSlot } from "./bandwidth.js";

/** The validated settings, in the shape the jobs use (made by loadConfig). */
import type { Exposure, Readers } from "./private-fs.js";

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
    /** AWS settings (AWS_REGION, AWS_ENDPOINT_URL_S3, ...) from the environment or the settings file. */
    region: string | undefined;
    endpoint: string | undefined;
    profile: string | undefined;
    /** Keys given as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; otherwise the SDK's chain (profile, role). */
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  };
  storage: StorageSettings;
  dbPath: string;
  concurrency: number;
  allowInsecureUrls: boolean;
  overlapDays: number;
  /** Incremental runs compare this many days before their window with the source's per-day counts (0: off). */
  completenessDays: number;
  maxRetries: number;
  /** A source that changed after archiving: only reported, or its new bytes also archived under `{call_id}.v2…`. */
  onSourceChange: "report" | "archive";
  logLevel: string;
  /** Seconds between progress log records when stderr is not a terminal. */
  progressIntervalS: number;
  metricsPort: number;
  shardCount: number | undefined;
  /** Who besides the owner may read the outputs (manifests, the metrics file): ARCHIVER_GROUP_READABLE. */
  outputReaders: Readers;
  /** The `.env` file read, when it holds secrets and its group or others may read it (the CLI warns). */
  exposedSettingsFile: (Exposure & { secrets: string[] }) | undefined;
  /** The run's budget (jobs/budget.ts): undefined limits are none. */
  budget: { maxDurationMs: number | undefined; maxBytes: number | undefined; cutoff: "soft" | "hard" };
  /** The bandwidth limit on media bytes, all transfers together (base/bandwidth.ts); empty: none. */
  bwLimit: BwSlot[];
  /** A run whose state DB file does not exist rebuilds it from the bucket first (reconcile for its shard). */
  rebuildState: boolean;
  /** How long a run's lease on its prefix and shard lasts unrenewed (ms); 0: no lease (s3/lease.ts). */
  leaseTtlMs: number;
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
