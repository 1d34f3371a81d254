import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ConfigError, loadConfig } from "../../src/base/config.js";
import { parseTags, tagsProblem } from "../../src/base/tags.js";

const noFile = join(tmpdir(), "definitely-missing.env");
const tagsOf = (raw: string) => loadConfig({ env: { ARCHIVER_TAGS: raw }, dotenvPath: noFile }).storage.tags;

test("ARCHIVER_TAGS accepts what S3 accepts: letters and digits of any script, spaces, _ . : / = + - @", () => {
  assert.deepEqual(tagsOf("retention=7y, system = envoy ,Abteilung=Prüfung"), [
    ["retention", "7y"],
    ["system", "envoy"],
    ["Abteilung", "Prüfung"],
  ]);
  assert.deepEqual(tagsOf("ü=ü,owner=ops@example.com,path=a/b:c+d-e_f.g,eq=a=b,empty="), [
    ["ü", "ü"],
    ["owner", "ops@example.com"],
    ["path", "a/b:c+d-e_f.g"],
    ["eq", "a=b"],
    ["empty", ""],
  ]);
  assert.deepEqual(tagsOf("部署=営業,αβ=٣"), [
    ["部署", "営業"],
    ["αβ", "٣"],
  ]);
  assert.deepEqual(tagsOf(""), []);
});

test("S3's length limits count characters, not bytes", () => {
  assert.equal(tagsProblem(`${"ü".repeat(128)}=${"é".repeat(256)}`), undefined);
  assert.match(tagsProblem(`${"ü".repeat(129)}=v`)!, /1 to 128 characters/);
  assert.match(tagsProblem(`k=${"é".repeat(257)}`)!, /longer than 256/);
});

test("ARCHIVER_TAGS refuses what S3 refuses, naming the tag", () => {
  const refused: [string, RegExp][] = [
    ["a=b;c", /only letters, digits, spaces/],
    ["a=<x>", /only letters, digits, spaces/],
    ["emoji=🙂", /only letters, digits, spaces/],
    ["a=b&c=d", /only letters, digits, spaces/],
    ["novalue", /not a k=v pair/],
    ["=v", /1 to 128/],
    ["aws:created=x", /reserved/],
    ["a=1,a=2", /twice/],
    [Array.from({ length: 10 }, (_, i) => `k${i}=v`).join(","), /at most 9/],
  ];
  for (const [raw, why] of refused) {
    assert.match(tagsProblem(raw) ?? "accepted", why, raw);
    assert.throws(
      () => tagsOf(raw),
      (e: unknown) => e instanceof ConfigError && /ARCHIVER_TAGS/.test(e.message) && why.test(e.message),
      raw,
    );
  }
});

test("parseTags splits at the first =", () => {
  assert.deepEqual(parseTags("k=a=b , x = y"), [
    ["k", "a=b"],
    ["x", "y"],
  ]);
});
