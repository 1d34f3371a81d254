/**
 * A misbehaving Envoy API and media host on loopback, for the hostile-source suite: each test says how the list,
 * the recording metadata and the media answer (endless bodies, error pages, a byte a second, listings that never
 * end, secrets echoed back), and the server counts what it was asked and what it sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { collect, type CliResult, type Rig } from "./env.js";
import { drainedOrClosed } from "../../simulator/server.js";

export const HOSTILE_KEY = "envai_live_h0stile_k3y_do_not_leak";

/** An answer from the API: a status, headers and a JSON body (or raw text). */
export interface ApiAnswer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

export interface HostileHandlers {
  /** GET /calls?page=N (`q`: the whole query). Default: one page, the calls in `calls`, has_next false. */
  list?: (page: number, q: URLSearchParams) => ApiAnswer;
  /** GET /calls/{id}/recording; `n` counts this call's metadata requests from 1. */
  recording?: (id: string, n: number) => ApiAnswer;
  /** GET /media/{name}: the test writes the answer itself. */
  media?: (name: string, req: IncomingMessage, res: ServerResponse, n: number) => unknown;
}

export interface MediaRequest {
  name: string;
  startedAt: number;
  closedAt: number | null;
  bytesSent: number;
}

export interface HostileServer {
  apiUrl: string;
  baseUrl: string;
  /** A media URL on this server, signed the way a real host signs it (the signature must never be stored). */
  mediaUrl(name: string): string;
  /** The signature put in every media URL. */
  signature: string;
  set(h: HostileHandlers): void;
  stats: { list: number; recording: Record<string, number>; media: MediaRequest[] };
  reset(): void;
  close(): Promise<void>;
}

export async function startHostile(): Promise<HostileServer> {
  let handlers: HostileHandlers = {};
  const signature = `SIG${randomUUID().replace(/-/g, "")}`;
  const stats: HostileServer["stats"] = { list: 0, recording: {}, media: [] };
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  const answer = (res: ServerResponse, a: ApiAnswer) => {
    const text = typeof a.body === "string" ? a.body : JSON.stringify(a.body);
    res.writeHead(a.status ?? 200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...a.headers,
    });
    res.end(text);
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://h");
    if (url.pathname.startsWith("/api/v1/") && req.headers["x-api-key"] !== HOSTILE_KEY)
      return answer(res, { status: 401, body: { error: { code: "not_authenticated", message: "no" } } });
    if (url.pathname === "/api/v1/calls") {
      stats.list++;
      const page = Number(url.searchParams.get("page") ?? "1");
      return answer(res, handlers.list?.(page, url.searchParams) ?? { body: page1([]) });
    }
    const rec = /^\/api\/v1\/calls\/([^/]+)\/recording$/.exec(url.pathname);
    if (rec) {
      const id = decodeURIComponent(rec[1]!);
      const n = (stats.recording[id] = (stats.recording[id] ?? 0) + 1);
      return answer(
        res,
        handlers.recording?.(id, n) ?? { status: 404, body: { error: { code: "not_found" } } },
      );
    }
    if (url.pathname.startsWith("/media/")) {
      const name = url.pathname.slice("/media/".length);
      const entry: MediaRequest = { name, startedAt: Date.now(), closedAt: null, bytesSent: 0 };
      stats.media.push(entry);
      const n = stats.media.filter((m) => m.name === name).length;
      const write = res.write.bind(res) as (chunk: Buffer | string, cb?: () => void) => boolean;
      res.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
        entry.bytesSent += Buffer.byteLength(chunk);
        return write(chunk, ...(rest as [])) as boolean;
      }) as typeof res.write;
      res.on("close", () => (entry.closedAt = Date.now()));
      if (!handlers.media) {
        res.writeHead(404);
        return void res.end();
      }
      await handlers.media(name, req, res, n);
      return;
    }
    res.writeHead(404);
    res.end();
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${baseUrl}/api/v1`,
    baseUrl,
    signature,
    mediaUrl: (name) =>
      `${baseUrl}/media/${name}?X-Amz-Credential=AKIAHOSTILE%2F20261124&X-Amz-Signature=${signature}`,
    set(h) {
      handlers = h;
    },
    stats,
    reset() {
      stats.list = 0;
      stats.recording = {};
      stats.media = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A call as Envoy lists it. */
export function hostileCall(extra: Record<string, unknown> = {}): { id: string; call_time: string } {
  return {
    id: `call_${randomUUID()}`,
    call_time: new Date(Date.now() - 3600_000).toISOString(),
    recording_status: "AVAILABLE",
    ...extra,
  } as { id: string; call_time: string };
}

/** A single list page holding `calls`. */
export function page1(calls: unknown[]) {
  return {
    data: calls,
    pagination: { page: 1, page_size: 100, total_count: calls.length, total_pages: 1, has_next: false },
  };
}

/** Recording metadata for a call, with a media URL on the hostile server. */
export function recordingOf(h: HostileServer, id: string, extra: Record<string, unknown> = {}): ApiAnswer {
  return {
    body: {
      call_id: id,
      url: h.mediaUrl(`${id}.m4a`),
      content_type: "audio/mp4",
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      recording_status: "AVAILABLE",
      duration_seconds: 60,
      file_size_bytes: null,
      recording_start_time: new Date(Date.now() - 3600_000).toISOString(),
      ...extra,
    },
  };
}

/** Serve a listing of one call whose recording metadata is `extra` (over recordingOf's) and media `media`. */
export function serveOne(
  h: HostileServer,
  extra: Record<string, unknown>,
  media?: HostileHandlers["media"],
  call = hostileCall(),
): { id: string; call_time: string } {
  h.set({
    list: () => ({ body: page1([call]) }),
    recording: (id) => recordingOf(h, id, extra),
    ...(media ? { media } : {}),
  });
  return call;
}

/** The first bytes of an MP4 (M4A) file: an `ftyp` box. */
export const FTYP = Buffer.from("00000018667479704d344120000000004d34412069736f6d", "hex");

/** `n` bytes that start like an M4A file. */
export function m4aBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  FTYP.copy(b, 0, 0, Math.min(n, FTYP.length));
  return b;
}

/**
 * Write chunks for as long as the client reads (an endless body), with back-pressure, yielding between chunks so
 * that this process (which also runs the S3 server) stays responsive to a client that never stops reading.
 */
export async function endless(res: ServerResponse, chunk: Buffer): Promise<void> {
  // A response whose client went away is not always `destroyed`, and writing to it may keep returning true.
  let closed = false;
  res.once("close", () => (closed = true));
  while (!closed && !res.destroyed) {
    if (!res.write(chunk)) await drainedOrClosed(res);
    await new Promise((r) => setImmediate(r));
  }
}

/** Write `body` at `bytesPerSec`, in small slices. */
export async function trickle(res: ServerResponse, body: Buffer, bytesPerSec: number): Promise<void> {
  const slice = Math.max(1, Math.floor(bytesPerSec / 10));
  const t0 = Date.now();
  let closed = false;
  res.once("close", () => (closed = true));
  for (let sent = 0; sent < body.length && !closed && !res.destroyed;) {
    const n = Math.min(slice, body.length - sent);
    res.write(body.subarray(sent, sent + n));
    sent += n;
    const wait = t0 + (sent / bytesPerSec) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (!closed && !res.destroyed) res.end();
}

export interface BoundedResult extends CliResult {
  ms: number;
  /** The CLI did not exit in time and was killed. */
  killed: boolean;
  /** Milliseconds from the first byte on stdout (the summary) to the exit. */
  exitAfterSummaryMs: number | null;
}

/** Run the CLI against the hostile API; kill it (and say so) if it runs longer than `limitMs`. */
export async function runBounded(
  rig: Rig,
  h: HostileServer,
  args: string[],
  env: Record<string, string>,
  limitMs: number,
): Promise<BoundedResult> {
  const t0 = Date.now();
  const child = rig.spawn(args, { ENVOY_API_URL: h.apiUrl, ENVOY_API_KEY: HOSTILE_KEY, ...env });
  let killed = false;
  let summaryAt: number | null = null;
  child.stdout?.once("data", () => (summaryAt = Date.now()));
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, limitMs);

  const r = await collect(child);
  clearTimeout(timer);
  const end = Date.now();
  return { ...r, ms: end - t0, killed, exitAfterSummaryMs: summaryAt === null ? null : end - summaryAt };
}
