/**
 * Header values, checked before any request is made. Node refuses a header with CR, LF or a character outside
 * Latin-1 by throwing from inside the HTTP client, where the AWS SDK leaves a timer armed that keeps the process
 * alive for minutes: so no value from the source reaches a header unchecked. Values from the source (object
 * metadata) are percent-encoded; values from the configuration must be clean or the configuration is refused.
 */

/** Printable ASCII, spaces allowed: safe in any HTTP header and in S3 user metadata. */
const SAFE_RE = /^[\x20-\x7e]*$/;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function isHeaderSafe(value: string): boolean {
  return SAFE_RE.test(value);
}

/**
 * A metadata value from the source, made header-safe: unchanged when it already is, else every character that
 * is not printable ASCII (and every `%`, so that the result decodes back) percent-encoded as UTF-8.
 */
export function headerValue(value: string): string {
  if (isHeaderSafe(value)) return value;
  // A lone surrogate cannot be encoded as UTF-8: it becomes U+FFFD first.
  const wellFormed = value.replace(LONE_SURROGATE_RE, "\ufffd");
  return wellFormed.replace(/[^\x20-\x24\x26-\x7e]+/gu, (s) => encodeURIComponent(s));
}

/** Why a credential or header from the configuration cannot be sent, or undefined when it can. */
export function credentialProblem(value: string): string | undefined {
  if (/[\r\n]/.test(value)) return "contains a line break";
  if (!/^[\x21-\x7e]+$/.test(value)) return "must be printable ASCII without spaces";
  return undefined;
}
