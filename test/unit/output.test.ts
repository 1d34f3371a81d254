/** What a person or a log pipeline reads (issue 20): ISO times, no stack below debug, short lines on a terminal. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { createLogger } from "../../src/observe/logger.js";
import { progressLine, snapshot } from "../../src/observe/progress.js";
import { Tally } from "../../src/observe/tally.js";

const CLI = resolve(import.meta.dirname, "../../src/cli.js");

function sink(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

test("piped logs: JSON lines with ISO times; an error's stack only at debug", () => {
  for (const level of ["info", "debug"] as const) {
    const out = sink();
    const logger = createLogger({ level, destination: out.stream });
    const err = new Error("S3 HeadBucket: the bucket does not exist", { cause: new Error("NoSuchBucket") });
    logger.error({ err }, "run fatal");
    const rec = JSON.parse(out.text().trim()) as { time: unknown; err: { stack?: string; cause: object } };
    assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal("stack" in rec.err, level === "debug", `${level}: stack`);
    assert.equal("stack" in rec.err.cause, level === "debug", `${level}: the cause's stack`);
  }
});

test("a terminal gets one short line a record: local time, level, message, fields on the same line", () => {
  const out = sink();
  const logger = createLogger({ level: "info", pretty: true, destination: out.stream });
  logger.info({ call_id: "call_1", nested: { a: 1, b: [1, 2] } }, "archived");
  logger.error({ err: new Error("boom") }, "recording failed: boom");
  const lines = out.text().trimEnd().split("\n");
  assert.equal(lines.length, 2, out.text());
  assert.match(lines[0]!, /^\[\d\d:\d\d:\d\d\] INFO.*archived.*call_1/);
  assert.ok(!/pid|hostname/.test(out.text()));
  assert.ok(!/\n\s+at /.test(out.text()), "no stack trace");
});

test("progress: MiB with MiB/s, rounded figures", () => {
  const tally = new Tally({}, Date.now() - 3000);
  tally.received(10 * 1024 * 1024 + 12345);
  const p = snapshot(tally.live);
  assert.equal(p.mib_per_s, Math.round(p.mib_per_s * 10) / 10);
  assert.match(progressLine(p), /10\.0 MiB at \d+\.\d MiB\/s/);
});

test("--help is wrapped at word boundaries to the width (80 when piped); subcommand help lists only its own flags", () => {
  const help = (...args: string[]) =>
    execFileSync(process.execPath, [CLI, ...args, "--help"], { encoding: "utf8", env: { PATH: "" } });
  const main = help();
  for (const line of main.split("\n"))
    assert.ok(line.length <= 80 || !/\S\s+\S+\s+\S/.test(line.trim().slice(40)), `too long: ${line}`);
  assert.ok(!/watermark,\n/.test(main), "no sentence broken by a hard line break");
  assert.match(main, /ARCHIVER_PART_QUEUE/, "the program's help lists every setting");
  for (const cmd of [
    "run",
    "worker",
    "verify",
    "manifest",
    "status",
    "reconcile",
    "audit",
    "report",
    "export",
    "hold",
  ]) {
    const text = help(cmd);
    assert.ok(!/ARCHIVER_PART_QUEUE/.test(text), `${cmd} --help does not repeat every setting`);
    assert.ok(
      text.split("\n").every((l) => l.length <= 80),
      `${cmd} --help fits 80 columns`,
    );
  }
});

test("a bad flag value names the flag, in words", () => {
  for (const value of ["0", "abc"]) {
    let err = "";
    try {
      execFileSync(process.execPath, [CLI, "run", "--concurrency", value], {
        encoding: "utf8",
        env: { PATH: "", ENVOY_API_KEY: "k", ARCHIVER_S3_BUCKET: "b" },
        stdio: "pipe",
      });
    } catch (e) {
      err = String((e as { stderr: string }).stderr);
    }
    assert.match(
      err,
      new RegExp(`--concurrency "${value}" \\(ARCHIVER_CONCURRENCY\\): must be a whole number from 1 to 256`),
    );
  }
});
