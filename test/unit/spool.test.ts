import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { ArchiverError } from "../../src/base/errors.js";
import { clearSpool, SPILL_BYTES, SpillBuffer } from "../../src/s3/spool.js";

const tmp = () => mkdtempSync(join(tmpdir(), "spool-"));
const bytes = (n: number, seed: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * seed) & 0xff));

async function fill(buf: SpillBuffer, chunks: Buffer[]) {
  for (const c of chunks) await buf.append(c);
}

test("bodies up to the threshold stay in memory; larger ones spill to a file that is removed after use", async () => {
  const dir = join(tmp(), "spool");
  const small = new SpillBuffer(dir);
  const s = [bytes(1000, 3), bytes(2000, 5)];
  await fill(small, s);
  const sealedSmall = await small.seal();
  assert.equal(existsSync(dir), false, "nothing written for a small body");
  assert.deepEqual(sealedSmall.buffer(), Buffer.concat(s));
  assert.equal(sealedSmall.md5Base64, createHash("md5").update(Buffer.concat(s)).digest("base64"));

  const big = new SpillBuffer(dir);
  const chunks = Array.from({ length: 40 }, (_, i) => bytes(64 * 1024, i + 1));
  await fill(big, chunks);
  const all = Buffer.concat(chunks);
  assert.ok(all.length > SPILL_BYTES);
  const sealed = await big.seal();
  assert.equal(readdirSync(dir).length, 1, "one spool file");
  assert.equal(sealed.length, all.length);
  assert.equal(sealed.md5Base64, createHash("md5").update(all).digest("base64"));
  // Every attempt reads the whole body again.
  for (let i = 0; i < 2; i++) {
    const got: Buffer[] = [];
    for await (const c of sealed.stream()) got.push(c as Buffer);
    assert.ok(Buffer.concat(got).equals(all));
  }
  assert.throws(() => sealed.buffer());
  await sealed.dispose();
  assert.deepEqual(readdirSync(dir), []);
});

test("no spool directory: always in memory; discard removes a half-written file", async () => {
  const mem = new SpillBuffer(undefined);
  await fill(mem, [bytes(SPILL_BYTES + 10, 7)]);
  const m = await mem.seal();
  assert.equal(
    m.md5Base64,
    createHash("md5")
      .update(bytes(SPILL_BYTES + 10, 7))
      .digest("base64"),
  );
  assert.equal(m.buffer().length, SPILL_BYTES + 10);

  const dir = join(tmp(), "spool");
  const half = new SpillBuffer(dir);
  await fill(half, [bytes(SPILL_BYTES + 1, 9)]);
  assert.equal(readdirSync(dir).length, 1);
  await half.discard();
  assert.deepEqual(readdirSync(dir), []);
});

test("an unwritable spool directory is a fatal error that names the setting; clearSpool removes leftovers", async () => {
  const root = tmp();
  const file = join(root, "not-a-dir");
  writeFileSync(file, "x");
  const buf = new SpillBuffer(join(file, "spool"));
  await assert.rejects(
    async () => fill(buf, [bytes(SPILL_BYTES + 1, 1)]),
    (e: unknown) => e instanceof ArchiverError && e.kind === "fatal" && /ARCHIVER_SPOOL_DIR/.test(e.message),
  );

  const dir = join(root, "spool");
  mkdirSync(dir);
  writeFileSync(join(dir, "123-1.body"), "left by a killed run");
  writeFileSync(join(dir, "keep.txt"), "not ours");
  await clearSpool(dir);
  assert.deepEqual(readdirSync(dir), ["keep.txt"]);
  await clearSpool(join(root, "missing")); // no directory yet: nothing to do
  assert.equal(await text((await new SpillBuffer(undefined).seal()).stream()), "");
});

test("pooled in-memory bodies never share bytes while in use, and are reused only after dispose", async () => {
  const dir = join(tmp(), "spool");
  const bodyA = bytes(100_000, 11);
  const a = new SpillBuffer(dir);
  await fill(a, [bodyA.subarray(0, 60_000), bodyA.subarray(60_000)]);
  const sealedA = await a.seal();
  // A is in flight (not disposed): B and C must get slabs of their own.
  const others = await Promise.all(
    [13, 17].map(async (seed) => {
      const b = new SpillBuffer(dir);
      await fill(b, [bytes(100_000, seed)]);
      return b.seal();
    }),
  );
  assert.ok(sealedA.buffer().equals(bodyA), "A untouched by later bodies");
  const streamed: Buffer[] = [];
  for await (const c of sealedA.stream()) streamed.push(c as Buffer);
  assert.ok(Buffer.concat(streamed).equals(bodyA));
  assert.ok(others[0]!.buffer().equals(bytes(100_000, 13)));
  assert.ok(others[1]!.buffer().equals(bytes(100_000, 17)));
  // Disposed twice by mistake: the slab must still be handed out once only.
  await sealedA.dispose();
  await sealedA.dispose();
  const d = new SpillBuffer(dir);
  const e = new SpillBuffer(dir);
  await fill(d, [bytes(50_000, 19)]);
  await fill(e, [bytes(50_000, 23)]);
  const [sd, se] = [await d.seal(), await e.seal()];
  assert.ok(sd.buffer().equals(bytes(50_000, 19)));
  assert.ok(se.buffer().equals(bytes(50_000, 23)), "two live bodies never got the same slab");
  for (const s of [...others, sd, se]) await s.dispose();
});
