/**
 * URL refresh: the one place that decides when a media URL is too old to use and asks Envoy for a fresh one, and
 * how long a transfer may read from a URL (never past its expiry: reading stops there and continues with a fresh
 * URL from the last checkpoint).
 */
import { ArchiverError, classify } from "../base/errors.js";
import { extensionFor } from "../base/keys.js";
import type { MediaLimits } from "../base/config.js";
import type { Recording } from "./envoy-client.js";
import type { MediaFetcher, OpenedMedia } from "./media.js";
import { guardBody } from "./body-guard.js";

/** Time we allow ourselves regardless of size (unless told otherwise), plus time per byte at 2 MiB/s. */
const BASE_MARGIN_MS = 60_000;
const PESSIMISTIC_BYTES_PER_MS = (2 * 1024 * 1024) / 1000;

/**
 * Should this URL be replaced before (re)starting a download of `remainingBytes`? True when it has expired or
 * would probably expire before the transfer finishes. A missing or unparseable expires_at is trusted as-is.
 */
export function needsRefresh(
  expiresAt: string | null | undefined,
  remainingBytes: number | null,
  now: number,
  baseMarginMs = BASE_MARGIN_MS,
): boolean {
  const at = expiryOf(expiresAt);
  if (at === null) return false;
  const margin = baseMarginMs + (remainingBytes ?? 0) / PESSIMISTIC_BYTES_PER_MS;
  return at - now < margin;
}

function expiryOf(expiresAt: string | null | undefined): number | null {
  if (!expiresAt) return null;
  const at = Date.parse(expiresAt);
  return Number.isNaN(at) ? null : at;
}

/**
 * Returns an `open(offset)` for the sink that always uses a URL fit for use: refreshed before it expires, and
 * after the media host refuses it (401/403/410), at most `maxRefreshes` times for the recording. Every body is
 * read under the media limits (body-guard.ts), with the URL's expiry as a deadline.
 */
export function refreshingOpener(opts: {
  initial: Recording;
  refresh: () => Promise<Recording>;
  media: MediaFetcher;
  maxRefreshes: number;
  limits: MediaLimits;
  signal?: AbortSignal | undefined;
  /** The API's time (expires_at is in its clock, which may not be ours: clock.ts). */
  now?: () => number;
  onRefresh?: (reason: string) => void;
}): { open: (offset: number) => Promise<OpenedMedia>; current: () => Recording } {
  let rec = opts.initial;
  let refreshes = 0;
  const now = opts.now ?? Date.now;
  const { limits } = opts;
  const refresh = async (reason: string) => {
    if (refreshes >= opts.maxRefreshes)
      throw new ArchiverError(
        "permanent",
        "url_refresh_exhausted",
        `media URL still refused after ${refreshes} refreshes (${reason})`,
      );
    refreshes++;
    opts.onRefresh?.(reason);
    rec = await opts.refresh();
  };
  const guarded = (media: OpenedMedia, offset: number): OpenedMedia => ({
    ...media,
    body: guardBody(media.body, {
      offset,
      skip: media.skip,
      expectedBytes: rec.file_size_bytes ?? null,
      declaredBytes: media.totalBytes,
      maxBytes: limits.maxBodyBytes,
      maxBytesSetting: "ARCHIVER_MAX_BODY_MB",
      minBytesPerSec: limits.minBytesPerSec,
      graceMs: limits.graceMs,
      expiresAt: expiryOf(rec.expires_at),
      checkMp4: limits.checkMp4 && (isMp4(rec.content_type) || isMp4(media.contentType)),
      now,
    }),
  });
  const open = async (offset: number): Promise<OpenedMedia> => {
    for (;;) {
      const size = rec.file_size_bytes ?? null;
      if (needsRefresh(rec.expires_at, size === null ? null : size - offset, now(), limits.graceMs))
        await refresh("URL expires too soon");
      if (!rec.url) throw new ArchiverError("permanent", "recording_gone", "recording no longer has a URL");
      try {
        return guarded(await opts.media.open(rec.url, offset, opts.signal), offset);
      } catch (err) {
        const c = classify(err);
        if (c.kind !== "refresh-url") throw c;
        await refresh(c.message);
      }
    }
  };
  return { open, current: () => rec };
}

/** MP4 containers (audio/mp4, video/mp4 and their aliases) start with an MP4 box. */
function isMp4(contentType: string | null | undefined): boolean {
  const base = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return extensionFor(base) !== "bin" || ["audio/x-m4a", "audio/m4a", "video/quicktime"].includes(base);
}
