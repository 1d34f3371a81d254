import { test } from "node:test";
import assert from "node:assert/strict";
import { repairsFor, shortfalls, wantedProtection, type Protection } from "../../src/s3/protection.js";
import { recordedLock } from "../../src/jobs/compliance/lock-check.js";

const until = new Date("2030-01-01T00:00:00.250Z");
const later = new Date("2031-01-01T00:00:00Z");
const asked: Protection = {
  retention: { mode: "GOVERNANCE", until },
  legalHold: true,
  tags: [
    ["team", "ops & sales"],
    ["src", "envoy"],
  ],
};
const none: Protection = { retention: null, legalHold: false, tags: [] };

test("what the object parameters ask for; nothing asked reads nothing back", () => {
  assert.equal(wantedProtection({}), null);
  assert.equal(wantedProtection({ StorageClass: "STANDARD_IA", ServerSideEncryption: "AES256" }), null);
  assert.deepEqual(
    wantedProtection({
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: until,
      ObjectLockLegalHoldStatus: "ON",
      Tagging: "team=ops%20%26%20sales&src=envoy",
    }),
    asked,
  );
  assert.deepEqual(wantedProtection({ Tagging: "a=%C3%BC" }), {
    retention: null,
    legalHold: false,
    tags: [["a", "ü"]],
  });
});

test("shortfalls: missing or weaker fails; as strong or stronger holds", () => {
  assert.deepEqual(shortfalls(asked, none), [
    "no retention (asked: GOVERNANCE retention until 2030-01-01T00:00:00.250Z)",
    "legal hold OFF (asked: ON)",
    "no tag team (asked: team=ops & sales)",
    "no tag src (asked: src=envoy)",
  ]);
  const exact: Protection = { ...asked, tags: [...asked.tags!].reverse() };
  assert.deepEqual(shortfalls(asked, exact), [], "tag order does not matter");
  // A server that keeps whole seconds only.
  const truncated = { ...exact, retention: { mode: "GOVERNANCE", until: new Date("2030-01-01T00:00:00Z") } };
  assert.deepEqual(shortfalls(asked, truncated), []);
  const stronger: Protection = {
    retention: { mode: "COMPLIANCE", until: later },
    legalHold: true,
    tags: [...asked.tags!, ["extra", "1"]],
  };
  assert.deepEqual(shortfalls(asked, stronger), []);
  const earlier = { ...exact, retention: { mode: "GOVERNANCE", until: new Date("2029-12-31T23:59:59Z") } };
  assert.equal(shortfalls(asked, earlier).length, 1);
  const weakerMode = { ...exact, retention: { mode: "GOVERNANCE", until: later } };
  assert.deepEqual(shortfalls({ ...asked, retention: { mode: "COMPLIANCE", until } }, weakerMode), [
    "GOVERNANCE retention until 2031-01-01T00:00:00.000Z (asked: COMPLIANCE retention until 2030-01-01T00:00:00.250Z)",
  ]);
  const unknownMode = { ...exact, retention: { mode: "SOMETHING", until: later } };
  assert.equal(shortfalls(asked, unknownMode).length, 1);
  assert.deepEqual(
    shortfalls(asked, {
      ...exact,
      tags: [
        ["team", "ops"],
        ["src", "envoy"],
      ],
    }),
    ["tag team=ops (asked: team=ops & sales)"],
  );
});

test("repairs apply what is missing and never weaken what the object holds", () => {
  assert.deepEqual(repairsFor(asked, none), {
    retention: { mode: "GOVERNANCE", until },
    legalHold: true,
    tags: asked.tags,
  });
  const exact: Protection = { ...asked };
  assert.deepEqual(repairsFor(asked, exact), {});
  // COMPLIANCE until earlier than asked: extended, never lowered to GOVERNANCE.
  const compliance = { ...exact, retention: { mode: "COMPLIANCE", until: new Date("2029-01-01T00:00:00Z") } };
  assert.deepEqual(repairsFor(asked, compliance), { retention: { mode: "COMPLIANCE", until } });
  // GOVERNANCE later than asked, COMPLIANCE asked: upgraded, the later date kept.
  const govLater = { ...exact, retention: { mode: "GOVERNANCE", until: later } };
  assert.deepEqual(repairsFor({ ...asked, retention: { mode: "COMPLIANCE", until } }, govLater), {
    retention: { mode: "COMPLIANCE", until: later },
  });
  // Tags: the set is replaced whole by PutObjectTagging, so tags already there are kept.
  const other: Protection = {
    ...exact,
    tags: [
      ["keep", "me"],
      ["src", "old"],
    ],
  };
  assert.deepEqual(repairsFor(asked, other).tags, [
    ["keep", "me"],
    ["src", "envoy"],
    ["team", "ops & sales"],
  ]);
});

test("verify compares the bucket with the lock the state recorded", () => {
  const row = {
    key: "k",
    version_id: "v",
    lock_mode: "COMPLIANCE",
    retain_until: "2030-01-01T00:00:00Z",
    legal_hold: 1,
  };
  assert.deepEqual(recordedLock(row), {
    retention: { mode: "COMPLIANCE", until: new Date("2030-01-01T00:00:00Z") },
    legalHold: true,
    tags: null,
  });
  assert.deepEqual(
    shortfalls(
      recordedLock(row),
      { retention: { mode: "GOVERNANCE", until: later }, legalHold: false, tags: null },
      "archived",
    ),
    [
      "GOVERNANCE retention until 2031-01-01T00:00:00.000Z (archived: COMPLIANCE retention until 2030-01-01T00:00:00.000Z)",
      "legal hold OFF (archived: ON)",
    ],
  );
});
