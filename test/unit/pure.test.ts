/** Pure functions: key templates, date windows, URL policy, redaction. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import {
  extensionFor,
  isValidCallId,
  KeyError,
  normalizePrefix,
  recordingKey,
  sidecarKey,
} from "../../src/base/keys.js";
import {
  addDays,
  backfillWindow,
  dayOf,
  incrementalWindow,
  inWindow,
  parseDay,
} from "../../src/base/dates.js";
import { checkUrl, classifyAddress, guardedLookup } from "../../src/envoy/url-policy.js";
import { redactError, redactText, redactUrl } from "../../src/base/redact.js";
import { createLogger } from "../../src/observe/logger.js";
import { contiguousParts, uploadFingerprint } from "../../src/s3/s3.js";
import { callIdOfKey } from "../../src/base/keys.js";

const ID = "call_3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b";

test("recording keys: date from recording start (UTC), else call time; extension from content type", () => {
  assert.equal(
    recordingKey({
      prefix: "",
      callId: ID,
      recordingStartTime: "2026-03-01T23:30:00-02:00",
      contentType: "audio/mp4",
    }),
    `recordings/2026/03/02/${ID}.m4a`,
  );
  assert.equal(
    recordingKey({
      prefix: "envoy/",
      callId: ID,
      recordingStartTime: null,
      callTime: "2025-12-31T10:00:00Z",
      contentType: "video/mp4",
    }),
    `envoy/recordings/2025/12/31/${ID}.mp4`,
  );
  assert.equal(
    recordingKey({
      prefix: "",
      callId: ID,
      recordingStartTime: "garbage",
      callTime: "2026-01-02",
      contentType: "x",
    }),
    `recordings/2026/01/02/${ID}.bin`,
  );
  assert.equal(sidecarKey("a/b.m4a"), "a/b.m4a.json");
  assert.equal(extensionFor("Audio/MP4; codecs=mp4a.40.2"), "m4a");
  assert.equal(extensionFor(null), "bin");
});

test("keys are never built from ids that are not call_<uuid>", () => {
  for (const bad of [
    "call_../../etc/passwd",
    "../call_x",
    "",
    "call_3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b/..",
    "CALL",
  ]) {
    assert.equal(isValidCallId(bad), false, bad);
    assert.throws(
      () => recordingKey({ prefix: "", callId: bad, callTime: "2026-01-01T00:00:00Z" }),
      KeyError,
    );
  }
  assert.throws(
    () => recordingKey({ prefix: "", callId: ID, recordingStartTime: null, callTime: null }),
    /no usable/,
  );
  assert.throws(() => recordingKey({ prefix: "", callId: ID, callTime: "2026-02-30" }), KeyError);
});

test("prefixes are normalized and checked", () => {
  assert.equal(normalizePrefix(""), "");
  assert.equal(normalizePrefix(undefined), "");
  assert.equal(normalizePrefix("/envoy"), "envoy/");
  assert.equal(normalizePrefix("a/b/"), "a/b/");
  for (const bad of ["a/../b", "a//b", "./a", "a\nb"]) assert.throws(() => normalizePrefix(bad), bad);
});

test("date windows: strict days, inclusive backfills, incremental from the watermark minus the overlap", () => {
  const now = new Date("2026-11-24T05:00:00Z");
  assert.equal(parseDay("2024-02-29"), "2024-02-29");
  for (const bad of ["2026-02-30", "2026-13-01", "26-01-01", "2026-1-1", "yesterday"])
    assert.throws(() => parseDay(bad, "--since"), /--since must be a date/);
  assert.deepEqual(backfillWindow("2026-01-01", "2026-01-31", now), {
    startDate: "2026-01-01",
    endDate: "2026-01-31",
  });
  assert.deepEqual(backfillWindow("2026-11-01", undefined, now), {
    startDate: "2026-11-01",
    endDate: "2026-11-24",
  });
  assert.throws(() => backfillWindow("2026-02-01", "2026-01-01", now), /after/);
  assert.deepEqual(incrementalWindow(null, 1, now), { endDate: "2026-11-24" });
  assert.deepEqual(incrementalWindow("2026-11-24T04:00:00Z", 1, now), {
    startDate: "2026-11-23",
    endDate: "2026-11-24",
  });
  assert.deepEqual(incrementalWindow("2026-11-20T23:59:00+00:00", 2, now), {
    startDate: "2026-11-18",
    endDate: "2026-11-24",
  });
  assert.equal(addDays("2024-03-01", -1), "2024-02-29");
  assert.equal(dayOf("2026-11-24T23:30:00-05:00"), "2026-11-25");
  assert.equal(dayOf("nope"), null);
  assert.ok(inWindow("2026-11-23", { startDate: "2026-11-23", endDate: "2026-11-24" }));
  assert.ok(!inWindow("2026-11-25", { endDate: "2026-11-24" }));
});

test("URL policy: https to public hosts only, unless insecure URLs are allowed; never link-local or metadata", () => {
  const strict = { allowInsecure: false };
  const lax = { allowInsecure: true };
  assert.equal(checkUrl("https://media.tryenvoy.ai/r/1.m4a?sig=x", strict).ok, true);
  const cases: [string, boolean, boolean][] = [
    ["http://media.example.com/a", false, true],
    ["https://127.0.0.1/a", false, true],
    ["https://localhost:8443/a", false, true],
    ["https://10.1.2.3/a", false, true],
    ["https://[::1]/a", false, true],
    ["https://169.254.169.254/latest/meta-data", false, false],
    ["http://169.254.10.1/", false, false],
    ["https://[fe80::1]/", false, false],
    ["https://[::ffff:169.254.169.254]/", false, false],
    ["https://metadata.google.internal/", false, false],
    ["https://METADATA.google.internal./", false, false],
    ["https://100.100.100.200/", false, false],
    ["https://0.0.0.0/", false, false],
    ["file:///etc/passwd", false, false],
    ["ftp://example.com/a", false, false],
    ["https://user:pw@example.com/a", false, false],
    ["not a url", false, false],
  ];
  for (const [url, okStrict, okLax] of cases) {
    assert.equal(checkUrl(url, strict).ok, okStrict, `strict ${url}`);
    assert.equal(checkUrl(url, lax).ok, okLax, `lax ${url}`);
  }
  const refused = checkUrl("http://media.example.com/a?sig=secret", strict);
  assert.ok(
    !refused.ok && !refused.reason.includes("secret") && /ARCHIVER_ALLOW_INSECURE_URLS/.test(refused.reason),
  );
  assert.equal(classifyAddress("8.8.8.8"), "public");
  assert.equal(classifyAddress("172.20.0.1"), "private");
  assert.equal(classifyAddress("100.64.0.1"), "private");
  assert.equal(classifyAddress("fd00:ec2::254"), "metadata");
});

test("the connect-time resolver refuses hosts that resolve to forbidden addresses (DNS rebinding)", async () => {
  const fake = (address: string) =>
    ((_h: string, _o: object, cb: (e: null, a: { address: string; family: number }[]) => void) =>
      cb(null, [{ address, family: address.includes(":") ? 6 : 4 }])) as never;
  const resolve = (lookup: ReturnType<typeof guardedLookup>, all: boolean) =>
    new Promise<unknown>((done, fail) =>
      (lookup as unknown as (h: string, o: object, cb: (e: Error | null, a?: unknown) => void) => void)(
        "media.example.com",
        { all },
        (e, a) => (e ? fail(e) : done(a)),
      ),
    );
  await assert.rejects(
    resolve(guardedLookup({ allowInsecure: true }, fake("169.254.169.254")), false),
    (e: { code?: string }) => e.code === "EURLREFUSED",
  );
  await assert.rejects(resolve(guardedLookup({ allowInsecure: false }, fake("10.0.0.5")), false), /private/);
  assert.equal(await resolve(guardedLookup({ allowInsecure: true }, fake("10.0.0.5")), false), "10.0.0.5");
  assert.deepEqual(await resolve(guardedLookup({ allowInsecure: false }, fake("93.184.216.34")), true), [
    { address: "93.184.216.34", family: 4 },
  ]);
});

test("redaction: signed-URL queries, bearer tokens and known secrets never survive", () => {
  assert.equal(
    redactUrl("https://u:p@s3.amazonaws.com/b/k.m4a?X-Amz-Signature=abc&X-Amz-Credential=AK#f"),
    "https://s3.amazonaws.com/b/k.m4a?REDACTED",
  );
  assert.equal(redactUrl("::"), "[unparseable url]");
  const text = redactText(
    "GET https://media.tryenvoy.ai/x.m4a?expires=1&sig=deadbeef failed; Authorization: Bearer eyJhbGciOi.abc.def; key envai_live_SECRET123; X-Amz-Signature=abc123",
    ["envai_live_SECRET123"],
  );
  for (const leak of ["deadbeef", "eyJhbGciOi", "envai_live_SECRET123", "abc123"])
    assert.ok(!text.includes(leak), `${leak} in ${text}`);
  const err = redactError(
    new Error("boom https://h/p?token=t0k3n", { cause: new Error("inner envai_live_SECRET123") }),
    ["envai_live_SECRET123"],
  );
  assert.ok(!JSON.stringify(err).includes("t0k3n") && !JSON.stringify(err).includes("SECRET123"));
});

test("the logger redacts secrets in messages, fields, errors, URLs and headers", () => {
  let out = "";
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const secret = "envai_live_TOPSECRET";
  const log = createLogger({ level: "info", secrets: [secret], destination: sink });
  log.info(`key is ${secret}`);
  log.info({ note: `also ${secret}`, nested: { deeper: secret } }, "fields");
  log.error({ err: new Error(`failed with ${secret} at https://m.example/r?sig=s1gn4ture`) }, "error");
  log.info({ headers: { authorization: "Bearer abc.def.ghi", "x-api-key": secret } }, "headers");
  log.info({ url: "https://m.example/r.m4a?X-Amz-Signature=s1gn4ture" }, "url");
  assert.ok(out.split("\n").filter(Boolean).length === 5, out);
  for (const leak of [secret, "s1gn4ture", "abc.def.ghi"])
    assert.ok(!out.includes(leak), `${leak} leaked:\n${out}`);
});

test("resume: only parts 1..n without a gap, each starting where the last ended", () => {
  const p = (partNumber: number, start: number, end: number) => ({
    partNumber,
    start,
    end,
    etag: "e",
    prefixSha256: "h",
  });
  assert.deepEqual(contiguousParts([]), []);
  assert.deepEqual(
    contiguousParts([p(2, 10, 20), p(1, 0, 10), p(4, 30, 40)]).map((x) => x.partNumber),
    [1, 2],
    "sorted; stops at the missing part 3",
  );
  assert.deepEqual(contiguousParts([p(2, 0, 10)]), [], "no part 1");
  assert.deepEqual(
    contiguousParts([p(1, 0, 10), p(2, 12, 20)]).map((x) => x.partNumber),
    [1],
    "a hole in the bytes",
  );
});

test("resume: an upload is continued only with the settings it was created with", () => {
  const base = {
    contentType: "video/mp4",
    metadata: { "call-id": "c", "duration-seconds": "5" },
    objectParams: { ObjectLockMode: "COMPLIANCE" as const, ObjectLockRetainUntilDate: new Date(0) },
  };
  const f = uploadFingerprint(base, "MD5");
  assert.equal(
    uploadFingerprint({ ...base, metadata: { "duration-seconds": "5", "call-id": "c" } }, "MD5"),
    f,
    "key order does not matter",
  );
  assert.notEqual(uploadFingerprint(base, "CRC32C"), f);
  assert.notEqual(uploadFingerprint({ ...base, contentType: "audio/mp4" }, "MD5"), f);
  assert.notEqual(
    uploadFingerprint(
      { ...base, objectParams: { ...base.objectParams, ObjectLockRetainUntilDate: new Date(1) } },
      "MD5",
    ),
    f,
  );
});

test("the call id of a recording key, and nothing else", () => {
  const id = "call_0b9c1c1e-6a43-4c5e-9a51-3f1f0f3c2b7d";
  assert.equal(callIdOfKey(`p/recordings/2026/11/01/${id}.m4a`), id);
  assert.equal(callIdOfKey(`recordings/2026/11/01/${id}.m4a.json`), id);
  assert.equal(callIdOfKey(`${id}.mp4`), id);
  assert.equal(callIdOfKey("recordings/2026/11/01/call_nope.m4a"), null);
  assert.equal(callIdOfKey(`recordings/2026/11/01/${id}`), null, "no extension: not a key we build");
  assert.equal(callIdOfKey(`manifests/${id}x.csv`), null);
});
