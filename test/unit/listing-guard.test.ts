import { test } from "node:test";
import assert from "node:assert/strict";
import { ListingGuard } from "../../src/envoy/listing-guard.js";
import { ArchiverError } from "../../src/base/errors.js";

const more = { hasNext: true, totalPages: null };

test("a listing that ends normally ends", () => {
  const g = new ListingGuard(100);
  assert.equal(g.next(1, ["a", "b"], more), true);
  assert.equal(g.next(2, ["c"], { hasNext: false, totalPages: 2 }), false);
  assert.equal(new ListingGuard(100).next(1, [], more), false, "an empty page ends it");
});

test("the same calls page after page: fatal, naming the page", () => {
  const g = new ListingGuard(100);
  g.next(1, ["a"], more);
  assert.equal(g.next(2, ["a"], more), true, "one repeated page is tolerated (new calls shift pages)");
  assert.throws(
    () => g.next(3, ["a"], more),
    (e: unknown) =>
      e instanceof ArchiverError &&
      e.kind === "fatal" &&
      /page 3: pages 2-3 added no new call/.test(e.message),
  );
});

test("a repeated page followed by new calls resets the count", () => {
  const g = new ListingGuard(100);
  g.next(1, ["a", "b"], more);
  g.next(2, ["a", "b"], more);
  g.next(3, ["c"], more);
  assert.equal(g.next(4, ["c", "d"], more), true);
});

test("has_next past total_pages, and the page cap", () => {
  assert.throws(
    () => new ListingGuard(100).next(2, ["x"], { hasNext: true, totalPages: 2 }),
    /total_pages 2/,
  );
  const g = new ListingGuard(3);
  g.next(1, ["a"], more);
  g.next(2, ["b"], more);
  assert.throws(() => g.next(3, ["c"], more), /after 3 pages \(ARCHIVER_MAX_PAGES/);
});
