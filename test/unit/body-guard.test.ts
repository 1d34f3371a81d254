/** The limits every media body is read under: byte budget, rate floor, URL expiry, empty bodies, MP4 check. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { guardBody, looksLikeMp4, type BodyLimits } from "../../src/envoy/body-guard.js";
import { ArchiverError } from "../../src/base/errors.js";

const FTYP = Buffer.from("00000018667479704d344120000000004d34412069736f6d", "hex");
const base: BodyLimits = {
  offset: 0,
  skip: 0,
  expectedBytes: null,
  maxBytes: 1 << 30,
  maxBytesSetting: "ARCHIVER_MAX_BODY_MB",
  minBytesPerSec: 0,
  graceMs: 60_000,
  expiresAt: null,
  checkMp4: false,
};

/**
 * Read a guarded body to its end or error. The guard's timers do not keep a process alive (a live socket does
 * that in real use), so a timer holds the loop open meanwhile.
 */
async function drain(body: Readable): Promise<{ bytes: number; err?: ArchiverError }> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    return await read(body);
  } finally {
    clearInterval(keepAlive);
  }
}

async function read(body: Readable): Promise<{ bytes: number; err?: ArchiverError }> {
  let bytes = 0;
  try {
    for await (const c of body) bytes += (c as Buffer).length;
    return { bytes };
  } catch (err) {
    return { bytes, err: err as ArchiverError };
  }
}

/** A source that yields `chunk` forever (until destroyed), counting what was pulled. */
function endless(chunk: Buffer): Readable & { pulled: number } {
  const r = new Readable({
    read() {
      r.pulled += chunk.length;
      this.push(chunk);
    },
  }) as Readable & { pulled: number };
  r.pulled = 0;
  return r;
}

test("an endless body stops at the first chunk past file_size_bytes, and the source is destroyed", async () => {
  const src = endless(Buffer.alloc(4096));
  const { bytes, err } = await drain(guardBody(src, { ...base, expectedBytes: 10_000 }));
  assert.equal(err?.code, "body_too_large");
  assert.equal(err?.kind, "permanent");
  const at = Number(/file_size_bytes 10000: stopped reading at byte (\d+)/.exec(err?.message ?? "")?.[1]);
  assert.ok(at > 10_000 && at <= 10_000 + 64 * 1024, `stopped at ${at}`);
  assert.ok(bytes <= 10_000, "the chunk that crossed the budget is not passed on");
  assert.ok(src.destroyed);
  assert.ok(src.pulled < 64 * 1024, `${src.pulled} bytes pulled`);
});

test("with no size, ARCHIVER_MAX_BODY_MB is the budget; an announced size above it is refused unread", async () => {
  const { err } = await drain(guardBody(endless(Buffer.alloc(1000)), { ...base, maxBytes: 5000 }));
  assert.match(err?.message ?? "", /ARCHIVER_MAX_BODY_MB \(5000 bytes; no file_size_bytes given\)/);
  const src = endless(Buffer.alloc(1000));
  const announced = await drain(guardBody(src, { ...base, maxBytes: 5000, declaredBytes: 6000 }));
  assert.equal(announced.bytes, 0);
  assert.match(announced.err?.message ?? "", /announces 6000 bytes/);
});

test("a resumed body is counted from its offset, skipped bytes (Range ignored) included", async () => {
  const body = Readable.from([Buffer.alloc(700), Buffer.alloc(700)]);
  const ok = await drain(guardBody(body, { ...base, offset: 600, skip: 600, expectedBytes: 1400 }));
  assert.equal(ok.err, undefined);
  const over = await drain(
    guardBody(Readable.from([Buffer.alloc(700), Buffer.alloc(700)]), {
      ...base,
      offset: 600,
      expectedBytes: 1000,
    }),
  );
  assert.equal(over.err?.code, "body_too_large");
});

test("an empty body is not a recording (retryable); empty past offset 0 is not judged here", async () => {
  const { err } = await drain(guardBody(Readable.from([]), base));
  assert.equal(err?.code, "empty_body");
  assert.equal(err?.kind, "retryable");
  assert.equal((await drain(guardBody(Readable.from([]), { ...base, offset: 10 }))).err, undefined);
});

test("MP4 check: the first 8 bytes, even split across chunks, must be an MP4 box", async () => {
  const split = [FTYP.subarray(0, 3), FTYP.subarray(3, 6), FTYP.subarray(6), Buffer.alloc(100)];
  assert.equal((await drain(guardBody(Readable.from(split), { ...base, checkMp4: true }))).err, undefined);
  const html = Buffer.from("<!DOCTYPE html><html>");
  const bad = await drain(guardBody(Readable.from([html]), { ...base, checkMp4: true }));
  assert.equal(bad.err?.code, "not_media");
  assert.match(bad.err?.message ?? "", /no ftyp box; first bytes "<!DOCTYP"/);
  const short = await drain(guardBody(Readable.from([FTYP.subarray(0, 5)]), { ...base, checkMp4: true }));
  assert.equal(short.err?.code, "not_media", "shorter than a box header");
  assert.equal((await drain(guardBody(Readable.from([html]), base))).err, undefined, "check off");
  assert.equal(
    (await drain(guardBody(Readable.from([html]), { ...base, checkMp4: true, offset: 100 }))).err,
    undefined,
    "a resumed body does not start at byte 0",
  );
  assert.ok(looksLikeMp4(Buffer.from("\0\0\0\x08moov")));
  assert.ok(!looksLikeMp4(Buffer.from('{"error"')));
});

test("below the minimum rate after the grace time: 'stalled: N of M bytes in S s', retryable", async () => {
  const src = new PassThrough();
  src.write(Buffer.alloc(10));
  const t0 = Date.now();
  const { err } = await drain(
    guardBody(src, { ...base, expectedBytes: 5000, minBytesPerSec: 1024, graceMs: 300 }),
  );
  assert.equal(err?.code, "stalled");
  assert.equal(err?.kind, "retryable");
  assert.match(err?.message ?? "", /^stalled: 10 of 5000 bytes in \d+ s/);
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(src.destroyed);
});

test("a transfer keeping above the rate floor is left alone", async () => {
  const src = new PassThrough();
  const t = setInterval(() => src.write(Buffer.alloc(200)), 20);
  setTimeout(() => {
    clearInterval(t);
    src.end();
  }, 600);
  const { err, bytes } = await drain(guardBody(src, { ...base, minBytesPerSec: 2048, graceMs: 100 }));
  assert.equal(err, undefined, err?.message);
  assert.ok(bytes > 4000);
});

test("reading stops at the URL's expiry, retryably (the next attempt refreshes it)", async () => {
  const src = new PassThrough();
  const t = setInterval(() => src.write(Buffer.alloc(100)), 20);
  const t0 = Date.now();
  const { err } = await drain(guardBody(src, { ...base, expiresAt: Date.now() + 300 }));
  clearInterval(t);
  assert.equal(err?.code, "url_expired");
  assert.equal(err?.kind, "retryable");
  assert.ok(Date.now() - t0 < 1000);
});

test("a reader that gives up destroys the source and leaves no timer behind", async () => {
  const src = new PassThrough();
  const destroyedWith: unknown[] = [];
  const destroy = src.destroy.bind(src);
  src.destroy = (err?: Error) => (destroyedWith.push(err), destroy(err));
  src.write(Buffer.alloc(10));
  const body = guardBody(src, { ...base, minBytesPerSec: 1024, graceMs: 50, expiresAt: Date.now() + 50 });
  body.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(src.destroyed);
  assert.deepEqual(
    destroyedWith.filter((e) => e !== undefined),
    [],
    "no deadline fired after the reader gave up",
  );
});
