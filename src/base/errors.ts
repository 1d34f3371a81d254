/**
 * One error taxonomy for the whole archiver, modelled on rclone's fserrors: every failure, whatever raised it
 * (Envoy API, media download, S3, state DB), is classified into exactly one kind, and the kind alone decides
 * what happens next (see retry.ts for the policy of each kind).
 *
 * - retryable:   transient; try again with backoff (network errors, 5xx, 408, 429, S3 SlowDown).
 * - refresh-url: the media URL is no longer good (401/403/410 from the media host, or about to expire);
 *                ask the API for fresh recording metadata and continue.
 * - permanent:   this recording cannot be archived as things stand (other 4xx, refused URL, bad metadata,
 *                size mismatch after all retries); record it as failed and carry on with the others.
 * - fatal:       nothing else can succeed either (API key rejected, bucket missing or access denied, state DB
 *                corrupt); stop the run.
 */
import { clockSkewFailure } from "./clock.js";

export type ErrorKind = "retryable" | "refresh-url" | "permanent" | "fatal";

export interface ArchiverErrorOptions {
  status?: number;
  retryAfterMs?: number;
  /** The S3 request that failed, with its key ("PutObject recordings/…"). */
  operation?: string;
  cause?: unknown;
}

export class ArchiverError extends Error {
  override readonly name = "ArchiverError";
  readonly status?: number;
  /** For 429/503 answers that said how long to wait. */
  readonly retryAfterMs?: number;
  readonly operation?: string;

  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    opts: ArchiverErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (opts.operation !== undefined) this.operation = opts.operation;
  }
}

/** Thrown when the run was asked to stop (SIGINT/SIGTERM); never counted as a failure of a recording. */
export class StopRequested extends Error {
  override readonly name = "StopRequested";
  constructor() {
    super("stop requested");
  }
}

/**
 * What S3 stored is not what was sent (a bit flipped on the way: a middlebox, a NIC, a storage gateway): the
 * write's proof (s3/write-proof.ts) disagreed. Retryable: the PUT or the part is sent again (the bad object or
 * part replaced first). After the retries its message names the key, the part and both digests.
 */
export class WriteMismatch extends ArchiverError {
  constructor(
    readonly key: string,
    /** The part of a multipart upload; undefined for a single PUT or the completed object. */
    readonly partNumber: number | undefined,
    readonly proof: string,
    readonly sent: string,
    readonly stored: string,
  ) {
    const what = partNumber === undefined ? key : `part ${partNumber} of ${key}`;
    super(
      "retryable",
      "write_mismatch",
      `S3 stored other bytes than were sent for ${what}: ${proof} of the bytes sent ${sent}, the server's ${stored}`,
    );
  }
}

/** Where an HTTP status came from: the same status means different things from the API and the media host. */
export type HttpSource = "api" | "media";

/** Classify an HTTP answer that was not a success. `code` is Envoy's `error.code` when the body had one. */
export function classifyHttp(
  source: HttpSource,
  status: number,
  code: string | undefined,
  message: string,
  retryAfterMs?: number,
): ArchiverError {
  const opts: ArchiverErrorOptions = { status };
  if (retryAfterMs !== undefined) opts.retryAfterMs = retryAfterMs;
  const errCode = code ?? `http_${status}`;
  if (status === 429 || code === "rate_limit_exceeded")
    return new ArchiverError("retryable", errCode, message, opts);
  if (status === 408 || status >= 500) return new ArchiverError("retryable", errCode, message, opts);
  if (source === "media") {
    // Signed URLs answer 401/403 (S3, CloudFront) or 410 once they expire.
    if (status === 401 || status === 403 || status === 410)
      return new ArchiverError("refresh-url", errCode, message, opts);
    return new ArchiverError("permanent", errCode, message, opts);
  }
  if (status === 401 || code === "not_authenticated" || status === 403 || code === "insufficient_permissions")
    return new ArchiverError("fatal", errCode, message, opts);
  return new ArchiverError("permanent", errCode, message, opts);
}

const RETRYABLE_NET_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENOTFOUND",
  "ERR_STREAM_PREMATURE_CLOSE",
  "TimeoutError",
]);

const S3_FATAL = new Set([
  "NoSuchBucket",
  "AccessDenied",
  "AllAccessDisabled",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AccountProblem",
  "InvalidBucketName",
  "CredentialsProviderError",
  "PermanentRedirect",
  "AuthorizationHeaderMalformed",
]);

const S3_RETRYABLE = new Set([
  "SlowDown",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "OperationAborted",
  "NoSuchUpload", // the multipart upload vanished (aborted elsewhere): start the object again
  // The server found the body it received differs from the digest sent with it (Content-MD5, the signed payload
  // hash): corrupted on the way, so sent again.
  "BadDigest",
  "XAmzContentSHA256Mismatch",
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; clockSkewCorrected?: boolean };
  $fault?: unknown;
  $response?: { headers?: Record<string, string | undefined> };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** Classify anything thrown. Already-classified errors pass through unchanged. */
export function classify(err: unknown): ArchiverError {
  if (err instanceof ArchiverError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorLike;
  const name = str(e.name) ?? "Error";
  const code = str(e.code);
  const message = str(e.message) ?? String(err);

  if (code === "EURLREFUSED") return new ArchiverError("permanent", "url_refused", message, { cause: err });
  if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB")
    return new ArchiverError("fatal", "state_db_corrupt", `state DB is corrupt: ${message}`, { cause: err });
  if (code === "SQLITE_FULL" || code === "ENOSPC")
    return new ArchiverError("fatal", "disk_full", `disk full: ${message}`, { cause: err });

  // AWS SDK service errors carry the S3 error code as `name` and the HTTP status in $metadata.
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined || e.$fault !== undefined) {
    const opts: ArchiverErrorOptions = { cause: err };
    if (status !== undefined) opts.status = status;
    // A wrong local clock (clock.ts): corrected and retried, or named with its offset, never "access denied".
    const skew = clockSkewFailure({
      name,
      status,
      clockSkewCorrected: e.$metadata?.clockSkewCorrected,
      date: e.$response?.headers?.date,
    });
    if (skew) return new ArchiverError(skew.kind, skew.code, skew.message, opts);
    const detail = s3Detail(status, name, message);
    if (S3_FATAL.has(name) || status === 401)
      return new ArchiverError("fatal", name, s3FatalMessage(name, detail), opts);
    if (status === 403)
      return new ArchiverError(
        "fatal",
        name,
        s3FatalMessage(NO_CODE.has(name) ? name : "AccessDenied", detail),
        opts,
      );
    // 501 NotImplemented: the endpoint lacks the operation; asking again will not help.
    if (status === 501) return new ArchiverError("permanent", name, detail, opts);
    if (S3_RETRYABLE.has(name) || status === undefined || status >= 500 || status === 408 || status === 429)
      return new ArchiverError("retryable", name, detail, opts);
    if (status === 404 && name === "NotFound")
      return new ArchiverError("permanent", "NotFound", detail, opts);
    return new ArchiverError("permanent", name, detail, opts);
  }
  if (S3_FATAL.has(name))
    return new ArchiverError("fatal", name, s3FatalMessage(name, message), { cause: err });
  if (name === "CredentialsProviderError" || /Region is missing/i.test(message))
    return new ArchiverError("fatal", "aws_config", `AWS configuration: ${message}`, { cause: err });

  if ((code !== undefined && RETRYABLE_NET_CODES.has(code)) || RETRYABLE_NET_CODES.has(name))
    return new ArchiverError("retryable", code ?? name, message, { cause: err });
  // Wrapped network errors (fetch's "TypeError: fetch failed", SDK errors with a socket cause).
  if (e.cause !== undefined && e.cause !== err) {
    const inner = classify(e.cause);
    if (inner.kind === "retryable")
      return new ArchiverError("retryable", inner.code, message, { cause: err });
  }
  return new ArchiverError("permanent", code ?? name, message, { cause: err });
}

/**
 * An S3 request's failure, named: `S3 <operation and key>: HTTP <status> <S3 error code>: <server's message>`,
 * classified as `classify` does (kind, code and status kept). Errors the archiver raised itself pass unchanged.
 */
export function s3Failure(err: unknown, operation: string): ArchiverError {
  if (err instanceof ArchiverError) return err;
  const c = classify(err);
  const opts: ArchiverErrorOptions = { cause: err, operation };
  if (c.status !== undefined) opts.status = c.status;
  if (c.retryAfterMs !== undefined) opts.retryAfterMs = c.retryAfterMs;
  // The endpoint could not be reached at all: it is the setting to check.
  const noAnswer = c.status === undefined && CONNECT_CODES.has(c.code);
  const hint = noAnswer ? ": check AWS_ENDPOINT_URL_S3 (or AWS_REGION) and the network" : "";
  return new ArchiverError(c.kind, c.code, `S3 ${operation}: ${c.message}${hint}`, opts);
}

/** Network errors of a connection that was never made (a wrong endpoint, DNS, a server that is not there). */
const CONNECT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** SDK words for "the answer had no error code / no message" (HEAD answers have no body at all). */
const NO_CODE = new Set(["Unknown", "UnknownError", "Error"]);

/** Status, S3 error code and the server's message, saying so where the server left one out. */
function s3Detail(status: number | undefined, name: string, message: string): string {
  const code = NO_CODE.has(name) ? "(no S3 error code in the answer)" : name;
  const head = `${status === undefined ? "no HTTP status" : `HTTP ${status}`} ${code}`;
  const said = message.trim();
  if (said === "" || NO_CODE.has(said) || said === name) return `${head} (the server sent no message)`;
  return `${head}: ${said}`;
}

function s3FatalMessage(name: string, detail: string): string {
  switch (name) {
    case "NoSuchBucket":
      return `the bucket does not exist (check ARCHIVER_S3_BUCKET and AWS_REGION): ${detail}`;
    case "AccessDenied":
    case "AllAccessDisabled":
      return `access denied (the credentials need s3:PutObject, s3:GetObject and s3:ListBucket on the bucket): ${detail}`;
    case "SignatureDoesNotMatch":
      return `the request signature was refused (check AWS_SECRET_ACCESS_KEY): ${detail}`;
    case "InvalidAccessKeyId":
      return `the access key is unknown to this endpoint (check AWS_ACCESS_KEY_ID): ${detail}`;
    default:
      return NO_CODE.has(name)
        ? `refused: ${detail}; an answer without an error code (as to any HEAD request) can mean an unknown access key, a wrong secret key, or a missing permission`
        : `the credentials or the request were refused (${name}): ${detail}`;
  }
}
