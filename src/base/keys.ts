/** S3 key templates. Pure: no I/O, and never a key built from an id that is not `call_<uuid>`. */

export const CALL_ID_RE = /^call_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class KeyError extends Error {
  override readonly name = "KeyError";
}

export function isValidCallId(id: unknown): id is string {
  return typeof id === "string" && CALL_ID_RE.test(id);
}

/** '' stays ''; otherwise no leading '/', exactly one trailing '/', no '..' or empty segments. */
export function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return "";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(prefix)) throw new Error("prefix contains control characters");
  const p = prefix.replace(/^\/+/, "").replace(/\/+$/, "");
  if (p === "") return "";
  const segments = p.split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".."))
    throw new Error(`prefix "${prefix}" has an empty, "." or ".." segment`);
  return `${p}/`;
}

export function extensionFor(contentType: string | null | undefined): "m4a" | "mp4" | "bin" {
  const base = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (base === "audio/mp4") return "m4a";
  if (base === "video/mp4") return "mp4";
  return "bin";
}

/** UTC yyyy/mm/dd of an ISO timestamp or date; null when it does not parse. */
function datePath(value: string | null | undefined): string | null {
  if (!value) return null;
  const v = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/i.test(v)) return null;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(ms)) return null;
  const iso = new Date(ms).toISOString();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v) && iso.slice(0, 10) !== v) return null; // 2026-02-30 rolls over: reject
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;
}

export function recordingKey(input: {
  prefix: string;
  callId: string;
  recordingStartTime?: string | null;
  callTime?: string | null;
  contentType?: string | null;
}): string {
  if (!isValidCallId(input.callId))
    throw new KeyError(`call id ${JSON.stringify(String(input.callId).slice(0, 80))} is not call_<uuid>`);
  const day = datePath(input.recordingStartTime) ?? datePath(input.callTime);
  if (!day) throw new KeyError(`call ${input.callId} has no usable recording_start_time or call_time`);
  return `${input.prefix}recordings/${day}/${input.callId}.${extensionFor(input.contentType)}`;
}

/** The call id a recording key was built from (`…/{call_id}.{ext}`), or null when it is not one of ours. */
export function callIdOfKey(key: string): string | null {
  const base = key.slice(key.lastIndexOf("/") + 1);
  const dot = base.indexOf(".");
  const id = dot > 0 ? base.slice(0, dot) : "";
  return isValidCallId(id) ? id : null;
}

export function sidecarKey(recordingKey: string): string {
  return `${recordingKey}.json`;
}

/** Where the n-th version of a recording whose source changed goes: `…/{call_id}.v2.m4a` for n = 2. */
export function versionedKey(recordingKey: string, n: number): string {
  const dot = recordingKey.lastIndexOf(".");
  return `${recordingKey.slice(0, dot)}.v${n}${recordingKey.slice(dot)}`;
}

export function manifestKey(prefix: string, name: string): string {
  return `${prefix}manifests/${name}`;
}

/** The listing of recordings from the UTC day `since` (YYYY-MM-DD) on: keys sort by day under the prefix. */
export function recordingsListing(prefix: string, since?: string): { prefix: string; startAfter: string } {
  const under = `${prefix}recordings/`;
  return { prefix: under, startAfter: since ? `${under}${since.replace(/-/g, "/")}` : under };
}

// eslint-disable-next-line no-control-regex
const BELOW_SURROGATES = /^[\u0000-\ud7ff]*$/;

/** Keys compared in the order S3 lists them (UTF-8 bytes); JavaScript's < agrees below U+D800. */
export function compareKeys(a: string, b: string): number {
  if (BELOW_SURROGATES.test(a) && BELOW_SURROGATES.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Where the audit trails' heads are written: `{prefix}_audit/{trail}/`, one trail a state DB. */
export function auditPrefix(prefix: string): string {
  return `${prefix}_audit/`;
}

/**
 * The head object of link `seq` of a trail: its number (zero-padded, so keys list in order) and its SHA-256 in
 * the name. One object a command, never overwritten.
 */
export function auditHeadKey(prefix: string, trail: string, seq: number, sha256: string): string {
  return `${auditPrefix(prefix)}${trail}/${String(seq).padStart(12, "0")}-${sha256}.json`;
}

/** The trail, link number and SHA-256 a head key names; null for any other key. */
export function parseAuditHeadKey(
  prefix: string,
  key: string,
): { trail: string; seq: number; sha256: string } | null {
  const under = auditPrefix(prefix);
  if (!key.startsWith(under)) return null;
  const m = /^([0-9a-f]{16})\/(\d{12})-([0-9a-f]{64})\.json$/.exec(key.slice(under.length));
  return m ? { trail: m[1]!, seq: Number(m[2]), sha256: m[3]! } : null;
}
