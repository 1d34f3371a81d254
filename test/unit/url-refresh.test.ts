/**
 * URL refresh: `needsRefresh` decides when a media URL is too old to use; `refreshingOpener` asks for a fresh one
 * before it expires and after the media host refuses it, at most `maxRefreshes` times for a recording. The media
 * host is a real one on loopback (real MediaFetcher, real HTTP); the API's side is the test's `refresh`, which
 * mints a URL the host accepts. Expiry is judged by the injected clock.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { needsRefresh, refreshingOpener } from "../../src/envoy/url-refresh.js";
import { MediaFetcher } from "../../src/envoy/media.js";
import type { Recording } from "../../src/envoy/envoy-client.js";
import type { MediaLimits } from "../../src/base/config.js";
import { ArchiverError } from "../../src/base/errors.js";
import { FakeClock } from "../helpers/fake-clock.js";

test("URLs are refreshed when expired or too close to expiry for the transfer", () => {
  const now = Date.parse("2026-11-24T12:00:00Z");
  assert.equal(needsRefresh(null, 1000, now), false, "no expiry: trust it");
  assert.equal(needsRefresh("garbage", 1000, now), false);
  assert.equal(needsRefresh("2026-11-24T11:59:00Z", 1000, now), true, "expired");
  assert.equal(needsRefresh("2026-11-24T12:00:30Z", 1000, now), true, "within the base margin");
  assert.equal(needsRefresh("2026-11-24T12:15:00Z", 1000, now), false, "15 minutes left for a small file");
  assert.equal(
    needsRefresh("2026-11-24T12:05:00Z", 2 * 1024 ** 3, now),
    true,
    "2 GiB will not make it in 5 minutes",
  );
});

const FTYP = Buffer.from("00000018667479704d344120000000004d34412069736f6d", "hex");
const BODY = Buffer.concat([FTYP, randomBytes(4000)]);
const HOUR = 3_600_000;
const LIMITS: MediaLimits = {
  maxBodyBytes: 1 << 20,
  allowedTypes: ["audio/*"],
  checkMp4: true,
  minBytesPerSec: 0,
  graceMs: 60_000,
};

/**
 * A media host on loopback: GET /media/{token} serves BODY (from a Range's start) for a token in `valid` and
 * answers `refusal` (403 unless set) for any other; `status` overrides both; `total` announces a recording of
 * that size. Every request is counted.
 */
async function mediaHost(t: { after: (fn: () => unknown) => void }) {
  const host = {
    valid: new Set<string>(),
    refusal: 403,
    status: undefined as number | undefined,
    total: undefined as number | undefined,
    requests: [] as { token: string; range: string | undefined }[],
    url: (token: string) => `http://127.0.0.1:${port}/media/${token}`,
  };
  const server = createServer((req, res) => {
    const token = decodeURIComponent((req.url ?? "").replace(/^\/media\//, ""));
    host.requests.push({ token, range: req.headers.range });
    const status = host.status ?? (host.valid.has(token) ? 200 : host.refusal);
    if (status !== 200)
      return res.writeHead(status, { "content-type": "text/plain" }).end("Request has expired");
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
    // A long recording (`total` set) is announced in full, but only its first 100 bytes are sent.
    const total = host.total ?? BODY.length;
    const body = host.total === undefined ? BODY.subarray(start) : BODY.subarray(0, 100);
    const headers: Record<string, string | number> = { "content-type": "audio/mp4" };
    if (host.total === undefined) headers["content-length"] = body.length;
    if (start > 0) headers["content-range"] = `bytes ${start}-${total - 1}/${total}`;
    res.writeHead(start > 0 ? 206 : 200, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const media = new MediaFetcher({
    policy: { allowInsecure: true },
    userAgent: "url-refresh-test",
    limits: LIMITS,
  });
  t.after(async () => {
    await media.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { host, media };
}

type Host = Awaited<ReturnType<typeof mediaHost>>["host"];

/** The API's side: recordings whose URLs the host accepts (or not), expiring when told, counted. */
function api(host: Host, clock: FakeClock) {
  let n = 0;
  const api = {
    refreshes: 0,
    /** A recording with a fresh token, expiring `ttlMs` after the clock's now; `accepted`: the host takes it. */
    recording(ttlMs: number, accepted = true): Recording {
      const token = `t${n++}`;
      if (accepted) host.valid.add(token);
      return {
        call_id: "c1",
        url: host.url(token),
        content_type: "audio/mp4",
        expires_at: new Date(clock.now() + ttlMs).toISOString(),
        file_size_bytes: host.total ?? BODY.length,
      };
    },
    /** What `refresh` hands out: by default a good URL for an hour. */
    next: (): Recording => api.recording(HOUR),
    refresh: () => {
      api.refreshes++;
      return Promise.resolve(api.next());
    },
  };
  return api;
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

function opener(
  media: MediaFetcher,
  a: ReturnType<typeof api>,
  clock: FakeClock,
  initial: Recording,
  maxRefreshes = 3,
) {
  const reasons: string[] = [];
  const o = refreshingOpener({
    initial,
    refresh: a.refresh,
    media,
    maxRefreshes,
    limits: LIMITS,
    now: clock.now,
    onRefresh: (r) => reasons.push(r),
  });
  return { ...o, reasons };
}

const tokens = (host: Host) => host.requests.map((r) => r.token);

test("a URL fit for use is used as it is: no refresh", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  const o = opener(media, a, clock, a.recording(HOUR));
  assert.deepEqual(await readAll((await o.open(0)).body), BODY);
  assert.deepEqual(o.reasons, []);
  assert.equal(a.refreshes, 0);
  assert.deepEqual(tokens(host), ["t0"]);
});

test("an expired URL, or one expiring within the margin, is refreshed before it is used", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  for (const ttl of [-1000, 30_000]) {
    host.requests.length = 0;
    const o = opener(media, a, clock, a.recording(ttl, false));
    const opened = await o.open(0);
    assert.deepEqual(await readAll(opened.body), BODY);
    assert.deepEqual(o.reasons, ["URL expires too soon"], `ttl ${ttl}`);
    assert.equal(tokens(host).length, 1, "the stale URL was never asked for");
    assert.equal(o.current().url, host.url(tokens(host)[0]!), "current() is the fresh recording");
  }
});

test("expiry is judged by the injected clock (the API's), not this machine's", async (t) => {
  const { host, media } = await mediaHost(t);
  // Long ago by the injected clock: a URL that expired years ago by the wall clock is still good for an hour.
  const past = new FakeClock(Date.parse("2020-01-01T00:00:00Z"));
  const a = api(host, past);
  const o = opener(media, a, past, a.recording(HOUR));
  assert.deepEqual(await readAll((await o.open(0)).body), BODY);
  assert.equal(a.refreshes, 0);
  // Far ahead: a URL the wall clock thinks has years left expired by the injected clock.
  const future = new FakeClock(Date.parse("2040-01-01T00:00:00Z"));
  const b = api(host, future);
  const stale = b.recording(HOUR);
  future.advance(2 * HOUR);
  const p = opener(media, b, future, stale);
  await readAll((await p.open(0)).body);
  assert.deepEqual(p.reasons, ["URL expires too soon"]);
});

test("the bytes still to read decide: minutes left are too few for 2 GiB, enough for its last kilobyte", async (t) => {
  const { host, media } = await mediaHost(t);
  host.total = 2 * 1024 ** 3;
  const clock = new FakeClock();
  const a = api(host, clock);
  const whole = opener(media, a, clock, a.recording(10 * 60_000));
  await readAll((await whole.open(0)).body);
  assert.deepEqual(whole.reasons, ["URL expires too soon"]);
  const tail = opener(media, a, clock, a.recording(10 * 60_000));
  await readAll((await tail.open(host.total - 1000)).body);
  assert.deepEqual(tail.reasons, []);
  assert.equal(a.refreshes, 1);
});

test("a URL the media host refuses (401, 403, 410) is refreshed and the fresh one used", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  for (const status of [401, 403, 410]) {
    host.refusal = status;
    host.requests.length = 0;
    const a = api(host, clock);
    const o = opener(media, a, clock, a.recording(HOUR, false));
    assert.deepEqual(await readAll((await o.open(0)).body), BODY);
    assert.equal(a.refreshes, 1);
    assert.equal(o.reasons.length, 1);
    assert.match(o.reasons[0]!, new RegExp(`answered ${status}`));
    assert.equal(tokens(host).length, 2, "the refused URL, then the fresh one");
    assert.notEqual(tokens(host)[0], tokens(host)[1]);
  }
});

test("a resumed transfer refreshes too, and asks the fresh URL for the same range", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  const o = opener(media, a, clock, a.recording(HOUR));
  await readAll((await o.open(0)).body);
  clock.advance(2 * HOUR); // the URL expired mid-recording
  const rest = await o.open(1000);
  assert.deepEqual(await readAll(rest.body), BODY.subarray(1000));
  assert.equal(a.refreshes, 1);
  assert.deepEqual(
    host.requests.map((r) => r.range),
    [undefined, "bytes=1000-"],
  );
});

test("refused after every refresh: url_refresh_exhausted (permanent) after exactly maxRefreshes", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  a.next = () => a.recording(HOUR, false); // the host never takes one
  const o = opener(media, a, clock, a.recording(HOUR, false), 2);
  await assert.rejects(o.open(0), (e: unknown) => {
    assert.ok(e instanceof ArchiverError);
    assert.equal(e.kind, "permanent");
    assert.equal(e.code, "url_refresh_exhausted");
    assert.match(e.message, /still refused after 2 refreshes \(media .* answered 403/);
    return true;
  });
  assert.equal(a.refreshes, 2);
  assert.equal(host.requests.length, 3, "the first URL and the two fresh ones");
});

test("URLs that come back expired (and refused): exhausted, and no URL known to be stale is asked for", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  a.next = () => a.recording(-1000, false);
  const o = opener(media, a, clock, a.recording(-1000, false), 3);
  await assert.rejects(o.open(0), (e: unknown) => {
    assert.ok(e instanceof ArchiverError);
    assert.equal(e.code, "url_refresh_exhausted");
    assert.match(e.message, /still refused after 3 refreshes/);
    return true;
  });
  assert.equal(a.refreshes, 3);
  // A fresh URL is tried even when it looks expired (the host decides); the initial, stale one never is.
  assert.ok(!tokens(host).includes("t0"), tokens(host).join());
  assert.ok(host.requests.length > 0 && host.requests.length <= a.refreshes);
});

test("maxRefreshes is for the whole recording, not for each open", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  const o = opener(media, a, clock, a.recording(-1000), 2);
  await readAll((await o.open(0)).body); // refresh 1
  clock.advance(2 * HOUR);
  await readAll((await o.open(100)).body); // refresh 2
  clock.advance(2 * HOUR);
  await assert.rejects(
    o.open(200),
    (e: unknown) => e instanceof ArchiverError && e.code === "url_refresh_exhausted",
  );
  assert.equal(a.refreshes, 2);
  assert.equal(o.reasons.length, 2);
});

test("maxRefreshes 0: the first refusal is final", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  const o = opener(media, a, clock, a.recording(HOUR, false), 0);
  await assert.rejects(o.open(0), /still refused after 0 refreshes/);
  assert.equal(a.refreshes, 0);
});

test("other failures are not refreshes: a 5xx stays retryable, a 404 permanent, the URL kept", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  const o = opener(media, a, clock, a.recording(HOUR));
  for (const [status, kind] of [
    [500, "retryable"],
    [404, "permanent"],
  ] as const) {
    host.status = status;
    await assert.rejects(o.open(0), (e: unknown) => e instanceof ArchiverError && e.kind === kind);
  }
  assert.equal(a.refreshes, 0);
  assert.equal(o.current().url, host.url("t0"));
});

test("a refresh that comes back without a URL: recording_gone", async (t) => {
  const { host, media } = await mediaHost(t);
  const clock = new FakeClock();
  const a = api(host, clock);
  a.next = () => ({ ...a.recording(HOUR), url: null });
  const o = opener(media, a, clock, a.recording(HOUR, false));
  await assert.rejects(o.open(0), (e: unknown) => e instanceof ArchiverError && e.code === "recording_gone");
  assert.equal(a.refreshes, 1);
});
