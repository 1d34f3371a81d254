/**
 * The audit trail's hash chain (state/audit-chain.ts) and its comparison with the heads the bucket holds
 * (jobs/audit.ts): an edited, a deleted and a re-hashed record are each named; an older copy of the DB is caught
 * by the bucket's heads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateDb, GENESIS, type ChainLink } from "../../src/state/db.js";
import { canonicalJson, linkHash, type LinkedRow } from "../../src/state/audit-chain.js";
import { compareHeads } from "../../src/jobs/audit.js";
import { auditHeadKey, parseAuditHeadKey } from "../../src/base/keys.js";

const COUNTS = {
  listed: 3,
  archived: 2,
  already_archived: 0,
  not_ready: 0,
  no_recording: 0,
  failed: 1,
  bytes: 9,
};

function command(s: StateDb, id: string, outcome = "ok"): ChainLink {
  s.startRun({
    id,
    command: "verify",
    mode: "all",
    windowStart: null,
    windowEnd: null,
    dryRun: false,
    version: "1.2.3",
    configFingerprint: "fp",
    host: "h",
  });
  return s.finishRun(id, COUNTS, outcome, null, { checked: 3 });
}

function trailOf(n: number): { path: string; links: ChainLink[] } {
  const path = join(mkdtempSync(join(tmpdir(), "audit-")), "state.db");
  const s = StateDb.open(path);
  const links = Array.from({ length: n }, (_, i) => command(s, `r${i + 1}`));
  s.close();
  return { path, links };
}

const check = (path: string) => {
  const s = StateDb.open(path);
  try {
    return s.checkAuditTrail();
  } finally {
    s.close();
  }
};
const exec = (path: string, sql: string) => {
  const s = StateDb.open(path);
  s.db.exec(sql);
  s.close();
};

test("each finished command is the next link: numbered, carrying the hash before it, hashed over its fields", () => {
  const { path, links } = trailOf(3);
  assert.deepEqual(
    links.map((l) => l.seq),
    [1, 2, 3],
  );
  assert.equal(links[0]!.prev, GENESIS);
  assert.equal(links[1]!.prev, links[0]!.sha256);
  assert.equal(links[2]!.prev, links[1]!.sha256);
  assert.match(links[0]!.trail, /^[0-9a-f]{16}$/);
  assert.ok(links.every((l) => l.trail === links[0]!.trail));
  assert.equal(links[0]!.record.actor?.toString().endsWith("@h"), true, "actor is user@host");
  assert.equal(links[0]!.record.archiver_version, "1.2.3");
  assert.equal(links[0]!.record.outcome, "ok");
  const c = check(path);
  assert.equal(c.broken, null);
  assert.equal(c.links, 3);
  assert.equal(c.head?.sha256, links[2]!.sha256);
  // A record already linked is never rewritten by a second finish.
  const s = StateDb.open(path);
  const again = s.finishRun("r2", { ...COUNTS, failed: 0 }, "ok", null);
  assert.equal(again.sha256, links[1]!.sha256);
  assert.equal(s.checkAuditTrail().broken, null);
  s.close();
});

test("a hand-edited record is named", () => {
  const { path } = trailOf(4);
  exec(path, "UPDATE runs SET failed = 0, outcome = 'ok' WHERE chain_seq = 2");
  const c = check(path);
  assert.equal(c.broken?.seq, 2);
  assert.equal(c.broken?.runId, "r2");
  assert.match(c.broken!.reason, /record #2 \(r2\) was altered/);
});

test("a deleted record is named", () => {
  const { path } = trailOf(4);
  exec(path, "DELETE FROM runs WHERE chain_seq = 3");
  const c = check(path);
  assert.equal(c.broken?.seq, 3);
  assert.match(c.broken!.reason, /record #3 is missing: the trail goes from #2 to #4/);
});

test("an edited record whose own hash was recomputed breaks the link after it", () => {
  const { path } = trailOf(3);
  const s = StateDb.open(path);
  s.db.exec("UPDATE runs SET outcome = 'ok', failed = 0 WHERE chain_seq = 2");
  const row = s.db.prepare("SELECT * FROM runs WHERE chain_seq = 2").get() as LinkedRow;
  s.db.prepare("UPDATE runs SET chain_sha256 = ? WHERE chain_seq = 2").run(linkHash(row, 2, row.chain_prev!));
  s.close();
  const c = check(path);
  assert.equal(c.broken?.seq, 3);
  assert.match(c.broken!.reason, /record #3 \(r3\) does not follow record #2/);
});

test("the bucket's heads catch a state DB swapped for an older copy, and a rewritten one", () => {
  const { path, links } = trailOf(2);
  const older = `${path}.older`;
  copyFileSync(path, older);
  const s = StateDb.open(path);
  const later = [...links, command(s, "r3"), command(s, "r4")];
  s.close();
  const heads = later.map((l) => ({ seq: l.seq, sha256: l.sha256 }));
  // The live DB matches every head.
  const live = StateDb.open(path);
  assert.equal(compareHeads(live.auditTrail(), heads), null);
  live.close();
  // The older copy is a whole chain by itself, but the bucket holds heads it does not have.
  assert.equal(check(older).broken, null);
  const o = StateDb.open(older);
  const broken = compareHeads(o.auditTrail(), heads);
  o.close();
  assert.equal(broken?.seq, 3);
  assert.match(broken!.reason, /head #3 .* the state DB does not have \(its last record is #2\).*older copy/);
  // A whole chain rewritten from record 2 on (every hash recomputed) disagrees with the bucket at #2.
  const forged = heads.map((h) => (h.seq === 2 ? { ...h, sha256: "f".repeat(64) } : h));
  const l = StateDb.open(path);
  assert.match(
    compareHeads(l.auditTrail(), forged)!.reason,
    /record #2 \(r2\) hashes to .* the bucket holds f{64}/,
  );
  l.close();
});

test("canonical JSON: sorted keys, no spaces, undefined left out; head keys round-trip", () => {
  assert.equal(
    canonicalJson({ b: 1, a: [null, "x", { d: 2, c: undefined }] }),
    '{"a":[null,"x",{"d":2}],"b":1}',
  );
  const sha = "a".repeat(64);
  const key = auditHeadKey("p/", "0123456789abcdef", 7, sha);
  assert.equal(key, `p/_audit/0123456789abcdef/000000000007-${sha}.json`);
  assert.deepEqual(parseAuditHeadKey("p/", key), { trail: "0123456789abcdef", seq: 7, sha256: sha });
  assert.equal(parseAuditHeadKey("p/", "p/_audit/x/1.json"), null);
});
