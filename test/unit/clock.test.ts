import { test } from "node:test";
import assert from "node:assert/strict";
import {
  clockSkewFailure,
  describeOffset,
  offsetFrom,
  ServerClock,
  SKEW_THRESHOLD_MS,
} from "../../src/base/clock.js";
import { classify } from "../../src/base/errors.js";
import { markSkewedRefusals } from "../../src/s3/sdk-client.js";
import { needsRefresh } from "../../src/envoy/url-refresh.js";
import { multipartEtag, sameEtag } from "../../src/s3/multipart-etag.js";

const MIN = 60_000;
const httpDate = (ms: number) => new Date(ms).toUTCString();

test("the offset is read from a Date header, to the second", () => {
  const at = Date.parse("2026-11-27T09:32:49.400Z");
  assert.equal(offsetFrom("Fri, 27 Nov 2026 09:52:49 GMT", at), 20 * MIN - 400);
  assert.equal(offsetFrom(undefined, at), undefined);
  assert.equal(offsetFrom("yesterday-ish", at), undefined);
});

test("offsets are described from this machine's point of view", () => {
  assert.equal(describeOffset(20 * MIN - 400), "20 min behind", "to the minute from 10 minutes on");
  assert.equal(describeOffset(-20 * MIN), "20 min ahead of");
  assert.equal(describeOffset(-(2 * 3600_000 + 50 * MIN)), "2 h 50 min ahead of");
  assert.equal(describeOffset(3 * MIN + 4000), "3 min 4 s behind");
  assert.equal(describeOffset(300), "in step with");
});

test("a ServerClock learns the API's time, ignores noise and cached answers, and tells a notable offset once", () => {
  const told: number[] = [];
  const clock = new ServerClock((ms) => told.push(ms));
  clock.observe(httpDate(Date.now() + 900));
  assert.equal(clock.offsetMs, 0, "below the Date header's resolution");
  clock.observe(httpDate(Date.now() + 20 * MIN), "30");
  assert.equal(clock.offsetMs, 0, "a cached answer (Age) says nothing about the server's clock now");
  clock.observe(httpDate(Date.now() + 20 * MIN));
  assert.ok(Math.abs(clock.offsetMs - 20 * MIN) < 2000, String(clock.offsetMs));
  assert.ok(Math.abs(clock.now() - (Date.now() + 20 * MIN)) < 2000);
  clock.observe(httpDate(Date.now() + 20 * MIN));
  assert.equal(told.length, 1, "told once, not on every answer");
});

test("expires_at judged by the API's clock: a fresh URL from an API 20 min behind us is not expired", () => {
  const apiNow = Date.now() - 20 * MIN;
  const expiresAt = new Date(apiNow + 15 * MIN).toISOString();
  assert.equal(needsRefresh(expiresAt, 1_000_000, Date.now()), true, "by our own clock it looks expired");
  const clock = new ServerClock();
  clock.observe(httpDate(apiNow));
  assert.equal(needsRefresh(expiresAt, 1_000_000, clock.now()), false);
});

test("a refusal counts as skewed only when the request was signed far off the server's time", async () => {
  const config = { systemClockOffset: -20 * MIN };
  const failing = (date: string, sdkSaysCorrected: boolean) => () =>
    Promise.reject(
      Object.assign(new Error("x"), {
        $metadata: { httpStatusCode: 404, ...(sdkSaysCorrected ? { clockSkewCorrected: true } : {}) },
        $response: { headers: { date } },
      }),
    );
  const flag = async (date: string, sdkSaysCorrected: boolean) => {
    const err = await markSkewedRefusals(config)(failing(date, sdkSaysCorrected))({}).catch(
      (e: unknown) => e,
    );
    return (err as { $metadata: { clockSkewCorrected?: boolean } }).$metadata.clockSkewCorrected;
  };
  // Signed with the learned offset: a 404 is a 404, whatever the SDK marked (its offset moves by a second).
  assert.equal(await flag(httpDate(Date.now() - 20 * MIN), true), undefined);
  // Signed 20 min off the server's time (the clock jumped since): a refusal to retry with the new offset.
  assert.equal(await flag(httpDate(Date.now()), false), true);
});

/** An S3 error as the SDK throws it. */
function s3Error(name: string, status: number, date?: string, corrected?: boolean) {
  return Object.assign(new Error(name === "Unknown" ? "UnknownError" : name), {
    name,
    $fault: "client",
    $metadata: { httpStatusCode: status, ...(corrected ? { clockSkewCorrected: true } : {}) },
    $response: { headers: date ? { date } : {} },
  });
}

test("a skew the SDK just corrected is retried", () => {
  const c = classify(s3Error("Unknown", 403, httpDate(Date.now() + 20 * MIN), true));
  assert.equal(c.kind, "retryable");
  assert.equal(c.code, "clock_skew_corrected");
  assert.match(c.message, /20 min behind the S3 server's/);
});

test("a skew that correcting did not fix is fatal, names the clock and the offset, never 'access denied'", () => {
  const skewed = classify(s3Error("RequestTimeTooSkewed", 403, httpDate(Date.now() - 20 * MIN)));
  assert.equal(skewed.kind, "fatal");
  assert.equal(skewed.code, "clock_skew");
  assert.match(skewed.message, /clock is 20 min ahead of the S3 server's/);
  assert.doesNotMatch(skewed.message, /access denied/i);

  const noDate = classify(s3Error("RequestTimeTooSkewed", 403));
  assert.equal(noDate.kind, "fatal");
  assert.match(noDate.message, /no usable Date header.*clock offset cannot be measured/);

  // A HEAD (no error document) refused while our clock is 20 min off the server's: the clock is named first.
  const head = classify(s3Error("Unknown", 403, httpDate(Date.now() + 20 * MIN)));
  assert.equal(head.code, "clock_skew");
  assert.match(head.message, /HTTP 403 without an error code, and this machine's clock is 20 min behind/);
  assert.doesNotMatch(head.message, /^S3 access denied/);
});

test("a 403 with the clocks in step is still access denied", () => {
  const c = classify(s3Error("AccessDenied", 403, httpDate(Date.now())));
  assert.equal(c.kind, "fatal");
  assert.match(c.message, /access denied/i);
  assert.ok(SKEW_THRESHOLD_MS <= 5 * MIN);
  assert.equal(clockSkewFailure({ name: "Unknown", status: 403, date: httpDate(Date.now()) }), undefined);
});

test("multipart ETags: the MD5 of the parts' MD5s, as Ceph RGW computed it for these parts", () => {
  // Recorded from RGW 16.2: two parts (5 MiB of 0x01, 1,000 bytes of 0x01) and the object's ETag.
  const parts = ['"08b46181d7094b5ece88bb389c7499af"', '"f0835dbe66a7e90b0e0e8647354d0c0b"'];
  assert.equal(multipartEtag(parts), "e3d054d64d016d394c652ca755b69074-2");
  assert.equal(multipartEtag([...parts].reverse())?.endsWith("-2"), true);
  assert.notEqual(multipartEtag([...parts].reverse()), multipartEtag(parts), "part order matters");
  assert.equal(multipartEtag(["not-an-md5"]), undefined, "SSE-KMS part ETags are not MD5s");
  assert.equal(multipartEtag([]), undefined);
  assert.ok(sameEtag('"E3D054D64D016D394C652CA755B69074-2"', "e3d054d64d016d394c652ca755b69074-2"));
  assert.ok(!sameEtag("", ""), "a missing ETag matches nothing");
});
