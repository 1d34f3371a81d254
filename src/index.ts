/** The library behind the CLI: everything a test or another program needs to run the archiver. */
export { runArchive, type RunOptions, type RunSummary, type RunOutcome } from "./pipeline/run.js";
export { loadConfig, requireRunSettings, ConfigError, type Config } from "./config.js";
export { ArchiverError, classify, classifyHttp, StopRequested, type ErrorKind } from "./errors.js";
export { withRetry, parseRetryAfter, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
export { RateGate } from "./rate-limit.js";
export { StateDb, type CallRow, type CallStatus, type RunRow } from "./state/db.js";
export { EnvoyClient, type Call, type Recording } from "./source/envoy-client.js";
export { MediaFetcher } from "./source/media.js";
export { S3Sink, createS3Client } from "./sink/s3.js";
export { recordingKey, sidecarKey, extensionFor, isValidCallId } from "./keys.js";
export { createLogger } from "./logger.js";
export { ARCHIVER_VERSION } from "./paths.js";
