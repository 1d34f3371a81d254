import { test } from "node:test";
import assert from "node:assert/strict";
import { logNormalSizes, summarizeSizes } from "../../bench/sizes.js";
import { generateCalls } from "../../simulator/data.js";

const W5 = { count: 400, median: 4e6, sigma: 1, min: 200_000, max: 40e6, seed: 13 };

test("W5's sizes: the same every time, log-normal around the median, clipped to the range", () => {
  const sizes = logNormalSizes(W5);
  assert.deepEqual(logNormalSizes(W5), sizes);
  assert.notDeepEqual(logNormalSizes({ ...W5, seed: 14 }), sizes);
  assert.equal(sizes.length, 400);
  assert.ok(sizes.every((s) => Number.isInteger(s) && s >= W5.min && s <= W5.max));
  const x = summarizeSizes(sizes);
  // Median e^μ = 4 MB; mean e^(μ+σ²/2) ≈ 6.6 MB; p90 e^(μ+1.28σ) ≈ 14.4 MB: 400 draws land near them.
  assert.ok(x.median > 3.4e6 && x.median < 4.7e6, `median ${x.median}`);
  assert.ok(x.mean > 5.5e6 && x.mean < 7.8e6, `mean ${x.mean}`);
  assert.ok(x.p90 > 11e6 && x.p90 < 18e6, `p90 ${x.p90}`);
  // σ = 1 reaches both ends: some recordings are clipped, and some go multipart (above 16 MiB parts).
  assert.ok(sizes.includes(W5.max) && sizes.filter((s) => s > 16 * 1024 * 1024).length >= 20);
  assert.equal(
    x.total,
    sizes.reduce((a, b) => a + b, 0),
  );
});

test("summarizeSizes: nearest-rank median and p90, exact mean and total", () => {
  const x = summarizeSizes([5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
  assert.deepEqual(x, { count: 10, min: 1, median: 5, mean: 5.5, p90: 9, max: 10, total: 55 });
  assert.throws(() => summarizeSizes([]));
});

test("the simulator serves one size per call from a list, cycled, with the same calls as a fixed size", () => {
  const calls = generateCalls({ count: 5, seed: 3, sizeBytes: [100, 200, 300] });
  assert.deepEqual(
    calls.map((c) => c.recording.size),
    [100, 200, 300, 100, 200],
  );
  assert.deepEqual(
    calls.map((c) => c.recording.reportedSize),
    [100, 200, 300, 100, 200],
  );
  // A list draws nothing from the call's generator: ids, times and numbers are those of a fixed size.
  const fixed = generateCalls({ count: 5, seed: 3, sizeBytes: 100 });
  const sizeless = (c: (typeof calls)[number]) => ({
    ...c,
    recording: { ...c.recording, size: 0, reportedSize: 0 },
  });
  assert.deepEqual(calls.map(sizeless), fixed.map(sizeless));
  // Calls added later continue the list.
  assert.equal(generateCalls({ count: 1, seed: 3, sizeBytes: [100, 200, 300] }, 5)[0]!.recording.size, 300);
  assert.throws(() => generateCalls({ count: 1, sizeBytes: [] }), /not a byte count/);
  assert.throws(() => generateCalls({ count: 1, sizeBytes: [1.5] }), /not a byte count/);
});
