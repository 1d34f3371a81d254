/**
 * An Envoy API simulator over real HTTP (node:http), for tests, the demo and benchmarks:
 *   GET /api/v1/calls                      paged, newest first, date-filtered
 *   GET /api/v1/calls/{call_id}/recording  metadata + a signed, time-limited media URL
 *   GET /media/{call_id}.{ext}?expires&sig the media (Range, HEAD), refused once expired
 *   GET /files/ and /files/{file}          the same media as a plain directory listing (for rclone's http remote)
 * with switchable, counted faults and an optional token-bucket rate limit.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createHmac, randomBytes } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import { generateCalls, mediaChunks, rng, type GenerateOptions, type SimCall } from "./data.js";

export interface FaultSpec {
  /** Fail the first N attempts for each call (per endpoint). */
  firstAttempts?: number;
  /** Fail every k-th request (across all calls). */
  every?: number;
  /** Fail with this seeded probability. */
  probability?: number;
}

export interface Faults {
  api429?: FaultSpec & { retryAfterSeconds?: number; httpDate?: boolean };
  api5xx?: FaultSpec & { plainText?: boolean };
  malformedJson?: FaultSpec;
  badCallId?: boolean;
  mediaExpired?: FaultSpec;
  mediaReset?: FaultSpec;
  mediaTruncate?: FaultSpec;
  media5xx?: FaultSpec;
  mediaSlowBytesPerSec?: number;
  sizeMismatch?: FaultSpec;
}

export interface SimulatorOptions {
  host?: string;
  port?: number;
  apiKey?: string;
  token?: string;
  tokenExpiresAfterRequests?: number;
  /** When set, requests naming another X-Organization-ID are refused (403). */
  organizationId?: string;
  calls?: number | GenerateOptions;
  urlTtlSeconds?: number;
  faults?: Faults;
  rateLimit?: { rps: number; burst?: number };
  /** Public base URL for media links (defaults to the listening address). */
  publicBaseUrl?: string;
  /** This server's clock runs this far off the real one (expires_at, URL validity, the Date header). */
  clockOffsetMs?: number;
}

export interface SimStats {
  apiRequests: number;
  apiByStatus: Record<number, number>;
  listRequests: number;
  recordingRequests: number;
  mediaRequests: number;
  mediaBytesSent: number;
  rateLimited: number;
  faultsInjected: Record<string, number>;
  orgHeaders: string[];
  mediaRequestsByCall: Record<string, number>;
  /** The query string of every `GET /calls` answered (what a test counts a run's listing cost by). */
  listQueries: string[];
}

export interface Simulator {
  apiUrl: string;
  baseUrl: string;
  apiKey: string;
  token: string;
  calls: SimCall[];
  stats: SimStats;
  setFaults(f: Faults): void;
  resetStats(): void;
  /**
   * Add calls: by default now (in an incremental run's window); `callTime` places them at an earlier time instead,
   * as a call record created late (an import, a delayed upstream) is: listed from now on under its old day.
   */
  addCalls(n: number, opts?: { ready?: boolean; callTime?: Date }): SimCall[];
  /** Delete calls upstream: no longer listed or counted, their recordings 404. */
  removeCalls(callIds: readonly string[]): void;
  setReady(callId: string, ready: boolean): void;
  close(): Promise<void>;
}

const CALL_ID_RE = /^call_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

function emptyStats(): SimStats {
  return {
    apiRequests: 0,
    apiByStatus: {},
    listRequests: 0,
    recordingRequests: 0,
    mediaRequests: 0,
    mediaBytesSent: 0,
    rateLimited: 0,
    faultsInjected: {},
    orgHeaders: [],
    mediaRequestsByCall: {},
    listQueries: [],
  };
}

/** Resolves once `res` can take more (drain) or is gone (close); leaves no listener behind. */
export function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise<void>((r) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      r();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const apiKey = opts.apiKey ?? "envai_live_simulator_key";
  const token = opts.token ?? "sim-jwt-token";
  const secret = randomBytes(16);
  const ttl = opts.urlTtlSeconds ?? 900;
  const now = () => Date.now() + (opts.clockOffsetMs ?? 0);
  const gen: GenerateOptions = typeof opts.calls === "object" ? opts.calls : { count: opts.calls ?? 50 };
  const calls: SimCall[] = generateCalls(gen);
  const byId = new Map(calls.map((c) => [c.id, c]));
  let sorted: SimCall[] = [];
  const resort = () => {
    sorted = [...calls].sort((a, b) =>
      a.call_time < b.call_time ? 1 : a.call_time > b.call_time ? -1 : a.id < b.id ? -1 : 1,
    );
  };
  resort();
  let faults: Faults = opts.faults ?? {};
  let stats = emptyStats();
  let tokenUses = 0;
  const random = rng((gen.seed ?? 1) * 31 + 7);
  const counters = new Map<string, number>();
  const sockets = new Set<Socket>();

  // Token bucket over API requests.
  const rl = opts.rateLimit;
  let tokens = rl ? (rl.burst ?? Math.max(1, Math.ceil(rl.rps))) : 0;
  let refilledAt = Date.now();
  const takeToken = (): { ok: boolean; remaining: number; resetS: number } => {
    if (!rl) return { ok: true, remaining: 0, resetS: 0 };
    const cap = rl.burst ?? Math.max(1, Math.ceil(rl.rps));
    const now = Date.now();
    tokens = Math.min(cap, tokens + ((now - refilledAt) / 1000) * rl.rps);
    refilledAt = now;
    if (tokens >= 1) {
      tokens -= 1;
      return { ok: true, remaining: Math.floor(tokens), resetS: Math.ceil((1 - (tokens % 1)) / rl.rps) };
    }
    return { ok: false, remaining: 0, resetS: Math.max(1, Math.ceil((1 - tokens) / rl.rps)) };
  };

  /** Decide whether a fault fires for this request; counts it when it does. */
  const fires = (name: keyof Faults, spec: FaultSpec | undefined, key: string): boolean => {
    if (!spec) return false;
    const total = (counters.get(name) ?? 0) + 1;
    counters.set(name, total);
    const perKey = (counters.get(`${name}:${key}`) ?? 0) + 1;
    counters.set(`${name}:${key}`, perKey);
    const hit =
      (spec.firstAttempts !== undefined && perKey <= spec.firstAttempts) ||
      (spec.every !== undefined && spec.every > 0 && total % spec.every === 0) ||
      (spec.probability !== undefined && random() < spec.probability);
    if (hit) stats.faultsInjected[name] = (stats.faultsInjected[name] ?? 0) + 1;
    return hit;
  };

  const sign = (path: string, expires: number) =>
    createHmac("sha256", secret).update(`${path}:${expires}`).digest("hex");

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, envelope("internal_error", String(err)));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  let baseUrl = "";

  function envelope(code: string, message: string, param: string | null = null) {
    return { error: { code, message, param } };
  }

  function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      date: new Date(now()).toUTCString(),
      ...headers,
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const path = url.pathname;
    if (path.startsWith("/api/v1/")) return api(req, res, url);
    if (path.startsWith("/media/")) return media(req, res, url, true);
    if (path === "/files" || path === "/files/") return listing(res);
    if (path.startsWith("/files/")) return media(req, res, url, false);
    json(res, 404, envelope("not_found", "no such route"));
  }

  function api(req: IncomingMessage, res: ServerResponse, url: URL): void {
    stats.apiRequests++;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      stats.apiByStatus[status] = (stats.apiByStatus[status] ?? 0) + 1;
      json(res, status, body, { ...rlHeaders, ...headers });
    };
    let rlHeaders: Record<string, string> = {};
    if (rl) {
      const t = takeToken();
      rlHeaders = {
        "x-ratelimit-limit": String(rl.rps),
        "x-ratelimit-remaining": String(t.remaining),
        "x-ratelimit-reset": String(t.resetS),
      };
      if (!t.ok) {
        stats.rateLimited++;
        return send(429, envelope("rate_limit_exceeded", "Rate limit exceeded"), {
          "retry-after": String(t.resetS),
        });
      }
    }
    const org = req.headers["x-organization-id"];
    if (typeof org === "string" && !stats.orgHeaders.includes(org)) stats.orgHeaders.push(org);
    const key = req.headers["x-api-key"];
    const auth = req.headers["authorization"];
    let authed = key === apiKey;
    if (!authed && auth === `Bearer ${token}`) {
      tokenUses++;
      authed = opts.tokenExpiresAfterRequests === undefined || tokenUses <= opts.tokenExpiresAfterRequests;
    }
    if (!authed) return send(401, envelope("not_authenticated", "Invalid or expired credentials"));
    if (opts.organizationId && typeof org === "string" && org !== opts.organizationId)
      return send(403, envelope("insufficient_permissions", "Not a member of this organization"));

    const m = /^\/api\/v1\/calls(?:\/([^/]+)\/recording)?$/.exec(url.pathname);
    if (!m) return send(404, envelope("not_found", "Not found"));
    const faultKey = m[1] ?? `list:${url.search}`;
    const f429 = faults.api429;
    if (fires("api429", f429, faultKey)) {
      stats.rateLimited++;
      const secs = f429?.retryAfterSeconds ?? 1;
      const retryAfter = f429?.httpDate ? new Date(now() + secs * 1000).toUTCString() : String(secs);
      return send(429, envelope("rate_limit_exceeded", "Rate limit exceeded"), { "retry-after": retryAfter });
    }
    if (fires("api5xx", faults.api5xx, faultKey)) {
      if (faults.api5xx?.plainText) {
        stats.apiByStatus[502] = (stats.apiByStatus[502] ?? 0) + 1;
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("Bad Gateway");
        return;
      }
      return send(500, envelope("internal_error", "Internal server error"));
    }
    if (m[1] === undefined) {
      stats.listRequests++;
      stats.listQueries.push(url.search.replace(/^\?/, ""));
      return list(url, send);
    }
    stats.recordingRequests++;
    return recording(decodeURIComponent(m[1]), send, res);
  }

  function list(url: URL, send: (s: number, b: unknown) => void): void {
    const q = url.searchParams;
    const page = Number(q.get("page") ?? "1");
    const pageSize = Number(q.get("page_size") ?? "20");
    if (!Number.isInteger(page) || page < 1)
      return send(422, envelope("validation_error", "page must be >= 1", "page"));
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100)
      return send(422, envelope("validation_error", "page_size must be between 1 and 100", "page_size"));
    const start = q.get("start_date");
    const end = q.get("end_date");
    for (const [name, v] of [
      ["start_date", start],
      ["end_date", end],
    ] as const)
      if (v !== null && !DAY_RE.test(v))
        return send(422, envelope("validation_error", `${name} must be YYYY-MM-DD`, name));
    const status = q.get("status");
    const matching = sorted.filter((c) => {
      const day = c.call_time.slice(0, 10);
      return (!start || day >= start) && (!end || day <= end) && (!status || c.status === status);
    });
    const totalPages = Math.max(1, Math.ceil(matching.length / pageSize));
    const data: unknown[] = matching.slice((page - 1) * pageSize, page * pageSize).map(publicCall);
    if (faults.badCallId && page === 1 && data.length > 0) {
      stats.faultsInjected.badCallId = (stats.faultsInjected.badCallId ?? 0) + 1;
      data.unshift({ ...(data[0] as object), id: "call_../../../etc/passwd" });
    }
    send(200, {
      data,
      pagination: {
        page,
        page_size: pageSize,
        total_count: matching.length,
        total_pages: totalPages,
        has_next: page < totalPages,
        has_prev: page > 1,
      },
    });
  }

  function publicCall(c: SimCall): Omit<SimCall, "recording"> {
    const { recording: _r, ...rest } = c;
    return rest;
  }

  function recording(id: string, send: (s: number, b: unknown) => void, res: ServerResponse): void {
    if (!CALL_ID_RE.test(id))
      return send(400, envelope("invalid_id_format", "call_id must be call_<uuid>", "call_id"));
    const c = byId.get(id);
    if (!c || !c.recording.hasRecording) return send(404, envelope("not_found", "Recording not found"));
    if (fires("malformedJson", faults.malformedJson, id)) {
      stats.apiByStatus[200] = (stats.apiByStatus[200] ?? 0) + 1;
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"call_id": "' + id + '", "url": "htt');
      return;
    }
    const r = c.recording;
    const ext = r.content_type === "video/mp4" ? "mp4" : "m4a";
    const expires = Math.floor(now() / 1000) + ttl;
    const mediaPath = `/media/${id}.${ext}`;
    const size = fires("sizeMismatch", faults.sizeMismatch, id) ? r.size + 1000 : r.reportedSize;
    send(200, {
      call_id: id,
      url: r.ready
        ? `${opts.publicBaseUrl ?? baseUrl}${mediaPath}?expires=${expires}&sig=${sign(mediaPath, expires)}`
        : null,
      content_type: r.content_type,
      expires_at: new Date(expires * 1000).toISOString(),
      recording_status: r.ready ? "AVAILABLE" : "PROCESSING",
      duration_seconds: r.duration_seconds,
      file_size_bytes: r.ready ? size : null,
      recording_start_time: r.recording_start_time,
    });
  }

  function listing(res: ServerResponse): void {
    const rows = sorted
      .filter((c) => c.recording.hasRecording && c.recording.ready)
      .map((c) => {
        const f = `${c.id}.${c.recording.content_type === "video/mp4" ? "mp4" : "m4a"}`;
        return `<a href="${f}">${f}</a>${" ".repeat(4)}${new Date(c.call_time).toUTCString()}    ${c.recording.size}`;
      });
    const html = `<html><head><title>Index of /files/</title></head><body><h1>Index of /files/</h1><hr><pre>\n${rows.join("\n")}\n</pre><hr></body></html>\n`;
    res.writeHead(200, { "content-type": "text/html", "content-length": Buffer.byteLength(html) });
    res.end(html);
  }

  function media(req: IncomingMessage, res: ServerResponse, url: URL, signed: boolean): void {
    stats.mediaRequests++;
    const m = /^\/(?:media|files)\/(call_[0-9a-f-]+)\.(m4a|mp4)$/.exec(url.pathname);
    const c = m ? byId.get(m[1]!) : undefined;
    if (!m || !c || !c.recording.ready) {
      res.writeHead(404, { "content-type": "application/xml" });
      res.end("<Error><Code>NoSuchKey</Code></Error>");
      return;
    }
    stats.mediaRequestsByCall[c.id] = (stats.mediaRequestsByCall[c.id] ?? 0) + 1;
    if (signed) {
      const expires = Number(url.searchParams.get("expires"));
      const sig = url.searchParams.get("sig") ?? "";
      const valid = sig === sign(url.pathname, expires) && expires * 1000 > now();
      if (!valid || fires("mediaExpired", faults.mediaExpired, c.id)) {
        res.writeHead(403, { "content-type": "application/xml" });
        res.end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
        return;
      }
    }
    if (fires("media5xx", faults.media5xx, c.id)) {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "0" });
      res.end("Service Unavailable");
      return;
    }
    const size = c.recording.size;
    let start = 0;
    let end = size; // exclusive
    let status = 200;
    const headers: Record<string, string> = {
      "content-type": c.recording.content_type,
      "accept-ranges": "bytes",
      "last-modified": new Date(c.call_time).toUTCString(),
      etag: `"${c.recording.mediaSeed.toString(16)}"`,
    };
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    if (range && (range[1] || range[2])) {
      if (range[1]) {
        start = Number(range[1]);
        end = range[2] ? Math.min(size, Number(range[2]) + 1) : size;
      } else {
        start = Math.max(0, size - Number(range[2]));
      }
      if (start >= size || start >= end) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${end - 1}/${size}`;
    }
    headers["content-length"] = String(end - start);
    res.writeHead(status, headers);
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const reset = fires("mediaReset", faults.mediaReset, c.id);
    const truncate = !reset && fires("mediaTruncate", faults.mediaTruncate, c.id);
    const stopAt = reset || truncate ? start + Math.floor((end - start) / 2) : end;
    void pump(res, mediaChunks(c.recording, start, stopAt), faults.mediaSlowBytesPerSec).then(() => {
      if (reset) res.socket?.destroy();
      else if (truncate) res.socket?.end();
      else res.end();
    });
  }

  /** Write chunks with back-pressure, optionally throttled. */
  async function pump(res: ServerResponse, chunks: Iterable<Buffer>, bytesPerSec?: number): Promise<void> {
    const t0 = Date.now();
    let sent = 0;
    for (const chunk of chunks) {
      if (res.destroyed) return;
      sent += chunk.length;
      stats.mediaBytesSent += chunk.length;
      if (!res.write(chunk)) await drainedOrClosed(res);
      if (bytesPerSec) {
        const due = t0 + (sent / bytesPerSec) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve));
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  baseUrl = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${addr.port}`;

  return {
    apiUrl: `${baseUrl}/api/v1`,
    baseUrl,
    apiKey,
    token,
    calls,
    get stats() {
      return stats;
    },
    setFaults(f: Faults) {
      faults = f;
      counters.clear();
    },
    resetStats() {
      stats = emptyStats();
    },
    addCalls(n: number, o: { ready?: boolean; callTime?: Date } = {}) {
      const added = generateCalls({ ...gen, count: n, now: new Date() }, calls.length);
      const created = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const at = (o.callTime ?? new Date()).getTime();
      added.forEach((c, i) => {
        // New calls are recent (they land in an incremental run's window), or at the time asked for.
        c.call_time = new Date(at - (n - i) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
        c.call_start_time = c.call_time;
        // The record is created now, whatever time the call was at (the window filters on call_time).
        c.created_at = created;
        c.updated_at = created;
        c.recording.recording_start_time = c.call_time;
        c.recording.hasRecording = true;
        c.recording.ready = o.ready ?? true;
        c.recording_status = c.recording.ready ? "AVAILABLE" : "PROCESSING";
        calls.push(c);
        byId.set(c.id, c);
      });
      resort();
      return added;
    },
    removeCalls(callIds: readonly string[]) {
      for (const id of callIds) {
        if (!byId.delete(id)) throw new Error(`no call ${id}`);
        calls.splice(
          calls.findIndex((c) => c.id === id),
          1,
        );
      }
      resort();
    },
    setReady(callId: string, ready: boolean) {
      const c = byId.get(callId);
      if (!c) throw new Error(`no call ${callId}`);
      c.recording.ready = ready;
      c.recording_status = ready ? "AVAILABLE" : "PROCESSING";
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  } satisfies Simulator as Simulator;
}
