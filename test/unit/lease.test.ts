/**
 * The lease on a prefix and shard (src/s3/lease.ts) on the in-memory ObjectStore: a second holder is refused by
 * name, an expired lease or one left on this host by a dead process is taken over, a renewal that finds another
 * holder fails, a release deletes only its own lease, and two takers on a server that ignores If-None-Match end
 * with exactly one holder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { ArchiverError } from "../../src/base/errors.js";
import { Lease, type LeaseOptions } from "../../src/s3/lease.js";
import { S3Sink } from "../../src/s3/s3.js";
import type { PutRequest } from "../../src/s3/object-store.js";
import { FAST_POLICY, MemoryStore } from "../helpers/memory-store.js";

const KEY = "p/leases/all.json";

const sinkOn = (store: MemoryStore) =>
  new S3Sink(
    store,
    { bucket: store.bucket, partSize: 5 << 20, queueSize: 1, checksum: "NONE" },
    FAST_POLICY,
    pino({ level: "silent" }),
  );

function lease(store: MemoryStore, o: Partial<LeaseOptions> & { runId: string }): Lease {
  return new Lease(sinkOn(store), {
    key: KEY,
    holder: "alice@host-a",
    ttlMs: 60_000,
    settleMs: 50,
    conditionTrusted: false,
    scope: 'prefix "p/"',
    alive: () => true,
    ...o,
  });
}

const heldBy = (re: RegExp) => (err: unknown) => {
  assert.ok(err instanceof ArchiverError, String(err));
  assert.equal(err.kind, "fatal");
  assert.equal(err.code, "lease_held");
  assert.match(err.message, re);
  return true;
};

test("a second run, from another host, is refused naming the holder, its run and the lease", async () => {
  const store = new MemoryStore();
  await lease(store, { runId: "run-a" }).take();
  await assert.rejects(
    lease(store, { runId: "run-b", holder: "bob@host-b" }).take(),
    heldBy(
      /prefix "p\/" is being archived by alice@host-a \(run run-a, pid \d+\), whose lease runs until .*s3:\/\/memory\/p\/leases\/all\.json/,
    ),
  );
  assert.equal(store.calls.put, 1, "the refused run wrote nothing");
});

test("an expired lease is taken over; so is one left on this host by a process that is gone", async () => {
  const store = new MemoryStore();
  await lease(store, { runId: "old", ttlMs: 1 }).take();
  await new Promise((r) => setTimeout(r, 5));
  await lease(store, { runId: "new", holder: "bob@host-b" }).take();
  const dead = new MemoryStore();
  await lease(dead, { runId: "killed" }).take();
  // As another process of this host left it.
  const doc = JSON.parse(dead.objects.get(KEY)!.body.toString()) as { pid: number };
  doc.pid = process.pid + 1_000_000;
  dead.objects.get(KEY)!.body = Buffer.from(JSON.stringify(doc));
  // Same host: taken over only when that process is gone.
  await assert.rejects(lease(dead, { runId: "next", alive: () => true }).take(), heldBy(/run killed/));
  await lease(dead, { runId: "next", alive: (p) => p !== doc.pid }).take();
  assert.match(dead.objects.get(KEY)!.body.toString(), /"run_id":"next"/);
});

test("renewal extends the lease; one that finds another holder fails (lease_lost); release deletes only its own", async () => {
  const store = new MemoryStore();
  const a = lease(store, { runId: "run-a" });
  await a.take();
  const before = (JSON.parse(store.objects.get(KEY)!.body.toString()) as { expires_at: string }).expires_at;
  await new Promise((r) => setTimeout(r, 5));
  await a.renew();
  const after = (JSON.parse(store.objects.get(KEY)!.body.toString()) as { expires_at: string }).expires_at;
  assert.ok(after > before, `${after} > ${before}`);
  // Someone took it over (a's host stalled past the expiry).
  const b = lease(store, { runId: "run-b", holder: "bob@host-b", ttlMs: 60_000 });
  store.objects.delete(KEY);
  await b.take();
  await assert.rejects(
    a.renew(),
    (err: ArchiverError) => err.code === "lease_lost" && /bob@host-b/.test(err.message),
  );
  await a.release();
  assert.ok(store.objects.has(KEY), "a does not delete b's lease");
  await b.release();
  assert.ok(!store.objects.has(KEY), "b's release deletes it");
});

test("a server that ignores If-None-Match: of two takers at once, exactly one holds the lease (20 trials)", async () => {
  for (let trial = 0; trial < 20; trial++) {
    const store = new MemoryStore();
    const put = store.put.bind(store);
    // Both writers' PUTs land; the second one written is what the bucket shows (RGW 16.2 in a versioned bucket).
    store.put = (r: PutRequest) => put({ ...r, ifNoneMatch: undefined });
    const results = await Promise.allSettled(
      ["run-a", "run-b"].map((runId, i) => lease(store, { runId, holder: `h${i}@host-${i}` }).take()),
    );
    const won = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(won, 1, JSON.stringify(results.map((r) => r.status)));
    const lost = results.find((r) => r.status === "rejected")!;
    heldBy(/is being archived by/)(lost.reason);
  }
});

test("a lease PUT whose answer is lost: the bucket shows it landed, the lease is ours, nothing sent twice", async () => {
  const store = new MemoryStore();
  const put = store.put.bind(store);
  let puts = 0;
  store.put = async (r: PutRequest) => {
    const first = ++puts === 1;
    const out = await put(r);
    if (first) throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    return out;
  };
  await lease(store, { runId: "run-a" }).take();
  assert.equal(puts, 1, "not sent again: the bucket showed it landed");
  assert.match(store.objects.get(KEY)!.body.toString(), /"run_id":"run-a"/);
});

test("a server that honours If-None-Match: the second conditional write is refused (412) and names the holder", async () => {
  const store = new MemoryStore();
  const slowRead = store.get.bind(store);
  let reads = 0;
  // Both read "no lease" before either writes.
  store.get = async (key: string) => {
    const out = await slowRead(key);
    if (++reads <= 2) await new Promise((r) => setTimeout(r, 20));
    return reads <= 2 ? null : out;
  };
  const results = await Promise.allSettled(
    ["run-a", "run-b"].map((runId) => lease(store, { runId, conditionTrusted: true }).take()),
  );
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
});
