/** Secret hygiene: nothing that can authenticate (API key, JWT, signed-URL query) reaches a log line. */

const URL_RE = /\bhttps?:\/\/[^\s"'<>]+/gi;
const PARAM_RE =
  /\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|signature|token|access_token|Signature|Key-Pair-Id|Policy)=[^&\s"'<>]+/gi;
const BEARER_RE = /\bBearer\s+[A-Za-z0-9._~+/=-]+/g;

/** Scheme, host, port and path; a query becomes ?REDACTED; userinfo and fragment dropped. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?REDACTED" : ""}`;
  } catch {
    return "[unparseable url]";
  }
}

export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join("[REDACTED]");
  return out
    .replace(URL_RE, (u) => redactUrl(u))
    .replace(PARAM_RE, (_m, name: string) => `${name}=REDACTED`)
    .replace(BEARER_RE, "Bearer [REDACTED]");
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
