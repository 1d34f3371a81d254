/**
 * Downloads recording media from the time-limited URLs Envoy hands out. Every URL passes the SSRF policy
 * (url-policy.ts) before a connection is made, and the resolver re-checks each address at connect time, so DNS
 * rebinding cannot reach loopback, private or metadata addresses.
 */
import { Agent, request, type Dispatcher } from "undici";
import type { Readable } from "node:stream";
import { ArchiverError, classifyHttp } from "../errors.js";
import { checkUrl, guardedLookup, type UrlPolicy } from "../url-policy.js";
import { parseRetryAfter } from "../retry.js";
import { redactUrl } from "../redact.js";

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
}

export class MediaFetcher {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: MediaFetcherOptions) {
    this.dispatcher = new Agent({
      connections: opts.connections ?? 16,
      keepAliveTimeout: 10_000,
      headersTimeout: opts.idleTimeoutMs ?? 60_000,
      bodyTimeout: opts.idleTimeoutMs ?? 60_000,
      connect: { lookup: guardedLookup(opts.policy) },
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
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
    const res = await request(verdict.url, {
      method: "GET",
      headers,
      dispatcher: this.dispatcher,
      signal,
      maxRedirections: 0,
    } as Parameters<typeof request>[1]);
    const status = res.statusCode;
    if (status !== 200 && status !== 206) {
      const text = await res.body.text().catch(() => "");
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
    return {
      body: res.body,
      skip: status === 200 ? offset : 0,
      totalBytes,
      contentType: header(res.headers["content-type"]) ?? null,
    };
  }
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
