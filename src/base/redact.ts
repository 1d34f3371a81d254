/**
 * Secret hygiene, one redaction for everything that leaves the process or is stored: log lines, summaries,
 * `runs.error` and `calls.last_error`, `status`, sidecars, `calls.call_json`, manifests, object headers. Nothing
 * that can authenticate (the API key, a JWT, an Authorization value, a signed URL's query) gets through.
 *
 * The configured key and token are registered once (`registerSecrets`) and masked wherever they appear; every
 * URL keeps its scheme, host and path only (`?REDACTED` marks a query that was dropped).
 */

const URL_RE = /\bhttps?:\/\/[^\s"'<>]+/gi;
const PARAM_RE =
  /\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|signature|token|access_token|Signature|Key-Pair-Id|Policy)=[^&\s"'<>;,]+/gi;
const BEARER_RE = /\bBearer\s+[A-Za-z0-9._~+/=-]+/g;
const JWT_RE = /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** JSON keys whose values are credentials whatever they look like. */
const SECRET_KEY_RE =
  /^(?:(?:proxy[-_])?authorization|cookie|set[-_]cookie|x[-_]api[-_]key|api[-_]?key|password|passwd|secret|client[-_]secret|token|sig|signature|credential|x[-_]amz[-_](?:signature|credential|security[-_]token))$|[-_](?:token|secret|signature|password)$/i;

/** Registered secrets and their URL-encoded forms (when different). */
const registered = new Map<string, string | undefined>();
/** Text without any of these holds nothing the patterns below would change (most strings: the fast path). */
const SUSPECT_RE = /:\/\/|=|bearer|eyJ/i;

/** Secrets masked by every redaction from now on (the configured API key and token). Short ones are ignored. */
export function registerSecrets(secrets: readonly (string | undefined)[]): void {
  for (const s of secrets) if (s && s.length >= 4 && !registered.has(s)) registered.set(s, encodedForm(s));
}

function encodedForm(s: string): string | undefined {
  const e = encodeURIComponent(s);
  return e === s ? undefined : e;
}

function maskSecret(text: string, s: string, encoded: string | undefined): string {
  let out = text.includes(s) ? text.split(s).join("[REDACTED]") : text;
  if (encoded && out.includes(encoded)) out = out.split(encoded).join("[REDACTED]");
  return out;
}

/** Scheme, host, port and path; a query becomes ?REDACTED; userinfo and fragment dropped. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?REDACTED" : ""}`;
  } catch {
    return "[unparseable url]";
  }
}

/** Mask secrets (registered and `secrets`), URL queries, signature parameters, bearer tokens and JWTs. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const [s, encoded] of registered) out = maskSecret(out, s, encoded);
  for (const s of secrets)
    if (s && s.length >= 4 && !registered.has(s)) out = maskSecret(out, s, encodedForm(s));
  if (!SUSPECT_RE.test(out)) return out;
  return out
    .replace(URL_RE, (u) => redactUrl(u))
    .replace(PARAM_RE, (_m, name: string) => `${name}=REDACTED`)
    .replace(BEARER_RE, "Bearer [REDACTED]")
    .replace(JWT_RE, "[REDACTED]");
}

/**
 * A JSON value from the source, fit to be stored: every string redacted (URLs lose their query), and values
 * under credential-like keys (authorization, token, signature, …) replaced.
 */
export function redactJson(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object" || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => redactJson(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      SECRET_KEY_RE.test(k) && v !== null && typeof v !== "object" ? "[REDACTED]" : redactJson(v, depth + 1),
    ]),
  );
}

export interface SafeError {
  type: string;
  message: string;
  code?: string;
  status?: number;
  stack?: string;
  cause?: SafeError;
}

export function redactError(err: unknown, secrets: readonly string[] = [], depth = 0): SafeError {
  if (!(err instanceof Error)) return { type: typeof err, message: redactText(String(err), secrets) };
  const e = err as Error & { code?: unknown; status?: unknown; $metadata?: { httpStatusCode?: number } };
  const out: SafeError = { type: e.name, message: redactText(e.message, secrets) };
  if (typeof e.code === "string") out.code = e.code;
  const status = typeof e.status === "number" ? e.status : e.$metadata?.httpStatusCode;
  if (typeof status === "number") out.status = status;
  if (e.stack) out.stack = redactText(e.stack, secrets);
  if (e.cause !== undefined && depth < 1) out.cause = redactError(e.cause, secrets, depth + 1);
  return out;
}

export const REDACT_PATHS: string[] = [
  "apiKey",
  "token",
  "*.apiKey",
  "*.token",
  "headers.authorization",
  'headers["x-api-key"]',
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "*.headers.authorization",
  '*.headers["x-api-key"]',
  "config.envoy.apiKey",
  "config.envoy.token",
  "url",
  "*.url",
];
