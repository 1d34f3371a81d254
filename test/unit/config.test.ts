import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  configFingerprint,
  loadConfig,
  requireRunSettings,
  secretsOf,
} from "../../src/base/config.js";

const noFile = join(tmpdir(), "definitely-missing.env");

test("defaults", () => {
  const c = loadConfig({ env: {}, dotenvPath: noFile });
  assert.equal(c.envoy.apiUrl, "https://tryenvoy.ai/api/v1");
  assert.equal(c.concurrency, 4);
  assert.equal(c.envoy.pageSize, 100);
  assert.equal(c.dbPath, "./data/archiver.db");
  assert.equal(c.s3.prefix, "");
  assert.equal(c.allowInsecureUrls, false);
  assert.deepEqual(c.envoy.readyStatuses, ["AVAILABLE", "COMPLETED", "READY"]);
  assert.throws(
    () => requireRunSettings(c),
    (e: unknown) => e instanceof ConfigError && /ENVOY_API_KEY.*ARCHIVER_S3_BUCKET/.test(e.message),
  );
});

test("flags override the environment, which overrides .env", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  const file = join(dir, ".env");
  writeFileSync(
    file,
    "ARCHIVER_CONCURRENCY=2\nARCHIVER_PAGE_SIZE=50\nARCHIVER_S3_BUCKET=from-file\nENVOY_API_KEY=k\n",
  );
  const c = loadConfig({
    env: {
      ARCHIVER_PAGE_SIZE: "60",
      ARCHIVER_S3_PREFIX: "/envoy",
      ARCHIVER_READY_STATUSES: "available, done",
    },
    dotenvPath: file,
    overrides: { ARCHIVER_CONCURRENCY: "9", ARCHIVER_DB_PATH: undefined },
  });
  assert.equal(c.concurrency, 9);
  assert.equal(c.envoy.pageSize, 60);
  assert.equal(c.s3.bucket, "from-file");
  assert.equal(c.s3.prefix, "envoy/");
  assert.deepEqual(c.envoy.readyStatuses, ["AVAILABLE", "DONE"]);
  requireRunSettings(c);
});

test("invalid values are reported together, by name", () => {
  assert.throws(
    () =>
      loadConfig({
        env: {
          ARCHIVER_CONCURRENCY: "0",
          ARCHIVER_PAGE_SIZE: "500",
          ARCHIVER_S3_FORCE_PATH_STYLE: "maybe",
          ENVOY_API_URL: "ftp://x",
        },
        dotenvPath: noFile,
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      ["ARCHIVER_CONCURRENCY", "ARCHIVER_PAGE_SIZE", "ARCHIVER_S3_FORCE_PATH_STYLE", "ENVOY_API_URL"].every(
        (n) => e.message.includes(n),
      ),
  );
  assert.throws(() => loadConfig({ env: { ARCHIVER_S3_PREFIX: "a/../b" }, dotenvPath: noFile }), ConfigError);
});

test("the fingerprint never contains secrets and changes with settings", () => {
  const a = loadConfig({ env: { ENVOY_API_KEY: "envai_live_secret" }, dotenvPath: noFile });
  const b = loadConfig({ env: { ENVOY_API_KEY: "envai_live_other" }, dotenvPath: noFile });
  const c = loadConfig({
    env: { ENVOY_API_KEY: "envai_live_secret", ARCHIVER_CONCURRENCY: "8" },
    dotenvPath: noFile,
  });
  assert.equal(configFingerprint(a), configFingerprint(b), "the key's value does not matter");
  assert.notEqual(configFingerprint(a), configFingerprint(c));
});

test("a settings file holding secrets that others can read is named, with the secrets it holds (names only)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  const file = join(dir, "settings.env");
  writeFileSync(
    file,
    "ENVOY_API_KEY=envai_live_abc\nAWS_SECRET_ACCESS_KEY=wJalr\nAWS_SESSION_TOKEN=\nARCHIVER_SSE=aws:kms\nARCHIVER_SSE_KMS_KEY_ID=k\n",
  );
  const load = (mode: number) => {
    chmodSync(file, mode);
    return loadConfig({ env: {}, dotenvPath: file, requireDotenv: true });
  };
  assert.deepEqual(load(0o644).exposedSettingsFile, {
    path: file,
    mode: 0o644,
    who: "other users",
    secrets: ["AWS_SECRET_ACCESS_KEY", "ENVOY_API_KEY"], // an empty value holds nothing; a KMS key id is no secret
  });
  assert.equal(load(0o640).exposedSettingsFile, undefined, "its group is this user's own");
  assert.equal(load(0o600).exposedSettingsFile, undefined);
  assert.equal(load(0o400).exposedSettingsFile, undefined);
  assert.equal(
    configFingerprint(load(0o644)),
    configFingerprint(load(0o600)),
    "the file's mode is not a setting",
  );

  writeFileSync(file, "ARCHIVER_S3_BUCKET=b\nARCHIVER_CONCURRENCY=2\n");
  assert.equal(load(0o644).exposedSettingsFile, undefined, "no secret in it: nothing to warn about");
});

test("ARCHIVER_GROUP_READABLE: the outputs' readers", () => {
  assert.equal(loadConfig({ env: {}, dotenvPath: noFile }).outputReaders, "owner");
  const c = loadConfig({ env: { ARCHIVER_GROUP_READABLE: "true" }, dotenvPath: noFile });
  assert.equal(c.outputReaders, "group");
});

test("AWS settings from the settings file: endpoint, region, keys; the environment wins; the secret is a secret", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-aws-"));
  const file = join(dir, "s.env");
  writeFileSync(
    file,
    "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000\nAWS_REGION=eu-west-1\nAWS_ACCESS_KEY_ID=AKID\nAWS_SECRET_ACCESS_KEY=s3cr3t-from-file\n",
  );
  const c = loadConfig({ env: {}, dotenvPath: file, requireDotenv: true });
  assert.equal(c.s3.endpoint, "http://127.0.0.1:9000");
  assert.equal(c.s3.region, "eu-west-1");
  assert.deepEqual(c.s3.credentials, { accessKeyId: "AKID", secretAccessKey: "s3cr3t-from-file" });
  assert.ok(secretsOf(c).includes("s3cr3t-from-file"));
  const e = loadConfig({ env: { AWS_REGION: "us-east-2" }, dotenvPath: file, requireDotenv: true });
  assert.equal(e.s3.region, "us-east-2");
  const none = loadConfig({ env: {}, dotenvPath: join(dir, "absent.env") });
  assert.equal(none.s3.credentials, undefined, "no keys: the SDK's own chain");
  assert.equal(configFingerprint(c), configFingerprint({ ...c, s3: { ...c.s3, credentials: undefined } }));
});
