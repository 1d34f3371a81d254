/**
 * A recording, fault-injecting pass-through in front of a real S3 server (Ceph RGW in the tests), so the tests
 * that look at what the archiver sent, or make S3 fail, run against a real server too. Requests are forwarded
 * with their headers (Host included) and body unchanged, so the server still checks every SigV4 signature; the
 * answers come back unchanged — unless a test asks it to corrupt a body on the way (a flipped bit: Corruptor).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import {
  Corruptor,
  errorXml,
  FaultPlan,
  type CapturedRequest,
  type CorruptionPlan,
  type S3Faults,
} from "./s3-faults.js";

export interface S3Proxy {
  endpoint: string;
  setFaults(faults: S3Faults): void;
  /** Flip a bit in the bodies of the writes the plan selects (undefined: none); returns what was corrupted. */
  setCorruption(plan: CorruptionPlan | undefined): { corrupted: readonly string[] };
  /** Stop listening and drop every connection: S3 is unreachable until start(). */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startS3Proxy(
  target: string,
  opts: {
    onRequest?: (req: CapturedRequest) => void;
    /** Called with every request and the status the server gave it (given even when the answer is then lost). */
    onResponse?: (req: CapturedRequest, status: number) => void;
  } = {},
): Promise<S3Proxy> {
  const upstream = new URL(target);
  const faults = new FaultPlan();
  const corruptor = new Corruptor();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const captured: CapturedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: queryOf(url.searchParams),
      headers: { ...req.headers },
    };
    opts.onRequest?.(captured);
    const completion = faults.completion(captured.method, captured.path, captured.query);
    const fault = completion ? undefined : faults.next(captured.method, captured.path, captured.headers);
    if (fault === "reset") return void req.socket.destroy();
    // Applied by the server, and then its answer lost (the connection dropped) or withheld (never sent).
    const answer = completion?.answer ?? (fault === "lose-answer" ? "lose" : "send");
    if (fault && fault !== "lose-answer") {
      res.writeHead(fault.status, { "content-type": "application/xml" });
      return void res.end(errorXml(fault.code, fault.message));
    }
    // The body is read whole before it is forwarded: a server may answer (404 NoSuchUpload, 403) before it has
    // read a body and close, and a relay that is still streaming could turn that answer into a reset.
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => req.socket.destroy());
    const forward = async () => {
      await completion?.before?.();
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: withoutExpect(req.rawHeaders),
        },
        (reply) => {
          opts.onResponse?.(captured, reply.statusCode ?? 502);
          if (answer === "lose") return void reply.resume().on("end", () => req.socket.destroy());
          if (answer === "withhold") return void reply.resume();
          res.writeHead(reply.statusCode ?? 502, reply.rawHeaders);
          reply.pipe(res);
        },
      );
      out.on("error", () => req.socket.destroy());
      const body = Buffer.concat(chunks);
      corruptor.apply(captured, body);
      out.end(body);
    };
    req.on("end", () => void forward().catch(() => req.socket.destroy()));
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer(handle);
      s.on("connection", (c: Socket) => {
        sockets.add(c);
        c.on("close", () => sockets.delete(c));
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const c of sockets) c.destroy();
    await closed;
  };

  await listen();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setFaults: (f) => faults.set(f),
    setCorruption: (plan) => {
      corruptor.set(plan);
      return corruptor;
    },
    stop,
    start: listen,
    close: stop,
  };
}

/** Raw header pairs without Expect: 100-continue (this proxy answers it, and forwards whole bodies). */
function withoutExpect(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (raw[i]!.toLowerCase() !== "expect") out.push(raw[i]!, raw[i + 1]!);
  return out;
}

function queryOf(params: URLSearchParams): CapturedRequest["query"] {
  const query: CapturedRequest["query"] = {};
  for (const [k, v] of params) {
    const had = query[k];
    query[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  return query;
}
