/**
 * URL refresh: the one place that decides when a media URL is too old to use and asks Envoy for a fresh one.
 */
import { ArchiverError, classify } from "../errors.js";
import type { Recording } from "../source/envoy-client.js";
import type { MediaFetcher, OpenedMedia } from "../source/media.js";

/** Time we allow ourselves regardless of size, plus time per byte at a pessimistic 2 MiB/s. */
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
): boolean {
  if (!expiresAt) return false;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return false;
  const margin = BASE_MARGIN_MS + (remainingBytes ?? 0) / PESSIMISTIC_BYTES_PER_MS;
  return at - now < margin;
}

/**
 * Returns an `open(offset)` for the sink that always uses a URL fit for use: refreshed before it expires, and
 * after the media host refuses it (401/403/410), at most `maxRefreshes` times for the recording.
 */
export function refreshingOpener(opts: {
  initial: Recording;
  refresh: () => Promise<Recording>;
  media: MediaFetcher;
  maxRefreshes: number;
  signal?: AbortSignal | undefined;
  /** The API's time (expires_at is in its clock, which may not be ours: clock.ts). */
  now?: () => number;
  onRefresh?: (reason: string) => void;
}): { open: (offset: number) => Promise<OpenedMedia>; current: () => Recording } {
  let rec = opts.initial;
  let refreshes = 0;
  const now = opts.now ?? Date.now;
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
  const open = async (offset: number): Promise<OpenedMedia> => {
    for (;;) {
      const size = rec.file_size_bytes ?? null;
      if (needsRefresh(rec.expires_at, size === null ? null : size - offset, now()))
        await refresh("URL expires too soon");
      if (!rec.url) throw new ArchiverError("permanent", "recording_gone", "recording no longer has a URL");
      try {
        return await opts.media.open(rec.url, offset, opts.signal);
      } catch (err) {
        const c = classify(err);
        if (c.kind !== "refresh-url") throw c;
        await refresh(c.message);
      }
    }
  };
  return { open, current: () => rec };
}
