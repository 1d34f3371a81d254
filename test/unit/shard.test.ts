import { test } from "node:test";
import assert from "node:assert/strict";
import { inShard, resolveShard, shardOf } from "../../src/base/shard.js";
import { generateCalls } from "../../simulator/data.js";

test("every call lands in exactly one shard, roughly evenly", () => {
  const ids = generateCalls({ count: 4000, seed: 5 }).map((c) => c.id);
  const counts = [0, 0, 0, 0];
  for (const id of ids) {
    const owners = [0, 1, 2, 3].filter((i) => inShard(id, { index: i, count: 4 }));
    assert.equal(owners.length, 1);
    counts[owners[0]!]!++;
  }
  for (const n of counts) assert.ok(n > 850 && n < 1150, `uneven: ${counts.join(",")}`);
});

test("the hash is stable (the same id, the same shard, forever)", () => {
  assert.equal(
    shardOf("call_00000000-0000-4000-8000-000000000000", 1000),
    shardOf("call_00000000-0000-4000-8000-000000000000", 1000),
  );
  assert.equal(shardOf("", 7), 0x811c9dc5 % 7);
  assert.equal(inShard("anything", undefined), true);
});

test("shard from --shard, Kubernetes Indexed Jobs or AWS Batch array jobs", () => {
  assert.deepEqual(resolveShard("1/4", {}), { index: 1, count: 4 });
  assert.deepEqual(resolveShard(undefined, { ARCHIVER_SHARD_COUNT: "8", JOB_COMPLETION_INDEX: "7" }), {
    index: 7,
    count: 8,
  });
  assert.deepEqual(resolveShard(undefined, { ARCHIVER_SHARD_COUNT: "3", AWS_BATCH_JOB_ARRAY_INDEX: "0" }), {
    index: 0,
    count: 3,
  });
  assert.equal(
    resolveShard(undefined, { JOB_COMPLETION_INDEX: "2" }),
    undefined,
    "an index alone does not shard",
  );
  assert.throws(() => resolveShard("4/4", {}), /not below/);
  assert.throws(() => resolveShard("x", {}), /INDEX\/COUNT/);
  assert.throws(() => resolveShard(undefined, { ARCHIVER_SHARD_COUNT: "2" }), /JOB_COMPLETION_INDEX/);
});
