/**
 * HTTP GETs for the Envoy API and the media, on node:http/https keep-alive agents.
 *
 * Node's own client rather than undici: measured here, undici added ~30 MiB of peak RSS and ~0.1 s of CPU to
 * every start, and ~10% more CPU per request (bench/RESULTS.md). What the callers rely on is kept: a bounded
 * number of connections per origin, an idle timeout on connect, headers and body alike (a stalled transfer
 * becomes a retryable ETIMEDOUT, never a hang), an optional resolver checked at every connection (the media's
 * SSRF guard), no redirects followed, and cancellation through an AbortSignal.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export interface HttpClientOptions {
  /** Connections per origin. */
  maxSockets: number;
  /** No byte for this long (connecting, waiting for headers, or between body chunks): ETIMEDOUT. */
  idleTimeoutMs: number;
  /** Resolver used for every new connection (the media's SSRF guard re-checks addresses there). */
  lookup?: LookupFunction | undefined;
  /**
   * However the bytes trickle in (the idle timeout restarts with each one): no response head within this long,
   * or, with `wholeResponse`, no complete response: ETIMEDOUT.
   */
  deadlineMs?: number | undefined;
  /** The deadline covers the body too (API JSON); otherwise the head only (media: body-guard.ts takes over). */
  wholeResponse?: boolean;
}

export class HttpClient {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;

  constructor(private readonly opts: HttpClientOptions) {
    const agent = { keepAlive: true, maxSockets: opts.maxSockets };
    this.httpAgent = new HttpAgent(agent);
    this.httpsAgent = new HttpsAgent(agent);
  }

  /** Resolves with the response head; the caller reads or destroys `body`. */
  get(url: string | URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const u = typeof url === "string" ? new URL(url) : url;
    const https = u.protocol === "https:";
    const idle = this.opts.idleTimeoutMs;
    const { deadlineMs, wholeResponse } = this.opts;
    let response: IncomingMessage | undefined;
    let deadline: NodeJS.Timeout | undefined;
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        u,
        {
          method: "GET",
          headers,
          agent: https ? this.httpsAgent : this.httpAgent,
          timeout: idle,
          ...(signal ? { signal } : {}),
          ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}),
        },
        (res) => {
          // A body error with nobody reading yet must not crash the process; readers still see it.
          res.on("error", () => {});
          response = res;
          if (wholeResponse) res.once("close", () => clearTimeout(deadline));
          else clearTimeout(deadline);
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
        },
      );
      if (deadlineMs !== undefined) {
        deadline = setTimeout(() => {
          const what = response ? "no complete response" : "no response head";
          const err = Object.assign(new Error(`${what} from ${u.host} within ${deadlineMs} ms`), {
            code: "ETIMEDOUT",
          });
          if (response) response.destroy(err);
          else req.destroy(err);
        }, deadlineMs).unref();
        req.once("error", () => clearTimeout(deadline));
      }
      req.on("timeout", () =>
        req.destroy(Object.assign(new Error(`no data from ${u.host} for ${idle} ms`), { code: "ETIMEDOUT" })),
      );
      req.on("error", reject);
      req.end();
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
