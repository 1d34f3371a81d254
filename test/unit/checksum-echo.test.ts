/** A server that does not answer back the CRC32C/SHA-256 checksum it was sent is named to the user, once per run. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/observe/logger.js";
import { ChecksumEcho } from "../../src/s3/checksum-echo.js";
import type { SinkSettings } from "../../src/s3/s3.js";

function echoWithLog(alg: SinkSettings["checksum"]): { echo: ChecksumEcho; lines: () => string[] } {
  let out = "";
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const echo = new ChecksumEcho(alg, createLogger({ level: "info", destination }));
  return { echo, lines: () => out.split("\n").filter(Boolean) };
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
  assert.equal(lines().length, 1, "once per run");
  const rec = JSON.parse(lines()[0]!) as { level: number; msg: string };
  assert.equal(rec.level, 40);
  assert.match(rec.msg, /answered UploadPart 1 k without x-amz-checksum-crc32c/);
  assert.match(rec.msg, /proven instead by its ETag against the MD5 of the bytes sent/);
  const sha = echoWithLog("SHA256");
  sha.echo.check("PutObject k", { checksumCRC32C: "x" });
  assert.match(sha.lines()[0] ?? "", /without x-amz-checksum-sha256/);
});
