/**
 * The first hour and the bad day (issue 20): settings that take wherever they are given, read and compliance
 * commands that never pass by mistake, and what an operator sees. The built CLI against the simulator and S3.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import Database from "better-sqlite3";
import { CLI, collect, logsOf, sha256, startRig, summaryOf, type Rig } from "../helpers/env.js";
import { expectedSha256 } from "../../simulator/data.js";

const AWS_NAMES = [
  "AWS_ENDPOINT_URL_S3",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
] as const;

describe("the first hour: settings, read commands, compliance commands", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 6, seed: 20, days: 2, notReadyEvery: 0, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("AWS settings (endpoint, region, keys) only in a --dotenv file reach the S3 client", async () => {
    const file = join(rig.dir, "aws.env");
    writeFileSync(file, AWS_NAMES.map((n) => `${n}=${rig.env[n]}`).join("\n") + "\n");
    const saved = Object.fromEntries(AWS_NAMES.map((n) => [n, rig.env[n]]));
    for (const n of AWS_NAMES) delete rig.env[n];
    try {
      const r = await rig.run(["run", "--json", "--dotenv", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 6);
      assert.ok(!r.stderr.includes(saved.AWS_SECRET_ACCESS_KEY!), "the secret key is never printed");
      // Piped: JSON lines with ISO times, and no warning about a supported Node release.
      for (const l of logsOf(r)) assert.match(String(l.time), /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
      assert.ok(!/end-of-life/.test(r.stderr), "Node 20, 22 and 24 are supported: no warning");
    } finally {
      Object.assign(rig.env, saved);
    }
  });

  test("read commands never create a state DB: a wrong path is an error naming it, not a pass", async () => {
    const typo = join(rig.dir, "typo", "archiver.db");
    for (const args of [["verify"], ["status"], ["manifest", "--format", "jsonl"]]) {
      const r = await rig.run([...args, "--db", typo]);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /does not exist: check ARCHIVER_DB_PATH/, args[0]);
      assert.ok(r.stderr.includes(typo), "the message names the path");
      assert.ok(!existsSync(join(rig.dir, "typo")), `${args[0]} created nothing`);
    }
  });

  test("verify that checked nothing does not pass", async () => {
    const r = await rig.run(["verify", "--json", "--since", "2001-01-01", "--until", "2001-01-31"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).checked, 0);
    assert.match(r.stderr, /nothing was checked/);
    const all = await rig.run(["verify", "--json"]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(JSON.parse(all.stdout).checked, 6);
  });

  test("status and manifest read an auditor's read-only copy of the DB (file and folder read-only)", async () => {
    const ro = join(rig.dir, "copy");
    mkdirSync(ro);
    const copy = join(ro, "archiver.db");
    copyFileSync(rig.dbPath, copy);
    const before = readFileSync(copy);
    chmodSync(copy, 0o444);
    chmodSync(ro, 0o555);
    chmodSync(rig.dir, 0o711); // the auditor may pass through the test's folder to the copy
    // As root, permissions bind nobody: the commands run as an unprivileged user, as an auditor would.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const run = (args: string[]) =>
      collect(
        spawn(process.execPath, [CLI, ...args, "--db", copy], {
          env: { PATH: process.env.PATH ?? "", HOME: ro, ...rig.env, ARCHIVER_DB_PATH: copy },
          cwd: ro,
          stdio: ["ignore", "pipe", "pipe"],
          ...asUser,
        }),
      );
    try {
      const status = await run(["status", "--json"]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).counts.archived, 6);
      const manifest = await run(["manifest", "--format", "jsonl"]);
      assert.equal(manifest.code, 0, manifest.stderr);
      assert.equal(manifest.stdout.trim().split("\n").length, 6);
      assert.match(manifest.stderr, /read-only: this manifest is not recorded/);
    } finally {
      chmodSync(ro, 0o755);
      chmodSync(rig.dir, 0o700);
    }
    assert.deepEqual(readFileSync(copy), before, "the copy is unchanged");
  });

  test("what verify finds missing or altered, the next run archives again from the source, writing over nothing", async () => {
    const keys = (await rig.listKeys("recordings/")).filter((k) => !k.endsWith(".json"));
    const [goneKey, alteredKey] = keys;
    await rig.client.send(new DeleteObjectCommand({ Bucket: rig.bucket, Key: goneKey }));
    const altered = Buffer.from("not the recording");
    await rig.client.send(new PutObjectCommand({ Bucket: rig.bucket, Key: alteredKey, Body: altered }));
    // An object written within a second or so of a transfer's start is taken for another writer's (conflict.ts,
    // Last-Modified has one-second resolution): the altering here is meant as old news, so let time pass.
    await new Promise((r) => setTimeout(r, 2500));

    const v = await rig.run(["verify", "--json"]);
    assert.equal(v.code, 3, v.stderr);
    assert.deepEqual(
      { missing: JSON.parse(v.stdout).missing, mismatched: JSON.parse(v.stdout).mismatched },
      { missing: 1, mismatched: 1 },
    );
    assert.match(v.stderr, /the next `run` archives it again from the source/);

    const r = await rig.run(["run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r).archived, 2, "both archived again by this run");
    const repairedKey = alteredKey!.replace(/\.(m4a|mp4)$/, ".v2.$1");
    const gone = rig.sim.calls.find((c) => goneKey!.includes(c.id))!;
    const changed = rig.sim.calls.find((c) => alteredKey!.includes(c.id))!;
    assert.equal(sha256((await rig.getObject(goneKey!)).body), await expectedSha256(gone));
    assert.deepEqual((await rig.getObject(alteredKey!)).body, altered, "the altered object is left as it is");
    assert.equal(sha256((await rig.getObject(repairedKey)).body), await expectedSha256(changed));

    const again = await rig.run(["verify", "--json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).checked, 6);
    const db = new Database(rig.dbPath, { readonly: true });
    try {
      const verifyRun = db
        .prepare("SELECT details FROM runs WHERE command = 'verify' AND outcome = 'failures'")
        .pluck()
        .get() as string;
      const marked = (JSON.parse(verifyRun) as { marked_for_repair: { call_id: string }[] })
        .marked_for_repair;
      assert.deepEqual(
        marked.map((m) => m.call_id).sort(),
        [gone.id, changed.id].sort(),
        "in the audit trail",
      );
      assert.equal(
        db.prepare("SELECT key FROM calls WHERE call_id = ?").pluck().get(changed.id),
        repairedKey,
        "the state records where the source's bytes are now",
      );
    } finally {
      db.close();
    }
  });

  test("manifest --json prints its summary on stdout with a final newline; the CSV etag is the bare value", async () => {
    const out = join(rig.dir, "m.csv");
    const r = await rig.run(["manifest", "--out", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.endsWith("}\n"));
    assert.equal((JSON.parse(r.stdout) as { rows: number }).rows, 6);
    const [header, ...rows] = readFileSync(out, "utf8").trim().split("\n");
    const etagAt = header!.split(",").indexOf("etag");
    for (const row of rows) assert.match(row.split(",")[etagAt]!, /^[0-9a-f]{32}(-\d+)?$/, row);
    const clash = await rig.run(["manifest", "--json"]);
    assert.equal(clash.code, 2, "stdout cannot carry both the manifest and its summary");
    assert.match(clash.stderr, /--json prints the summary on stdout/);
  });
});

describe("the same figure everywhere: summary, metrics, logs", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 5, seed: 21, days: 1, notReadyEvery: 0, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("recordings found archived or adopted count as already_archived in the metrics too; debug logs say adopted", async () => {
    const first = await rig.run(["run", "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const metricsFile = join(rig.dir, "run.prom");
    const metric = (o: string) =>
      Number(
        new RegExp(`^envoy_archiver_recordings_total\\{outcome="${o}"\\} (\\d+)$`, "m").exec(
          readFileSync(metricsFile, "utf8"),
        )?.[1],
      );
    // Known from the state DB: the summary and the metric agree.
    const again = await rig.run(["run", "--json", "--metrics-file", metricsFile]);
    assert.equal(summaryOf(again).already_archived, 5);
    assert.equal(metric("already_archived"), 5);
    // The state DB lost: each recording is found in the bucket with its bytes and adopted.
    rmSync(rig.dbPath);
    const adopted = await rig.run(["run", "--json", "--metrics-file", metricsFile], { LOG_LEVEL: "debug" });
    assert.equal(adopted.code, 0, adopted.stderr);
    assert.equal(summaryOf(adopted).already_archived, 5);
    assert.equal(summaryOf(adopted).bytes, 0, "nothing stored by this run");
    assert.equal(metric("already_archived"), 5);
    assert.equal(metric("archived"), 0);
    const debug = logsOf(adopted).filter((l) => l.level === 20 && typeof l.call_id === "string");
    assert.ok(
      debug.some((l) => /^adopted/.test(String(l.msg))),
      "debug logs say adopted",
    );
    assert.ok(!debug.some((l) => l.msg === "archived"), "never 'archived' for an adopted recording");
  });
});

describe("permanent failures stay visible", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 2, seed: 22, days: 1, notReadyEvery: 0, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("later runs, their metrics and status keep naming them (call ids, reasons) until they are dealt with", async () => {
    rig.sim.setFaults({ sizeMismatch: { firstAttempts: 1000 }, mediaTruncate: { firstAttempts: 1000 } });
    const first = await rig.run(["run", "--json"], { ARCHIVER_MAX_RETRIES: "0" });
    assert.equal(first.code, 3, first.stderr);
    assert.equal(summaryOf(first).failed_permanently, 2);
    const metricsFile = join(rig.dir, "run.prom");
    const later = await rig.run(["run", "--json", "--metrics-file", metricsFile]);
    assert.equal(later.code, 0, later.stderr);
    assert.equal(summaryOf(later).failed_permanently, 2, "the next run's summary still counts them");
    assert.match(readFileSync(metricsFile, "utf8"), /^envoy_archiver_failed_permanently 2$/m);
    const text = await rig.run(["run"]);
    assert.match(
      text.stdout,
      /failed for good\s+2 in the state DB \(2 from earlier runs\): `status` lists them/,
    );

    const status = await rig.run(["status", "--json"]);
    const failures = (JSON.parse(status.stdout) as { failures: { permanent: number; recent: unknown[] } })
      .failures;
    assert.equal(failures.permanent, 2);
    const ids = rig.sim.calls.map((c) => c.id).sort();
    const recent = failures.recent as { call_id: string; error_kind: string; last_error: string }[];
    assert.deepEqual(recent.map((f) => f.call_id).sort(), ids);
    for (const f of recent) {
      assert.equal(f.error_kind, "permanent");
      assert.match(f.last_error, /size mismatch/);
    }
    const human = await rig.run(["status"]);
    for (const id of ids)
      assert.match(human.stdout, new RegExp(`${id}\\s+permanent, \\d+ attempts?: .*size mismatch`));
  });
});

describe("--dry-run is the pre-flight check", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 3, seed: 23, days: 1, notReadyEvery: 0, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("it checks the bucket and the credentials, and says how many bytes would move", async () => {
    const down = await rig.run(["run", "--dry-run", "--json"], {
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:1",
      ARCHIVER_MAX_RETRIES: "0",
    });
    assert.equal(down.code, 1, "S3 unreachable fails the pre-flight check");
    assert.match(down.stderr, /S3 HeadBucket: .*ECONNREFUSED.*check AWS_ENDPOINT_URL_S3/);
    const denied = await rig.run(["run", "--dry-run", "--json"], { AWS_SECRET_ACCESS_KEY: "wrong-secret" });
    assert.equal(denied.code, 1, "credentials S3 refuses fail it too");
    const r = await rig.run(["run", "--dry-run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.would_archive, 3);
    assert.equal(
      s.would_archive_bytes,
      rig.sim.calls.reduce((n, c) => n + c.recording.size, 0),
    );
    assert.deepEqual(await rig.listKeys(), [], "nothing written");
    const text = await rig.run(["run", "--dry-run"]);
    assert.match(text.stdout, /would archive\s+3 \(\d+\.\d MiB; bucket and credentials checked\)/);
  });
});

describe("counts add up", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 6, seed: 24, days: 1, notReadyEvery: 2, noRecordingEvery: 0 } });
  });
  after(() => rig.close());

  test("calls waiting from earlier runs are counted as looked at again: the outcomes add up to the whole", async () => {
    const first = await rig.run(["run", "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const notReady = summaryOf(first).not_ready as number;
    assert.ok(notReady > 0);
    // A backfill of a window without calls: only the waiting ones are looked at.
    const r = await rig.run(["run", "--json", "--since", "2001-01-01", "--until", "2001-01-02"]);
    const s = summaryOf(r) as Record<string, number>;
    assert.equal(s.listed, 0);
    assert.equal(s.from_earlier_runs, notReady);
    const outcomes = [
      "archived",
      "already_archived",
      "not_ready",
      "no_recording",
      "failed",
      "previously_failed",
    ];
    assert.equal(
      outcomes.reduce((n, k) => n + s[k]!, 0),
      s.listed! + s.from_earlier_runs!,
    );
    const text = await rig.run(["run", "--since", "2001-01-01", "--until", "2001-01-02"]);
    assert.match(
      text.stdout,
      new RegExp(`listed\\s+0 \\(and ${notReady} waiting from earlier runs, looked at again\\)`),
    );
  });
});

describe("a failure names its side and the setting to check", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ calls: { count: 1, seed: 25, days: 1 } });
  });
  after(() => rig.close());

  test("the Envoy API unreachable: named with ENVOY_API_URL, no stack trace below debug", async () => {
    const r = await rig.run(["run", "--json"], {
      ENVOY_API_URL: "http://127.0.0.1:1",
      ARCHIVER_MAX_RETRIES: "0",
    });
    assert.equal(r.code, 1, r.stderr);
    const error = String(summaryOf(r).error);
    assert.match(
      error,
      /^Envoy API list calls: no answer from http:\/\/127\.0\.0\.1:1\/? \(.*ECONNREFUSED.*\): check ENVOY_API_URL/,
    );
    assert.ok(!/"stack"/.test(r.stderr), "no stack trace at info");
    const debug = await rig.run(["run", "--json"], {
      ENVOY_API_URL: "http://127.0.0.1:1",
      ARCHIVER_MAX_RETRIES: "0",
      LOG_LEVEL: "debug",
    });
    assert.ok(/"stack"/.test(debug.stderr), "the stack at debug");
  });
});
