/**
 * Downloads recording media from the time-limited URLs Envoy hands out. Every URL passes the SSRF policy
 * (url-policy.ts) before a connection is made, and the resolver re-checks each address at connect time, so DNS
 * rebinding cannot reach loopback, private or metadata addresses.
 */
import type { Readable } from "node:stream";
import { HttpClient } from "./http.js";
import { ArchiverError, classifyHttp } from "../base/errors.js";
import { checkUrl, guardedLookup, type UrlPolicy } from "./url-policy.js";
import { parseRetryAfter } from "../base/retry.js";
import { redactUrl } from "../base/redact.js";
import type { MediaLimits } from "../base/config.js";
import type { Bandwidth } from "../base/bandwidth.js";

export interface OpenedMedia {
  body: Readable;
  /** Bytes at the start of `body` to discard: the server ignored Range and sent the object from byte 0. */
  skip: number;
  /** Total size of the object, when the server said (Content-Length, or the total in Content-Range). */
  totalBytes: number | null;
  contentType: string | null;
}

export interface MediaFetcherOptions {
  policy: UrlPolicy;
  userAgent: string;
  connections?: number;
  /** A stalled body (no byte for this long) is a retryable error, not a hang. */
  idleTimeoutMs?: number;
  /**
   * Media types a response may have (`type/*` allowed; anything else is not a recording), and the time to the
   * response head however slowly it trickles (the body's own limits are body-guard.ts's).
   */
  limits?: Pick<MediaLimits, "allowedTypes" | "graceMs">;
  /** The bandwidth limit every body of this fetcher shares (base/bandwidth.ts). */
  bandwidth?: Bandwidth;
}

const DEFAULT_TYPES = ["audio/*", "video/*", "application/octet-stream"];

/** Is `contentType` (a header value, parameters allowed) one of `allowed` (`type/subtype` or `type/*`)? */
export function mediaTypeAllowed(contentType: string, allowed: readonly string[]): boolean {
  const base = contentType.split(";")[0]!.trim().toLowerCase();
  const [type] = base.split("/");
  return allowed.some((a) => a === base || (a.endsWith("/*") && a.slice(0, -2) === type));
}

export class MediaFetcher {
  private readonly http: HttpClient;

  constructor(private readonly opts: MediaFetcherOptions) {
    this.http = new HttpClient({
      maxSockets: opts.connections ?? 16,
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      lookup: guardedLookup(opts.policy),
      deadlineMs: opts.limits?.graceMs,
    });
  }

  close(): Promise<void> {
    this.http.close();
    return Promise.resolve();
  }

  /**
   * GET the media from byte `offset` (a Range request when offset > 0). A server that ignores Range answers
   * 200 with the whole object; `skip` then tells the caller how many leading bytes to drop.
   */
  async open(rawUrl: string, offset: number, signal?: AbortSignal): Promise<OpenedMedia> {
    const verdict = checkUrl(rawUrl, this.opts.policy);
    if (!verdict.ok)
      throw new ArchiverError("permanent", "url_refused", `media URL ${redactUrl(rawUrl)} ${verdict.reason}`);
    const headers: Record<string, string> = {
      "user-agent": this.opts.userAgent,
      "accept-encoding": "identity",
    };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.http.get(verdict.url, headers, signal);
    const status = res.statusCode;
    if (status !== 200 && status !== 206) {
      const text = await readErrorText(res.body).catch(() => "");
      throw classifyHttp(
        "media",
        status,
        undefined,
        `media ${redactUrl(rawUrl)} answered ${status}${text ? `: ${oneLine(text)}` : ""}`,
        parseRetryAfter(header(res.headers["retry-after"])),
      );
    }
    const length = numberOrNull(header(res.headers["content-length"]));
    let totalBytes: number | null = length;
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers["content-range"]) ?? "");
      if (!m || Number(m[1]) !== offset) {
        res.body.destroy();
        throw new ArchiverError(
          "retryable",
          "bad_range",
          `media answered a range that is not the one asked for`,
        );
      }
      totalBytes = m[3] === "*" ? null : Number(m[3]);
    }
    const contentType = header(res.headers["content-type"]) ?? null;
    // No Content-Type at all is application/octet-stream (RFC 9110 8.3); an error page says text/html.
    const allowed = this.opts.limits?.allowedTypes ?? DEFAULT_TYPES;
    if (contentType !== null && !mediaTypeAllowed(contentType, allowed)) {
      res.body.destroy();
      throw new ArchiverError(
        "retryable",
        "not_media",
        `media ${redactUrl(rawUrl)} answered ${status} with Content-Type ${JSON.stringify(contentType.slice(0, 80))}: not a recording (ARCHIVER_MEDIA_TYPES allows ${allowed.join(", ")})`,
        { status },
      );
    }
    if (offset === 0 && totalBytes === 0) {
      res.body.destroy();
      throw new ArchiverError(
        "retryable",
        "empty_body",
        `media ${redactUrl(rawUrl)} answered ${status} with an empty body (Content-Length: 0): not a recording`,
        { status },
      );
    }
    const body = this.opts.bandwidth ? this.opts.bandwidth.throttle(res.body) : res.body;
    return { body, skip: status === 200 ? offset : 0, totalBytes, contentType };
  }
}

/** The start of an error body, for the message; the rest is drained so the connection can be reused. */
async function readErrorText(body: Readable): Promise<string> {
  let text = "";
  for await (const chunk of body) if (text.length < 4096) text += (chunk as Buffer).toString("utf8");
  return text;
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function numberOrNull(v: string | undefined): number | null {
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
