/**
 * Hostile sources: the built CLI against an Envoy API and media host that misbehave on purpose (test/helpers/
 * hostile.ts) and a real S3 server. Every case must end in bounded time, store nothing it should not, and leak
 * neither the API key nor a media URL's signature into anything printed or stored.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CLI,
  collect,
  logsOf,
  sha256,
  startRig,
  summaryOf,
  type CliResult,
  type Rig,
} from "../helpers/env.js";
import {
  endless,
  serveOne,
  HOSTILE_KEY,
  hostileCall,
  m4aBytes,
  page1,
  recordingOf,
  runBounded,
  startHostile,
  trickle,
  type BoundedResult,
  type HostileServer,
} from "../helpers/hostile.js";

const MiB = 1024 * 1024;
let rig: Rig;
let h: HostileServer;

/** What each case did, printed when the suite ends (the figures of the issue's closing note). */
const figures: string[] = [];
const note = (name: string, r: BoundedResult, extra: string) =>
  figures.push(`${name}: exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s; ${extra}`);

before(async () => {
  rig = await startRig({ calls: 0 });
  h = await startHostile();
});
after(async () => {
  console.log(`# hostile-source figures:\n${figures.map((f) => `#   ${f}`).join("\n")}`);
  await h.close();
  await rig.close();
});
beforeEach(() => {
  h.reset();
  h.set({});
});

/** Each test has its own state DB and key prefix, so "nothing stored" is about that test alone. */
function envFor(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ARCHIVER_DB_PATH: join(rig.dir, `${name}.db`),
    ARCHIVER_S3_PREFIX: `${name}/`,
    ARCHIVER_MAX_RETRIES: "1",
    ...extra,
  };
}

function db<T>(name: string, fn: (d: Database.Database) => T): T {
  const d = new Database(join(rig.dir, `${name}.db`), { readonly: true });
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

interface CallState {
  status: string;
  error_kind: string | null;
  last_error: string | null;
  call_json: string;
  content_type: string | null;
}
const rowOf = (name: string, id: string) =>
  db(name, (d) => d.prepare("SELECT * FROM calls WHERE call_id = ?").get(id) as CallState);

/** Neither the API key nor a media signature in anything the CLI printed. */
function assertNoLeak(r: CliResult, what = "output"): void {
  for (const [label, text] of [
    ["stdout", r.stdout],
    ["stderr", r.stderr],
  ] as const) {
    assert.ok(!text.includes(HOSTILE_KEY), `API key leaked into ${what} ${label}`);
    assert.ok(!text.includes(h.signature), `media signature leaked into ${what} ${label}`);
  }
}

/** The CLI against the hostile API, killed after `limitMs`; nothing it prints may hold the key or a signature. */
async function cli(args: string[], env: Record<string, string> = {}, limitMs = 30_000) {
  const r = await runBounded(rig, h, args, env, limitMs);
  assertNoLeak(r, args.join(" "));
  return r;
}

/** Finished by itself, within `ms`. */
function assertBounded(r: BoundedResult, ms: number): void {
  const seen = `${h.stats.list} list requests, ${Object.values(h.stats.recording).reduce((a, b) => a + b, 0)} metadata requests, media bytes sent ${JSON.stringify(h.stats.media.map((m) => m.bytesSent))}`;
  assert.ok(
    !r.killed,
    `still running after ${r.ms} ms: killed (${seen}; stderr tail: ${r.stderr.slice(-600)})`,
  );
  assert.ok(r.ms < ms, `took ${r.ms} ms, more than ${ms} (${seen})`);
}

async function assertNothingStored(name: string): Promise<void> {
  assert.deepEqual(await rig.listKeys(`${name}/`), [], "nothing stored");
  assert.equal(await rig.multipartUploads(), 0, "no multipart upload left open");
  assert.equal(
    db(name, (d) => d.prepare("SELECT COUNT(*) FROM uploads").pluck().get()),
    0,
    "no upload tracked",
  );
}

/** The run exited 3 with this recording failed as `kind` for the reason `why`, and nothing stored. */
async function assertFailed(
  name: string,
  r: BoundedResult,
  callId: string,
  kind: "retryable" | "permanent",
  why: RegExp,
): Promise<CallState> {
  assert.equal(r.code, 3, r.stderr);
  const row = rowOf(name, callId);
  assert.equal(row.status, "failed");
  assert.equal(row.error_kind, kind);
  assert.match(row.last_error ?? "", why);
  await assertNothingStored(name);
  return row;
}

const startsLikeM4a = (res: import("node:http").ServerResponse, extra: Record<string, string> = {}) =>
  res.writeHead(200, { "content-type": "audio/mp4", ...extra });

describe("1. byte budgets", () => {
  test("an endless body for a recording of 20,000 bytes stops at the budget: permanent, nothing stored", async () => {
    const call = serveOne(
      h,
      { file_size_bytes: 20_000 },
      (_n, _q, res) => (startsLikeM4a(res), endless(res, m4aBytes(16 * 1024))),
    );
    const r = await cli(["run", "--json"], envFor("endless-sized"), 20_000);
    assertBounded(r, 15_000);
    assert.equal(r.code, 3, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.failed, 1);
    assert.equal(s.archived, 0);
    assert.equal(h.stats.media.length, 1, "a permanent failure: not fetched again");
    const m = h.stats.media[0]!;
    assert.ok(m.closedAt !== null, "the connection was closed");
    assert.ok(m.bytesSent < 8 * MiB, `${m.bytesSent} bytes sent before the archiver hung up`);
    const row = rowOf("endless-sized", call.id);
    assert.equal(row.status, "failed");
    assert.equal(row.error_kind, "permanent");
    assert.match(row.last_error ?? "", /file_size_bytes 20000/);
    const at = Number(/at byte (\d+)/.exec(row.last_error ?? "")?.[1]);
    assert.ok(at > 20_000 && at <= 20_000 + 64 * 1024, `stopped reading at byte ${at}`);
    await assertNothingStored("endless-sized");
    assertNoLeak(r);
    note(
      "1a endless body, file_size_bytes 20000",
      r,
      `stopped at byte ${at}, server sent ${m.bytesSent} bytes; nothing stored; ${row.last_error}`,
    );
  });

  test("an endless body with no size given stops at ARCHIVER_MAX_BODY_MB", async () => {
    const call = serveOne(
      h,
      { file_size_bytes: null },
      (_n, _q, res) => (startsLikeM4a(res), endless(res, m4aBytes(64 * 1024))),
    );
    const r = await cli(["run", "--json"], envFor("endless-unsized", { ARCHIVER_MAX_BODY_MB: "1" }), 20_000);
    assertBounded(r, 15_000);
    const row = await assertFailed("endless-unsized", r, call.id, "permanent", /ARCHIVER_MAX_BODY_MB/);
    assertNoLeak(r);
    note(
      "1b endless body, no size, cap 1 MiB",
      r,
      `server sent ${h.stats.media[0]!.bytesSent} bytes; nothing stored; ${row.last_error}`,
    );
  });

  test("a body that outgrows file_size_bytes mid multipart upload aborts the upload", async () => {
    const call = serveOne(
      h,
      { file_size_bytes: 6 * MiB },
      (_n, _q, res) => (startsLikeM4a(res), endless(res, m4aBytes(64 * 1024))),
    );
    const r = await cli(
      ["run", "--json"],
      envFor("endless-multipart", { ARCHIVER_PART_SIZE_MB: "5" }),
      30_000,
    );
    assertBounded(r, 20_000);
    assert.match(r.stderr, /"code":"body_too_large"/);
    await assertFailed("endless-multipart", r, call.id, "permanent", /file_size_bytes 6291456/);
    assertNoLeak(r);
    note(
      "1c endless body, 6 MiB multipart",
      r,
      `server sent ${h.stats.media[0]!.bytesSent} bytes; upload aborted, nothing stored`,
    );
  });
});

describe("2. listing bounds", () => {
  const lockFree = (name: string) =>
    db(name, (d) => d.prepare("SELECT COUNT(*) FROM run_lock").pluck().get());

  test("has_next forever with the same call on every page: the run fails naming the page", async () => {
    const call = hostileCall();
    h.set({ list: (page) => ({ body: { data: [call], pagination: { page, has_next: true } } }) });
    const r = await cli(["run", "--json"], envFor("list-same"), 30_000);
    assertBounded(r, 15_000);
    assert.equal(r.code, 1, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.outcome, "fatal");
    assert.match(String(s.error), /page 3/);
    assert.match(String(s.error), /no new call/);
    assert.ok(h.stats.list <= 3, `${h.stats.list} list requests`);
    assert.equal(lockFree("list-same"), 0, "lock released");
    assertNoLeak(r);
    note("2a same call on every page", r, `${h.stats.list} list requests; ${String(s.error)}`);
  });

  test("has_next past total_pages: the run fails at total_pages", async () => {
    h.set({
      list: (page) => ({
        body: { data: [hostileCall()], pagination: { page, has_next: true, total_pages: 2 } },
      }),
    });
    const r = await cli(["run", "--json"], envFor("list-total"), 30_000);
    assertBounded(r, 15_000);
    assert.equal(r.code, 1, r.stderr);
    const s = summaryOf(r);
    assert.match(String(s.error), /total_pages 2/);
    assert.equal(h.stats.list, 2);
    assert.equal(lockFree("list-total"), 0, "lock released");
    note("2b has_next past total_pages 2", r, `${h.stats.list} list requests; ${String(s.error)}`);
  });

  test("a new call on every page, forever: the run stops at ARCHIVER_MAX_PAGES", async () => {
    h.set({
      list: (page) => ({ body: { data: [hostileCall()], pagination: { page, has_next: true } } }),
    });
    const r = await cli(["run", "--json"], envFor("list-cap", { ARCHIVER_MAX_PAGES: "5" }), 30_000);
    assertBounded(r, 15_000);
    assert.equal(r.code, 1, r.stderr);
    const s = summaryOf(r);
    assert.match(String(s.error), /ARCHIVER_MAX_PAGES/);
    assert.equal(h.stats.list, 5);
    assert.equal(lockFree("list-cap"), 0, "lock released");
    note("2c endless new calls, page cap 5", r, `${h.stats.list} list requests; ${String(s.error)}`);
  });
});

describe("2b. per-day counts (the completeness check)", () => {
  test("a source that gives no total_count: the check is not made, said so, and the run goes on", async () => {
    h.set({ list: (page) => ({ body: { data: [], pagination: { page, has_next: false } } }) });
    const env = envFor("no-count", { ARCHIVER_COMPLETENESS_DAYS: "3" });
    assert.equal((await cli(["run", "--json"], env)).code, 0, "a first run lists everything");
    h.reset();
    const r = await cli(["run", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const c = summaryOf(r).completeness as { days_checked: number; error?: string };
    assert.equal(c.days_checked, 0);
    assert.match(c.error ?? "", /no pagination.total_count/);
    assert.match(r.stderr, /completeness check not made/);
    assert.equal(h.stats.list, 4, "three day counts (asked at once) and the window");
    note("2d no total_count", r, `${h.stats.list} list requests; ${c.error}`);
  });

  test("a day counted far above what it lists: listed in full under the listing's bounds, which end the run", async () => {
    const call = hostileCall();
    const env = envFor("huge-count", { ARCHIVER_COMPLETENESS_DAYS: "1" });
    assert.equal((await cli(["run", "--json"], env)).code, 0, "a first run lists everything");
    // The day's count is a billion; the day's listing repeats one call forever; the window lists nothing.
    h.set({
      list: (page, q) => {
        const day = q.get("start_date") === q.get("end_date");
        if (q.get("page_size") === "1")
          return { body: { data: [call], pagination: { page, has_next: true, total_count: 1_000_000_000 } } };
        if (!day) return { body: page1([]) };
        return { body: { data: [call], pagination: { page, has_next: true } } };
      },
    });
    h.reset();
    const r = await cli(["run", "--json"], env, 30_000);
    assertBounded(r, 15_000);
    assert.equal(r.code, 1, r.stderr);
    const s = summaryOf(r);
    assert.match(String(s.error), /page 3: pages 2-3 added no new call/);
    assert.equal(h.stats.list, 1 + 1 + 3, "the count, the window, three pages of the day");
    note("2e a day counted at 10^9", r, `${h.stats.list} list requests; ${String(s.error)}`);
  });
});

describe("3. media is media", () => {
  test("HTML, JSON and text answers are never archived; the next run fetches the real recording", async () => {
    const types = ["text/html; charset=utf-8", "application/json", "text/plain"];
    const calls = types.map(() => hostileCall());
    const real = calls.map((_, i) => m4aBytes(30_000 + i, i + 7));
    let broken = true;
    h.set({
      list: () => ({ body: page1(calls) }),
      recording: (id) => recordingOf(h, id, { file_size_bytes: null }),
      media: (name, _q, res) => {
        const i = calls.findIndex((c) => name.startsWith(c.id));
        if (broken) {
          res.writeHead(200, { "content-type": types[i]! });
          return void res.end(`<html><body>Service unavailable ${i}</body></html>`);
        }
        res.writeHead(200, { "content-type": "audio/mp4", "content-length": real[i]!.length });
        res.end(real[i]);
      },
    });
    const env = envFor("error-page");
    const r = await cli(["run", "--json"], env, 30_000);
    assertBounded(r, 20_000);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(summaryOf(r).failed, 3);
    await assertNothingStored("error-page");
    for (const [i, c] of calls.entries()) {
      const row = rowOf("error-page", c.id);
      assert.equal(row.status, "failed");
      assert.equal(row.error_kind, "retryable", "the real recording is fetched again later");
      assert.match(row.last_error ?? "", /200/);
      assert.ok(row.last_error?.includes(types[i]!.split(";")[0]!), row.last_error ?? "");
    }
    assertNoLeak(r);
    note(
      "3a 200 text/html, application/json, text/plain",
      r,
      `nothing stored; ${rowOf("error-page", calls[0]!.id).last_error}`,
    );

    broken = false;
    const r2 = await cli(["run", "--json"], env, 30_000);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(summaryOf(r2).archived, 3);
    for (const [i, c] of calls.entries()) {
      const key = (await rig.listKeys("error-page/")).find((k) => k.endsWith(`${c.id}.m4a`));
      assert.ok(key, `${c.id} archived`);
      assert.equal(sha256((await rig.getObject(key)).body), sha256(real[i]!));
    }
  });

  test("0-byte bodies (Content-Length: 0, or an empty chunked body) are never archived", async () => {
    const calls = [hostileCall(), hostileCall()];
    h.set({
      list: () => ({ body: page1(calls) }),
      recording: (id) => recordingOf(h, id, { file_size_bytes: null }),
      media: (name, _q, res) => {
        if (name.startsWith(calls[0]!.id)) startsLikeM4a(res, { "content-length": "0" });
        else startsLikeM4a(res);
        res.end();
      },
    });
    const r = await cli(["run", "--json"], envFor("empty"), 30_000);
    assertBounded(r, 20_000);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(summaryOf(r).failed, 2);
    await assertNothingStored("empty");
    for (const c of calls) {
      const row = rowOf("empty", c.id);
      assert.equal(row.error_kind, "retryable");
      assert.match(row.last_error ?? "", /empty/);
    }
    note("3b 0-byte bodies", r, `nothing stored; ${rowOf("empty", calls[1]!.id).last_error}`);
  });

  test("an audio/mp4 answer that is not an MP4 (no ftyp) is refused; ARCHIVER_CHECK_MP4=false lets it through", async () => {
    const call = hostileCall();
    const page = Buffer.from("<!DOCTYPE html><html><body>Please log in</body></html>".repeat(20));
    h.set({
      list: () => ({ body: page1([call]) }),
      recording: (id) => recordingOf(h, id, { file_size_bytes: page.length }),
      media: (_n, _q, res) => (startsLikeM4a(res, { "content-length": String(page.length) }), res.end(page)),
    });
    const r = await cli(["run", "--json"], envFor("no-ftyp"), 30_000);
    assertBounded(r, 20_000);
    const row = await assertFailed("no-ftyp", r, call.id, "retryable", /ftyp/);
    note("3c audio/mp4 without ftyp", r, `nothing stored; ${row.last_error}`);

    const off = await cli(["run", "--json"], envFor("no-ftyp-off", { ARCHIVER_CHECK_MP4: "false" }), 30_000);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(summaryOf(off).archived, 1);
  });
});

describe("4-5. secrets nowhere", () => {
  const echo = () =>
    `key ${HOSTILE_KEY} may not read https://cdn.example.com/r/x.m4a?X-Amz-Signature=${h.signature}&X-Amz-Expires=60`;

  test("an error body echoing the API key and a signed URL reaches no summary, runs.error or status", async () => {
    const call = hostileCall();
    h.set({
      list: () => ({ status: 400, body: { error: { code: "bad_request", message: echo() } } }),
      recording: () => ({ status: 500, body: { error: { code: "internal", message: echo() } } }),
    });
    const env = envFor("echo");
    const json = await cli(["run", "--json"], env, 30_000);
    assert.equal(json.code, 1, json.stderr);
    assert.match(String(summaryOf(json).error), /cdn\.example\.com\/r\/x\.m4a/, "still says what failed");
    const text = await cli(["run"], env, 30_000);
    assert.equal(text.code, 1, text.stderr);
    // A failing recording (500 echoing the secrets), after a listing that works.
    h.set({
      list: () => ({ body: page1([call]) }),
      recording: () => ({ status: 500, body: { error: { code: "internal", message: echo() } } }),
    });
    const rec = await cli(["run", "--json"], env, 30_000);
    assert.equal(rec.code, 3, rec.stderr);
    for (const [what, r] of [
      ["run --json", json],
      ["run", text],
      ["recording failure", rec],
    ] as const)
      assertNoLeak(r, what);
    const errors = db("echo", (d) => d.prepare("SELECT error FROM runs").pluck().all() as string[]);
    assert.ok(errors.some((e) => e?.includes("cdn.example.com")));
    for (const e of errors) {
      assert.ok(!e?.includes(HOSTILE_KEY), "API key in runs.error");
      assert.ok(!e?.includes(h.signature), "signature in runs.error");
    }
    const lastError = rowOf("echo", call.id).last_error ?? "";
    assert.ok(!lastError.includes(HOSTILE_KEY) && !lastError.includes(h.signature), lastError);
    for (const args of [["status"], ["status", "--json"]]) {
      const st = await cli(args, env, 30_000);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /cdn\.example\.com/);
      assertNoLeak(st, args.join(" "));
    }
    note("4 error bodies echoing key + signed URL", json, `summary error: ${String(summaryOf(json).error)}`);
  });

  test("a secret in the media type reaches no object header, state row, manifest or metrics file", async () => {
    const body = m4aBytes(25_000, 3);
    const call = serveOne(
      h,
      { content_type: `audio/mp4; token=${h.signature}`, file_size_bytes: body.length },
      (_n, _q, res) => (startsLikeM4a(res), res.end(body)),
    );
    const env = envFor("ctype", { ENVOY_API_KEY: HOSTILE_KEY });
    const metrics = join(rig.dir, "ctype.prom");
    const r = await cli(["run", "--json", "--metrics-file", metrics], env, 30_000);
    assert.equal(r.code, 0, r.stderr);
    const key = (await rig.listKeys("ctype/")).find((k) => k.endsWith(".m4a"))!;
    const obj = await rig.getObject(key);
    assert.ok(!obj.contentType?.includes(h.signature), `object Content-Type ${obj.contentType}`);
    assert.ok(!String(rowOf("ctype", call.id).content_type).includes(h.signature), "calls.content_type");
    assert.ok(!readFileSync(metrics, "utf8").includes(h.signature), "metrics file");
    for (const format of ["csv", "jsonl"]) {
      const m = await cli(["manifest", "--format", format], env, 30_000);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout, new RegExp(call.id));
      assertNoLeak(m, `manifest ${format}`);
    }
    assertNoLeak(r);
  });

  test("signed URLs and authorization values in the call and the metadata are not kept in the sidecar or call_json", async () => {
    const sig = h.signature;
    const call = hostileCall({
      recording_url: `https://cdn.example.com/rec/a.m4a?X-Amz-Signature=${sig}&X-Amz-Credential=AKIAHOSTILE`,
      links: { download: `https://cdn.example.com/dl?token=${sig}` },
    });
    const body = m4aBytes(25_000, 5);
    serveOne(
      h,
      {
        file_size_bytes: body.length,
        download_url: h.mediaUrl(`${call.id}.m4a`),
        authorization: `AWS4-HMAC-SHA256 Credential=AKIAHOSTILE/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${sig}`,
        headers: { Authorization: `Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.${sig}` },
      },
      (_n, _q, res) => (startsLikeM4a(res), res.end(body)),
      call,
    );
    const r = await cli(["run", "--json"], envFor("sidecar"), 30_000);
    assert.equal(r.code, 0, r.stderr);
    const sidecarKey = (await rig.listKeys("sidecar/")).find((k) => k.endsWith(".json"))!;
    const sidecar = (await rig.getObject(sidecarKey)).body.toString();
    const callJson = rowOf("sidecar", call.id).call_json;
    for (const [what, text] of [
      ["sidecar", sidecar],
      ["call_json", callJson],
    ] as const) {
      assert.ok(!text.includes(sig), `signature kept in the ${what}`);
      assert.ok(!text.includes("AKIAHOSTILE"), `credential kept in the ${what}`);
      assert.match(
        text,
        /https:\/\/cdn\.example\.com\/rec\/a\.m4a/,
        `the URL without its query in the ${what}`,
      );
    }
    assert.ok(!sidecar.includes("eyJzdWIiOiJ4In0"), "bearer token kept in the sidecar");
    assertNoLeak(r);
  });
});

describe("6. deadlines", () => {
  test("a media host sending a byte a second fails retryably: 'stalled: N of M bytes in S s'", async () => {
    const call = serveOne(
      h,
      { file_size_bytes: 20_000 },
      (_n, _q, res) => (startsLikeM4a(res), trickle(res, m4aBytes(20_000), 1)),
    );
    const r = await cli(
      ["run", "--json"],
      envFor("slow", {
        ARCHIVER_TRANSFER_GRACE: "2",
        ARCHIVER_MIN_TRANSFER_RATE: "1",
        ARCHIVER_MAX_RETRIES: "0",
      }),
      40_000,
    );
    assertBounded(r, 15_000);
    const row = await assertFailed("slow", r, call.id, "retryable", /stalled: \d+ of 20000 bytes in \d+ s/);
    note("6a 1 byte/s", r, `${row.last_error}`);
  });

  test("response headers trickled a line at a time do not hold a worker: no head within the grace time", async () => {
    const call = serveOne(h, { file_size_bytes: 20_000 }, async (_n, req) => {
      const sock = req.socket;
      sock.write("HTTP/1.1 200 OK\r\ncontent-type: audio/mp4\r\n");
      for (let i = 0; i < 120 && !sock.destroyed; i++) {
        sock.write(`x-pad-${i}: a\r\n`);
        await new Promise((r) => setTimeout(r, 250));
      }
      sock.destroy();
    });
    const r = await cli(
      ["run", "--json"],
      envFor("slow-head", { ARCHIVER_TRANSFER_GRACE: "2", ARCHIVER_MAX_RETRIES: "0" }),
      40_000,
    );
    assertBounded(r, 15_000);
    const row = await assertFailed(
      "slow-head",
      r,
      call.id,
      "retryable",
      /no response head .* within 2000 ms/,
    );
    note("6c headers trickled", r, `${row.last_error}`);
  });

  test("a transfer never runs past the URL's expires_at: it is refreshed and continues", async () => {
    const call = hostileCall();
    const body = m4aBytes(20_000, 9);
    let expiresAt = 0;
    h.set({
      list: () => ({ body: page1([call]) }),
      recording: (id, n) => {
        if (n === 1) expiresAt = Date.now() + 4000;
        return recordingOf(h, id, {
          url: h.mediaUrl(`${id}-${n === 1 ? "slow" : "fast"}.m4a`),
          file_size_bytes: body.length,
          expires_at: new Date(n === 1 ? expiresAt : Date.now() + 3600_000).toISOString(),
        });
      },
      media: (name, _q, res) => {
        startsLikeM4a(res, { "content-length": String(body.length) });
        // 2 KB/s would take 10 s, past the 4 s the URL is valid for; fast once refreshed.
        return name.includes("-slow") ? trickle(res, body, 2000) : void res.end(body);
      },
    });
    const r = await cli(
      ["run", "--json"],
      envFor("expiry", {
        ARCHIVER_TRANSFER_GRACE: "1",
        ARCHIVER_MIN_TRANSFER_RATE: "1",
        ARCHIVER_MAX_RETRIES: "2",
      }),
      40_000,
    );
    assertBounded(r, 20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).archived, 1);
    assert.equal(h.stats.recording[call.id], 2, "metadata fetched again for a fresh URL");
    const slow = h.stats.media.find((m) => m.name.includes("-slow"));
    assert.ok(slow?.closedAt, "the slow URL was used and dropped");
    assert.ok(
      slow.closedAt <= expiresAt + 1000,
      `the slow transfer ran ${slow.closedAt - expiresAt} ms past expires_at`,
    );
    const key = (await rig.listKeys("expiry/")).find((k) => k.endsWith(".m4a"))!;
    assert.equal(sha256((await rig.getObject(key)).body), sha256(body));
    note(
      "6b URL expiring mid-transfer",
      r,
      `slow URL dropped ${slow.closedAt - expiresAt} ms after expires_at, refreshed, archived byte-exact`,
    );
  });
});

describe("7. header values and a prompt exit", () => {
  test("CR/LF and non-Latin-1 in recording_start_time: encoded, archived, and the process exits at once", async () => {
    const calls = [hostileCall(), hostileCall()];
    const starts = ["2026-11-24T10:00:00Z\r\nX-Injected: 1", "2026-11-24T10:00:00Z 通话"];
    const body = m4aBytes(22_000, 11);
    h.set({
      list: () => ({ body: page1(calls) }),
      recording: (id) =>
        recordingOf(h, id, {
          file_size_bytes: body.length,
          recording_start_time: starts[calls.findIndex((c) => c.id === id)],
        }),
      media: (_n, _q, res) => (startsLikeM4a(res), res.end(body)),
    });
    const r = await cli(["run", "--json"], envFor("headers"), 30_000);
    assertBounded(r, 20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).archived, 2);
    assert.ok(
      r.exitAfterSummaryMs !== null && r.exitAfterSummaryMs < 3000,
      `exited ${r.exitAfterSummaryMs} ms after its summary`,
    );
    for (const key of (await rig.listKeys("headers/")).filter((k) => k.endsWith(".m4a"))) {
      const v = (await rig.getObject(key)).metadata["recording-start-time"] ?? "";
      assert.match(v, /^[\x20-\x7e]+$/, `metadata ${JSON.stringify(v)} is header-safe`);
      assert.ok(starts.includes(decodeURIComponent(v)), `${v} decodes to the original`);
    }
    note(
      "7 CRLF / non-Latin-1 recording_start_time",
      r,
      `archived 2; exited ${r.exitAfterSummaryMs} ms after the summary`,
    );
  });
});

describe("8. CLI and config edges", () => {
  test("a bad flag on any subcommand exits 2", async () => {
    for (const args of [
      ["run", "--bogus"],
      ["status", "--nope"],
      ["verify", "--x"],
      ["manifest", "--format", "xml"],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
  });

  test("--dotenv names a settings file Node does not intercept; a missing one is a usage error", async () => {
    const missing = await cli(["status", "--dotenv", join(rig.dir, "missing.env")]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /missing\.env/);
    const file = join(rig.dir, "dotenv.env");
    writeFileSync(file, `ARCHIVER_DB_PATH=${join(rig.dir, "from-dotenv.db")}\n`);
    // status only reads: the DB the file names must exist (an empty one is given the schema).
    new Database(join(rig.dir, "from-dotenv.db")).close();
    const ok = await cli(["status", "--json", "--dotenv", file], { ARCHIVER_DB_PATH: "" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).db_path, join(rig.dir, "from-dotenv.db"));
  });

  test("every configuration error is reported at once, missing settings and cross-field rules included", async () => {
    const r = await cli(["run"], {
      ENVOY_API_KEY: "",
      ARCHIVER_S3_BUCKET: "",
      ARCHIVER_CONCURRENCY: "0",
      ARCHIVER_OBJECT_LOCK_MODE: "COMPLIANCE",
      ARCHIVER_SSE_KMS_KEY_ID: "k",
    });
    assert.equal(r.code, 2, r.stderr);
    for (const name of [
      "ENVOY_API_KEY",
      "ARCHIVER_S3_BUCKET",
      "ARCHIVER_CONCURRENCY",
      "ARCHIVER_RETENTION_DAYS",
      "ARCHIVER_SSE_KMS_KEY_ID",
    ])
      assert.ok(r.stderr.includes(name), `${name} not named in: ${r.stderr}`);
  });

  test("a state DB from a newer schema is refused with a clear message", async () => {
    h.set({ list: () => ({ body: page1([]) }) });
    const env = envFor("newer");
    assert.equal((await cli(["run"], env)).code, 0);
    const d = new Database(env.ARCHIVER_DB_PATH!);
    d.prepare(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future.sql', 'x')",
    ).run();
    d.close();
    for (const args of [["run"], ["status"]]) {
      const r = await cli(args, env);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /newer/);
      assert.match(r.stderr, /999/);
    }
  });

  test("X-RateLimit-Limit: 0.001 does not space requests 1,000 s apart", async () => {
    h.set({
      list: (page) => ({
        headers: { "x-ratelimit-limit": "0.001", "x-ratelimit-remaining": "100" },
        body: { data: [hostileCall()], pagination: { page, has_next: page < 3, total_pages: 3 } },
      }),
    });
    const r = await cli(["run", "--json"], envFor("pacing"));
    assertBounded(r, 15_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).no_recording, 3);
    note("8 X-RateLimit-Limit 0.001", r, `3 pages and 3 recordings`);
  });

  test("IPv4-compatible IPv6 media hosts (::a9fe:a9fe, the metadata address) are refused", async () => {
    const call = serveOne(h, { url: "http://[::a9fe:a9fe]/latest/meta-data/iam" });
    const r = await cli(["run", "--json"], envFor("v4compat"));
    await assertFailed("v4compat", r, call.id, "permanent", /refused: metadata/);
  });

  test("a read-only state DB is reported as read-only, not as corrupt", async () => {
    h.set({ list: () => ({ body: page1([]) }) });
    const env = envFor("readonly");
    assert.equal((await cli(["run"], env)).code, 0);
    chmodSync(env.ARCHIVER_DB_PATH!, 0o444);
    chmodSync(rig.dir, 0o755);
    try {
      // Root writes read-only files anyway: run the CLI as nobody.
      const child = spawn(process.execPath, [CLI, "run"], {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: rig.dir,
          ...rig.env,
          ENVOY_API_URL: h.apiUrl,
          ENVOY_API_KEY: HOSTILE_KEY,
          ...env,
        },
        cwd: rig.dir,
        stdio: ["ignore", "pipe", "pipe"],
        ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
      });
      const r = await collect(child);
      assertNoLeak(r);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /read-only|permission/i);
      assert.doesNotMatch(r.stderr, /reconcile/, "a read-only DB is not corrupt");
    } finally {
      chmodSync(rig.dir, 0o700);
    }
  });
});

describe("9. ready without a URL", () => {
  test("an AVAILABLE recording with no url is a logged, retryable failure, not 'not ready'", async () => {
    const call = serveOne(h, { url: null });
    const r = await cli(["run", "--json"], envFor("no-url"), 30_000);
    assert.equal(r.code, 3, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.failed, 1);
    assert.equal(s.not_ready, 0);
    const row = rowOf("no-url", call.id);
    assert.equal(row.error_kind, "retryable");
    assert.match(row.last_error ?? "", /AVAILABLE.*no url/);
    assert.ok(
      logsOf(r).some((l) => l.level === 50 && l.call_id === call.id),
      "an error line names the call",
    );
  });
});
