/** Settings and state checks against hostile input: config errors together, pacing caps, IPv6 forms, schema. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ConfigError, loadConfig } from "../../src/base/config.js";
import { checkUrl, classifyAddress } from "../../src/envoy/url-policy.js";
import { StateDb } from "../../src/state/db.js";
import { ArchiverError } from "../../src/base/errors.js";
import { stateDbOpenError } from "../../src/state/schema-guard.js";

const noFile = join(tmpdir(), "definitely-missing.env");

test("every configuration problem in one error: field checks, cross-field rules, required settings", () => {
  assert.throws(
    () =>
      loadConfig({
        env: {
          ARCHIVER_CONCURRENCY: "0",
          ARCHIVER_OBJECT_LOCK_MODE: "COMPLIANCE",
          ARCHIVER_SSE_KMS_KEY_ID: "k",
          ARCHIVER_S3_PREFIX: "a/../b",
          ENVOY_ORGANIZATION_ID: "org\r\nX-Evil: 1",
          ARCHIVER_MEDIA_TYPES: "audio/*,not a type",
        },
        dotenvPath: noFile,
        require: "run",
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      [
        "ARCHIVER_CONCURRENCY",
        "ARCHIVER_RETENTION_DAYS",
        "ARCHIVER_SSE_KMS_KEY_ID",
        "ARCHIVER_S3_PREFIX",
        "ENVOY_ORGANIZATION_ID: contains a line break",
        "ARCHIVER_MEDIA_TYPES",
        "ENVOY_API_KEY (or ENVOY_API_TOKEN): required",
        "ARCHIVER_S3_BUCKET: required",
      ].every((n) => e.message.includes(n)),
  );
});

test("a settings file the user named must exist; the default ./.env may not", () => {
  assert.throws(
    () => loadConfig({ env: {}, dotenvPath: noFile, requireDotenv: true }),
    (e: unknown) => e instanceof ConfigError && e.message.includes(noFile),
  );
  loadConfig({ env: {}, dotenvPath: noFile });
});

test("the hostile-source limits have sane defaults and are settable", () => {
  const d = loadConfig({ env: {}, dotenvPath: noFile });
  assert.deepEqual(d.media, {
    maxBodyBytes: 4096 * 1024 * 1024,
    allowedTypes: ["audio/*", "video/*", "application/octet-stream"],
    checkMp4: true,
    minBytesPerSec: 16 * 1024,
    graceMs: 60_000,
  });
  assert.equal(d.envoy.maxPages, 100_000);
  const c = loadConfig({
    env: {
      ARCHIVER_MAX_BODY_MB: "1",
      ARCHIVER_MEDIA_TYPES: "Audio/MP4, application/octet-stream",
      ARCHIVER_CHECK_MP4: "false",
      ARCHIVER_MIN_TRANSFER_RATE: "0",
      ARCHIVER_TRANSFER_GRACE: "5",
      ARCHIVER_MAX_PAGES: "7",
    },
    dotenvPath: noFile,
  });
  assert.deepEqual(c.media, {
    maxBodyBytes: 1024 * 1024,
    allowedTypes: ["audio/mp4", "application/octet-stream"],
    checkMp4: false,
    minBytesPerSec: 0,
    graceMs: 5000,
  });
  assert.equal(c.envoy.maxPages, 7);
});

test("IPv4-compatible and IPv4-mapped IPv6 are judged as the IPv4 address they carry", () => {
  for (const a of ["::a9fe:a9fe", "::169.254.169.254", "::ffff:a9fe:a9fe", "[::a9fe:a9fe]"])
    assert.equal(classifyAddress(a), "metadata", a);
  assert.equal(classifyAddress("::7f00:1"), "loopback");
  assert.equal(classifyAddress("::a00:1"), "private");
  assert.equal(classifyAddress("::1"), "loopback");
  assert.equal(classifyAddress("::"), "unspecified");
  assert.equal(classifyAddress("2606:4700::1111"), "public");
  const v = checkUrl("http://[::a9fe:a9fe]/latest/meta-data", { allowInsecure: true });
  assert.ok(!v.ok && /metadata/.test(v.reason));
  assert.ok(!checkUrl("https://[::7f00:1]/x", { allowInsecure: false }).ok);
});

test("a state DB from a newer schema is refused, untouched", () => {
  const path = join(mkdtempSync(join(tmpdir(), "schema-")), "state.db");
  StateDb.open(path).close();
  const d = new Database(path);
  d.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_x.sql', 'x')").run();
  const tables = d.prepare("SELECT COUNT(*) FROM sqlite_master").pluck().get();
  d.close();
  assert.throws(
    () => StateDb.open(path),
    (e: unknown) =>
      e instanceof ArchiverError && e.kind === "fatal" && /schema version 999 .* newer/.test(e.message),
  );
  const after = new Database(path, { readonly: true });
  assert.equal(after.prepare("SELECT COUNT(*) FROM sqlite_master").pluck().get(), tables);
  after.close();
});

test("opening errors name their cause: read-only is not corrupt", () => {
  const ro = stateDbOpenError(
    "/x/s.db",
    Object.assign(new Error("attempt to write a readonly database"), { code: "SQLITE_READONLY" }),
  );
  assert.equal(ro.code, "state_db_read_only");
  assert.doesNotMatch(ro.message, /reconcile/);
  const corrupt = stateDbOpenError(
    "/x/s.db",
    Object.assign(new Error("file is not a database"), { code: "SQLITE_NOTADB" }),
  );
  assert.match(corrupt.message, /reconcile/);
});
