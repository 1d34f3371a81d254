/**
 * Pairing archived rows with the bucket listing, chunk by chunk and several chunks at once: every row once, with
 * exactly the object listed under its key (or null, or outside the listing), each chunk's listing starting after
 * the previous chunk and read no further than its own last key, and no more chunks in flight than asked.
 * (The listing here is an in-memory list in S3's order; the S3 protocol is exercised end to end in
 * test/e2e/scale.test.ts and compliance.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ListedObject } from "../../src/s3/listing.js";
import { withListing, type Lister } from "../../src/jobs/compliance/with-listing.js";

const key = (i: number) =>
  `p/recordings/2026/01/${String(1 + (i % 28)).padStart(2, "0")}/call_${String(i).padStart(6, "0")}.m4a`;

test("chunked, parallel pairing: each row once, with its own object, listings bounded and chained", async () => {
  const rows = Array.from({ length: 5000 }, (_, i) => ({ key: key(i), n: i })).sort((a, b) =>
    a.key < b.key ? -1 : 1,
  );
  // The bucket: most recordings (each with its sidecar), some missing, some strangers, objects under other prefixes.
  const objects: ListedObject[] = [];
  for (const r of rows) {
    if (r.n % 97 === 0) continue;
    objects.push({ key: r.key, size: r.n, etag: `"${r.n}"` }, { key: `${r.key}.json`, size: 1, etag: '"s"' });
    if (r.n % 101 === 0) objects.push({ key: `${r.key}x`, size: 0, etag: '"x"' });
  }
  objects.push({ key: "p/recordings/9999/zzz", size: 0, etag: "" });
  objects.sort((a, b) => (a.key < b.key ? -1 : 1));
  const outside = [{ key: "other/recordings/2026/01/01/call_x.m4a", n: -1 }];

  let inFlight = 0;
  let maxInFlight = 0;
  const calls: { startAfter: string; stopAfter: string; read: string[] }[] = [];
  const list: Lister = async function* (prefix, startAfter, stopAfter) {
    const call = { startAfter, stopAfter, read: [] as string[] };
    calls.push(call);
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      for (const o of objects) {
        if (!o.key.startsWith(prefix) || o.key <= startAfter) continue;
        await new Promise((r) => setImmediate(r));
        call.read.push(o.key);
        yield o;
      }
    } finally {
      inFlight--;
    }
  };
  const seen = new Map<string, ListedObject | null | undefined>();
  for await (const { row, listed } of withListing(
    [...outside, ...rows],
    { prefix: "p/recordings/", startAfter: "p/recordings/", parallel: 3, chunkRows: 700 },
    list,
  )) {
    assert.ok(!seen.has(row.key), `${row.key} once`);
    seen.set(row.key, listed);
  }
  assert.equal(seen.size, rows.length + outside.length);
  assert.equal(seen.get(outside[0]!.key), undefined, "outside the listing");
  for (const r of rows) {
    const listed = seen.get(r.key);
    if (r.n % 97 === 0) assert.equal(listed, null, `${r.key} missing`);
    else assert.deepEqual(listed, { key: r.key, size: r.n, etag: `"${r.n}"` });
  }
  assert.equal(calls.length, Math.ceil(rows.length / 700));
  assert.ok(maxInFlight > 1 && maxInFlight <= 3, `chunks in flight: ${maxInFlight}`);
  calls.forEach((c, i) => {
    assert.equal(c.startAfter, i === 0 ? "p/recordings/" : calls[i - 1]!.stopAfter, "chained");
    assert.ok(c.read.at(-1)! > c.stopAfter, "read one object past its last key, then stopped");
    assert.ok(c.read.length <= 2 * 700 + 20, `chunk ${i} read ${c.read.length} objects`);
  });
});

test("a failing listing fails the pairing, even while other chunks are in flight", async () => {
  const rows = Array.from({ length: 100 }, (_, i) => ({ key: key(i) })).sort((a, b) =>
    a.key < b.key ? -1 : 1,
  );
  let n = 0;
  // The second chunk fails while the first is still being listed (and awaited).
  const list: Lister = async function* () {
    const i = ++n;
    await new Promise((r) => setTimeout(r, i === 1 ? 50 : 1));
    if (i === 2) throw new Error("SlowDown, for good");
    yield* [];
  };
  await assert.rejects(async () => {
    for await (const _ of withListing(
      rows,
      { prefix: "p/", startAfter: "p/", parallel: 4, chunkRows: 10 },
      list,
    ));
  }, /SlowDown/);
});
