/**
 * The Envoy API client: GET /calls (paged) and GET /calls/{id}/recording. Every request passes the shared
 * RateGate, is retried by the one retry policy, and has its failures classified by the one taxonomy.
 */
import type { Readable } from "node:stream";
import { HttpClient } from "./http.js";
import type { Logger } from "pino";
import { z } from "zod";
import { ArchiverError, classify, classifyHttp } from "../base/errors.js";
import { parseRetryAfter, withRetry, type RetryPolicy } from "../base/retry.js";
import type { RateGate } from "./rate-limit.js";
import type { Window } from "../base/dates.js";
import type { ServerClock } from "../base/clock.js";
import { ListingGuard } from "./listing-guard.js";

/** A call as Envoy lists it. Only `id` is relied on; everything else is kept verbatim for the sidecar. */
export const CallSchema = z.looseObject({
  id: z.string(),
  call_time: z.string().nullish(),
  recording_status: z.string().nullish(),
});
export type Call = z.infer<typeof CallSchema>;

const CallsPageSchema = z.object({
  data: z.array(z.unknown()),
  pagination: z.looseObject({
    page: z.number().int(),
    has_next: z.boolean(),
    total_count: z.number().int().nullish(),
    total_pages: z.number().int().nullish(),
  }),
});

export const RecordingSchema = z.looseObject({
  call_id: z.string(),
  url: z.string().nullish(),
  content_type: z.string().nullish(),
  expires_at: z.string().nullish(),
  recording_status: z.string().nullish(),
  duration_seconds: z.number().nonnegative().nullish(),
  file_size_bytes: z.number().int().nonnegative().nullish(),
  recording_start_time: z.string().nullish(),
});
export type Recording = z.infer<typeof RecordingSchema>;

export interface ListedCall {
  /** The raw call record, as listed (for the sidecar); `call` is its validated view. */
  raw: unknown;
  call: Call | null;
  /** Why the record could not be used, when `call` is null. */
  problem?: string;
}

export interface EnvoyClientOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  token?: string | undefined;
  organizationId?: string | undefined;
  gate: RateGate;
  policy: RetryPolicy;
  logger: Logger;
  userAgent: string;
  signal?: AbortSignal | undefined;
  connections?: number;
  timeoutMs?: number;
  /** A listing with more pages than this stops the run (ARCHIVER_MAX_PAGES). */
  maxPages?: number;
  /** Every HTTP status received, and every retry (metrics). */
  onResponse?: ((status: number) => void) | undefined;
  onRetry?: (() => void) | undefined;
  onRateLimit?: (() => void) | undefined;
  /** Learns the API's time from every answer's Date header (media URL expiry is judged by it). */
  clock?: ServerClock | undefined;
}

export interface ApiStats {
  requests: number;
  byStatus: Record<string, number>;
  rateLimited: number;
  retries: number;
}

/** Bodies bigger than this are not JSON we want (a page of 100 calls is ~100 KB). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
/** A whole API response (head and JSON body), however slowly it trickles in. */
const RESPONSE_DEADLINE_MS = 120_000;

export class EnvoyClient {
  readonly stats: ApiStats = { requests: 0, byStatus: {}, rateLimited: 0, retries: 0 };
  private readonly http: HttpClient;
  private readonly headers: Record<string, string>;
  private readonly base: string;

  constructor(private readonly opts: EnvoyClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.http = new HttpClient({
      maxSockets: opts.connections ?? 16,
      idleTimeoutMs: opts.timeoutMs ?? 60_000,
      deadlineMs: Math.max(RESPONSE_DEADLINE_MS, opts.timeoutMs ?? 0),
      wholeResponse: true,
    });
    this.headers = { accept: "application/json", "user-agent": opts.userAgent };
    if (opts.apiKey) this.headers["x-api-key"] = opts.apiKey;
    else if (opts.token) this.headers["authorization"] = `Bearer ${opts.token}`;
    if (opts.organizationId) this.headers["x-organization-id"] = opts.organizationId;
  }

  close(): Promise<void> {
    this.http.close();
    return Promise.resolve();
  }

  /** GET /calls, one page. */
  async listCalls(q: { page: number; pageSize: number; window: Window; status?: string | undefined }) {
    const params = new URLSearchParams({ page: String(q.page), page_size: String(q.pageSize) });
    if (q.window.startDate) params.set("start_date", q.window.startDate);
    params.set("end_date", q.window.endDate);
    if (q.status) params.set("status", q.status);
    const { body } = await this.getJson(`/calls?${params.toString()}`, "list calls");
    const parsed = CallsPageSchema.safeParse(body);
    if (!parsed.success) {
      throw new ArchiverError(
        "retryable",
        "malformed_response",
        `GET /calls page ${q.page}: unexpected response shape (${z.prettifyError(parsed.error)})`,
      );
    }
    const calls: ListedCall[] = parsed.data.data.map((raw) => {
      const c = CallSchema.safeParse(raw);
      return c.success ? { raw, call: c.data } : { raw, call: null, problem: z.prettifyError(c.error) };
    });
    return {
      calls,
      hasNext: parsed.data.pagination.has_next,
      totalCount: parsed.data.pagination.total_count ?? null,
      totalPages: parsed.data.pagination.total_pages ?? null,
    };
  }

  /** Page through every call in the window, newest first; a listing that does not end stops (listing-guard.ts). */
  async *iterateCalls(
    window: Window,
    pageSize: number,
    onTotal?: (total: number | null) => void,
  ): AsyncGenerator<ListedCall[]> {
    const guard = new ListingGuard(this.opts.maxPages ?? Number.MAX_SAFE_INTEGER);
    for (let page = 1; ; page++) {
      const res = await this.listCalls({ page, pageSize, window });
      if (page === 1) onTotal?.(res.totalCount);
      yield res.calls;
      const ids = res.calls.map((c) => String((c.raw as { id?: unknown } | null)?.id));
      if (!guard.next(page, ids, res)) return;
    }
  }

  /** GET /calls/{id}/recording; null when Envoy says there is no recording (404). */
  async getRecording(callId: string): Promise<Recording | null> {
    const { status, body } = await this.getJson(
      `/calls/${encodeURIComponent(callId)}/recording`,
      "get recording",
      [404],
    );
    if (status === 404) return null;
    const parsed = RecordingSchema.safeParse(body);
    if (!parsed.success)
      throw new ArchiverError(
        "permanent",
        "malformed_recording",
        `recording metadata for ${callId} is malformed: ${z.prettifyError(parsed.error)}`,
      );
    if (parsed.data.call_id !== callId)
      throw new ArchiverError(
        "permanent",
        "malformed_recording",
        `recording metadata for ${callId} names another call (${parsed.data.call_id.slice(0, 60)})`,
      );
    return parsed.data;
  }

  /** GET a JSON document with retries; `accept` lists non-2xx statuses returned to the caller, not thrown. */
  private getJson(
    path: string,
    what: string,
    accept: number[] = [],
  ): Promise<{ status: number; body: unknown }> {
    const { gate, policy, signal, logger } = this.opts;
    return withRetry(
      async () => {
        await gate.wait(signal);
        this.stats.requests++;
        const res = await this.http.get(this.base + path, this.headers, signal).catch((err: unknown) => {
          throw unreachable(err, what, this.base);
        });
        this.stats.byStatus[res.statusCode] = (this.stats.byStatus[res.statusCode] ?? 0) + 1;
        this.opts.onResponse?.(res.statusCode);
        this.opts.clock?.observe(headerValue(res.headers.date), headerValue(res.headers.age));
        gate.observe({ get: (n) => headerValue(res.headers[n]) });
        const text = await readText(res.body);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          try {
            return { status: res.statusCode, body: JSON.parse(text) as unknown };
          } catch {
            throw new ArchiverError(
              what === "list calls" ? "retryable" : "permanent",
              "malformed_json",
              `${what}: response is not valid JSON (${text.length} bytes)`,
              { status: res.statusCode },
            );
          }
        }
        if (accept.includes(res.statusCode)) return { status: res.statusCode, body: null };
        throw this.httpError(res.statusCode, text, headerValue(res.headers["retry-after"]), what);
      },
      policy,
      {
        signal,
        onRetry: (err, attempt) => {
          this.stats.retries++;
          this.opts.onRetry?.();
          logger.warn(
            { what, attempt, code: err.code, status: err.status },
            `${what}: retrying after ${err.code}`,
          );
        },
        onRateLimit: (_err, delayMs) => {
          this.stats.rateLimited++;
          this.opts.onRateLimit?.();
          gate.pause(delayMs);
          logger.warn({ what, delay_ms: delayMs }, "rate limited by Envoy: pausing all API requests");
        },
      },
    );
  }

  private httpError(
    status: number,
    text: string,
    retryAfter: string | undefined,
    what: string,
  ): ArchiverError {
    const { code, message } = parseErrorBody(text);
    const err = classifyHttp(
      "api",
      status,
      code,
      `${what}: ${status} ${code ?? ""} ${message}`.replace(/\s+/g, " "),
      // An HTTP date is in the API's clock.
      parseRetryAfter(retryAfter, this.opts.clock?.now()),
    );
    if (err.kind === "fatal" && (status === 401 || code === "not_authenticated")) {
      const hint = this.opts.apiKey
        ? "Envoy rejected the API key (401 not_authenticated): check ENVOY_API_KEY."
        : "Envoy rejected the bearer token (401 not_authenticated): JWTs expire after a few hours; use a long-lived organization API key (ENVOY_API_KEY) for batch work.";
      return new ArchiverError("fatal", code ?? "not_authenticated", `${hint} (${message})`, { status });
    }
    if (err.kind === "fatal") {
      return new ArchiverError(
        "fatal",
        code ?? "insufficient_permissions",
        `Envoy refused access (403 ${code ?? ""}): the key lacks permission to read calls/recordings${this.opts.organizationId ? " for ENVOY_ORGANIZATION_ID" : ""}. (${message})`,
        { status },
      );
    }
    return err;
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) {
      body.destroy();
      throw new ArchiverError(
        "permanent",
        "response_too_large",
        `response larger than ${MAX_JSON_BYTES} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Envoy's envelope is {"error": {"code", "message", "param"}}; proxies answer {"detail": ...}, {"message": ...}
 * or plain text. Never throws.
 */
export function parseErrorBody(text: string): { code?: string; message: string } {
  const short = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…` : s);
  try {
    const j = JSON.parse(text) as unknown;
    if (j && typeof j === "object") {
      const o = j as Record<string, unknown>;
      const e = o.error;
      if (e && typeof e === "object") {
        const eo = e as Record<string, unknown>;
        const out: { code?: string; message: string } = {
          message: short(typeof eo.message === "string" ? eo.message : JSON.stringify(eo)),
        };
        if (typeof eo.code === "string") out.code = eo.code;
        return out;
      }
      if (typeof e === "string") return { message: short(e) };
      if (o.detail !== undefined)
        return { message: short(typeof o.detail === "string" ? o.detail : JSON.stringify(o.detail)) };
      if (typeof o.message === "string") return { message: short(o.message) };
    }
  } catch {
    // not JSON: fall through to text
  }
  return { message: short(text.trim() || "(empty body)") };
}

/** A request to the API that got no answer: named as the Envoy API's, with the setting to check. */
function unreachable(err: unknown, what: string, base: string): unknown {
  if (err instanceof ArchiverError || signalled(err)) return err;
  const c = classify(err);
  return new ArchiverError(
    c.kind,
    c.code,
    `Envoy API ${what}: no answer from ${base} (${c.message}): check ENVOY_API_URL and the network`,
    { cause: err },
  );
}

/** An abort (a stop or a timeout we asked for) passes as it is. */
function signalled(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "StopRequested");
}
