/**
 * A server that does not answer back the CRC32C/SHA-256 checksum it was sent is named to the user, once per
 * process: the worker's runs share one logger, and each run has its own ChecksumEcho.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { Logger } from "pino";
import { createLogger } from "../../src/observe/logger.js";
import { ChecksumEcho } from "../../src/s3/checksum-echo.js";
import type { SinkSettings } from "../../src/s3/s3.js";

function echoWithLog(alg: SinkSettings["checksum"]): {
  echo: ChecksumEcho;
  lines: () => string[];
  logger: Logger;
} {
  let out = "";
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ level: "info", destination });
  return { echo: new ChecksumEcho(alg, logger), lines: () => out.split("\n").filter(Boolean), logger };
}

test("answers that carry the checksum back, or a checksum the archiver did not ask the SDK for: no warning", () => {
  for (const [alg, answer] of [
    ["CRC32C", { checksumCRC32C: "bR7ERw==" }],
    ["SHA256", { checksumSHA256: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" }],
    ["MD5", {}],
    ["NONE", {}],
    [undefined, {}],
  ] as const) {
    const { echo, lines } = echoWithLog(alg);
    echo.check("PutObject k", answer);
    assert.deepEqual(lines(), [], String(alg));
  }
});

test("an answer without the checksum sent: one warning naming the request, the header and the ETag proof", () => {
  const { echo, lines } = echoWithLog("CRC32C");
  echo.check("UploadPart 1 k", { checksumSHA256: "not the one sent" });
  echo.check("PutObject k2", {});
  assert.equal(lines().length, 1, "once");
  const rec = JSON.parse(lines()[0]!) as { level: number; msg: string };
  assert.equal(rec.level, 40);
  assert.match(rec.msg, /answered UploadPart 1 k without x-amz-checksum-crc32c/);
  assert.match(rec.msg, /proven instead by its ETag against the MD5 of the bytes sent/);
  const sha = echoWithLog("SHA256");
  sha.echo.check("PutObject k", { checksumCRC32C: "x" });
  assert.match(sha.lines()[0] ?? "", /without x-amz-checksum-sha256/);
});

test("the next run in the same process (the worker's next tick) does not say it again", () => {
  const { echo, lines, logger } = echoWithLog("CRC32C");
  echo.check("PutObject k", {});
  const nextRun = new ChecksumEcho("CRC32C", logger);
  nextRun.check("PutObject k2", {});
  nextRun.check("PutObject k3", {});
  assert.equal(lines().length, 1, lines().join("\n"));
  assert.match(lines()[0]!, /said once per process/);
});
