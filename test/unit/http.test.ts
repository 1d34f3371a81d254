/** The HTTP client under the Envoy API and media downloads, against loopback servers that misbehave on purpose. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo, LookupFunction } from "node:net";
import { HttpClient } from "../../src/envoy/http.js";
import { classify } from "../../src/base/errors.js";

let server: Server;
let base: string;
const connections = new Set<unknown>();

before(async () => {
  server = createServer((req, res) => {
    switch (req.url) {
      case "/ok":
        res.end("hello");
        return;
      case "/stall-headers":
        return; // never answers
      case "/stall-body":
        res.writeHead(200, { "content-length": "1000" });
        res.write("x".repeat(100)); // then nothing
        return;
      case "/truncated":
        res.writeHead(200, { "content-length": "1000" });
        res.write("x".repeat(500), () => res.socket?.destroy());
        return;
      case "/redirect":
        res.writeHead(302, { location: "/ok" });
        res.end();
        return;
      case "/drip-body": {
        // A byte every 50 ms: never idle long enough for the idle timeout.
        res.writeHead(200, { "content-length": "1000" });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), 50);
        return;
      }
      case "/drip-head": {
        req.socket.write("HTTP/1.1 200 OK\r\n");
        const t = setInterval(
          () => (req.socket.destroyed ? clearInterval(t) : req.socket.write("x-pad: a\r\n")),
          50,
        );
        return;
      }
    }
  });
  server.on("connection", (s) => connections.add(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

async function readAll(body: NodeJS.ReadableStream): Promise<string> {
  let s = "";
  for await (const c of body) s += String(c);
  return s;
}

test("a plain GET, and the connection is kept for the next one", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 2000 });
  const before = connections.size;
  for (let i = 0; i < 3; i++) {
    const res = await http.get(`${base}/ok`, { "user-agent": "t" });
    assert.equal(res.statusCode, 200);
    assert.equal(await readAll(res.body), "hello");
  }
  assert.equal(connections.size - before, 1, "one keep-alive connection for three requests");
  http.close();
});

test("no answer within the idle timeout: a retryable ETIMEDOUT, not a hang", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 300 });
  const t0 = Date.now();
  const err = await http.get(`${base}/stall-headers`, {}).then(
    () => assert.fail("answered"),
    (e: unknown) => e,
  );
  assert.equal(classify(err).kind, "retryable");
  assert.equal(classify(err).code, "ETIMEDOUT");
  assert.ok(Date.now() - t0 < 2000);
  http.close();
});

test("a body that stalls part way fails its reader with a retryable error", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 300 });
  const res = await http.get(`${base}/stall-body`, {});
  const t0 = Date.now();
  const err = await readAll(res.body).then(
    () => assert.fail("a stalled body ended as if complete"),
    (e: unknown) => e,
  );
  assert.equal(classify(err).kind, "retryable", String(err));
  assert.ok(Date.now() - t0 < 2000);
  http.close();
});

test("a body cut short of its Content-Length fails its reader (never a silent short read)", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 2000 });
  const res = await http.get(`${base}/truncated`, {});
  const err = await readAll(res.body).then(
    () => assert.fail("a truncated body ended as if complete"),
    (e: unknown) => e,
  );
  assert.equal(classify(err).kind, "retryable", String(err));
  http.close();
});

test("redirects are not followed", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 2000 });
  const res = await http.get(`${base}/redirect`, {});
  assert.equal(res.statusCode, 302);
  res.body.resume();
  http.close();
});

test("the resolver is consulted for every connection, and its refusal is final", async () => {
  const seen: string[] = [];
  const lookup = ((hostname: string, _o: unknown, cb: (e: Error | null) => void) => {
    seen.push(hostname);
    cb(Object.assign(new Error(`${hostname} refused`), { code: "EURLREFUSED" }));
  }) as unknown as LookupFunction;
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 2000, lookup });
  const port = new URL(base).port;
  const err = await http.get(`http://media.example:${port}/ok`, {}).then(
    () => assert.fail("connected"),
    (e: unknown) => e,
  );
  assert.deepEqual(seen, ["media.example"]);
  assert.equal(classify(err).kind, "permanent");
  assert.equal(classify(err).code, "url_refused");
  http.close();
});

test("an aborted signal cancels the request", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 5000 });
  const ac = new AbortController();
  const p = http.get(`${base}/stall-headers`, {}, ac.signal);
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, (e: unknown) => (e as Error).name === "AbortError");
  http.close();
});

test("a head trickled a line at a time: ETIMEDOUT at the deadline, whatever the idle timeout", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 5000, deadlineMs: 300 });
  const t0 = Date.now();
  const err = await http.get(`${base}/drip-head`, {}).then(
    () => assert.fail("answered"),
    (e: unknown) => e,
  );
  assert.equal(classify(err).code, "ETIMEDOUT");
  assert.match(String(err), /no response head .* within 300 ms/);
  assert.ok(Date.now() - t0 < 2000);
  http.close();
});

test("a body trickled a byte at a time: with wholeResponse, the reader fails at the deadline", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 5000, deadlineMs: 400, wholeResponse: true });
  const t0 = Date.now();
  const res = await http.get(`${base}/drip-body`, {});
  const err = await readAll(res.body).then(
    () => assert.fail("a trickled body ended"),
    (e: unknown) => e,
  );
  assert.equal(classify(err).kind, "retryable", String(err));
  assert.match(String(err), /no complete response .* within 400 ms/);
  assert.ok(Date.now() - t0 < 2000);
  http.close();
});

test("without wholeResponse the deadline ends with the head: a slow body is the reader's business", async () => {
  const http = new HttpClient({ maxSockets: 2, idleTimeoutMs: 5000, deadlineMs: 200 });
  const res = await http.get(`${base}/drip-body`, {});
  let bytes = 0;
  const t0 = Date.now();
  for await (const c of res.body) {
    bytes += (c as Buffer).length;
    if (Date.now() - t0 > 600) break;
  }
  assert.ok(bytes >= 5, `${bytes} bytes read past the deadline`);
  http.close();
});
