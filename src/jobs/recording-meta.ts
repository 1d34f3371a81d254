/**
 * What of a recording's metadata (from the source, so untrusted) goes into S3 headers: its content type, refused
 * unless it is a media type fit for a header, and its user metadata, redacted and made header-safe.
 */
import { ArchiverError } from "../base/errors.js";
import { headerValue, isHeaderSafe } from "../base/header-values.js";
import { redactText } from "../base/redact.js";
import type { Recording } from "../envoy/envoy-client.js";

/** Content types are `type/subtype[; params]`; anything else is malformed metadata. */
const CONTENT_TYPE_RE = /^[a-z0-9][\w.+-]*\/[\w.+-]+(\s*;.*)?$/i;

/** The object's Content-Type: the recording's, redacted (no signed parameter), or a permanent failure. */
export function storedContentType(rec: Recording): string {
  const contentType = redactText(rec.content_type ?? "application/octet-stream");
  if (!CONTENT_TYPE_RE.test(contentType) || !isHeaderSafe(contentType))
    throw new ArchiverError(
      "permanent",
      "bad_content_type",
      `content_type ${JSON.stringify(contentType.slice(0, 80))} is not a media type`,
    );
  return contentType;
}

/** User metadata for the object (sha256 is added by the sink once known). */
export function objectMetadata(callId: string, rec: Recording): Record<string, string> {
  const metadata: Record<string, string> = { "call-id": callId };
  if (rec.recording_start_time)
    metadata["recording-start-time"] = headerValue(redactText(rec.recording_start_time));
  if (rec.duration_seconds !== null && rec.duration_seconds !== undefined)
    metadata["duration-seconds"] = String(rec.duration_seconds);
  return metadata;
}
