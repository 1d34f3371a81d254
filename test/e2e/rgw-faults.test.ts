/**
 * Real-world faults II against Ceph RGW, where the server's behaviour matters: RGW checks request time as AWS does
 * (15 minutes), answers a completion again instead of NoSuchUpload, and ignores If-None-Match on
 * CompleteMultipartUpload (and on PUT in versioned buckets). The CLI runs under `faketime` for a wrong clock; a
 * pass-through proxy in front of RGW loses or withholds the answers of writes that RGW applied.
 *
 * Runs only with ARCHIVER_TEST_S3=rgw (RGW at ARCHIVER_TEST_S3_ENDPOINT, default http://127.0.0.1:7480, started by
 * scripts/ceph-rgw.sh); each test creates its own uniquely named bucket and removes it, every version included.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../simulator/server.js";
import { expectedSha256 } from "../../simulator/data.js";
import { CLI, collect, logsOf, sha256, summaryOf, type CliResult } from "../helpers/env.js";

const MiB = 1024 * 1024;
const MIN = 60_000;
const ENDPOINT = process.env.ARCHIVER_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480";
const CREDENTIALS = { accessKeyId: "archiver", secretAccessKey: "archiver-secret" };
const SKIP =
  process.env.ARCHIVER_TEST_S3 === "rgw" ? false : "runs against Ceph RGW only (ARCHIVER_TEST_S3=rgw)";
const NO_FAKETIME =
  spawnSync("faketime", ["-f", "+0", "true"]).status === 0
    ? false
    : "needs faketime (Debian package faketime)";
const PART = { ARCHIVER_PART_SIZE_MB: "5" };

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  /** A CopyObject (on this branch the archiver copies a multipart object onto itself to attach `sha256`). */
  copy: boolean;
}

/** Which answers the proxy loses (applied by RGW, connection dropped) or withholds (never sent). */
interface AnswerFaults {
  drop?: (r: Seen) => boolean;
  hold?: (r: Seen) => boolean;
}

/** A pass-through in front of RGW (headers and body unchanged, so RGW checks every signature). */
async function startProxy(faults: { current: AnswerFaults }, seen: Seen[]) {
  const upstream = new URL(ENDPOINT);
  const sockets = new Set<Socket>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const r: Seen = {
      method: req.method ?? "GET",
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      copy: "x-amz-copy-source" in req.headers,
    };
    seen.push(r);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: string[] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
        if (req.rawHeaders[i]!.toLowerCase() !== "expect")
          headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (answer) => {
          if (faults.current.drop?.(r)) return void answer.resume().on("end", () => req.socket.destroy());
          if (faults.current.hold?.(r)) return void answer.resume();
          res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
          answer.pipe(res);
        },
      );
      out.on("error", () => req.socket.destroy());
      out.end(Buffer.concat(chunks));
    });
  };
  const server = createServer(handle);
  server.on("connection", (c: Socket) => {
    sockets.add(c);
    c.on("close", () => sockets.delete(c));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => {
      for (const c of sockets) c.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface RgwRig {
  versioned: boolean;
  sim: Simulator;
  s3: S3Client;
  bucket: string;
  dir: string;
  dbPath: string;
  faults: { current: AnswerFaults };
  /** Requests that went through the proxy. */
  seen: Seen[];
  spawn(args: string[], env?: Record<string, string>, clock?: string): ChildProcess;
  run(args: string[], env?: Record<string, string>, clock?: string): Promise<CliResult>;
  keys(): Promise<string[]>;
  body(key: string): Promise<Buffer>;
  /** Versions of exactly this key. */
  versions(key: string): Promise<string[]>;
  close(): Promise<void>;
}

async function startRgwRig(sim: SimulatorOptions, opts: { versioned?: boolean } = {}): Promise<RgwRig> {
  const s3 = new S3Client({
    endpoint: ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  const bucket = `faults-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  if (opts.versioned)
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }),
    );
  const simulator = await startSimulator(sim);
  const faults = { current: {} as AnswerFaults };
  const seen: Seen[] = [];
  const proxy = await startProxy(faults, seen);
  const dir = mkdtempSync(join(tmpdir(), "envoy-archiver-rgw-"));
  const dbPath = join(dir, "state.db");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    NODE_OPTIONS: "",
    AWS_ENDPOINT_URL_S3: proxy.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    ARCHIVER_S3_FORCE_PATH_STYLE: "true",
    ENVOY_API_URL: simulator.apiUrl,
    ENVOY_API_KEY: simulator.apiKey,
    ARCHIVER_S3_BUCKET: bucket,
    ARCHIVER_DB_PATH: dbPath,
    ARCHIVER_ALLOW_INSECURE_URLS: "true",
    LOG_LEVEL: "info",
  };
  const listVersions = async (prefix: string) => {
    const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
    return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])];
  };
  const rig: RgwRig = {
    versioned: opts.versioned === true,
    sim: simulator,
    s3,
    bucket,
    dir,
    dbPath,
    faults,
    seen,
    spawn(args, extra = {}, clock) {
      const [cmd, argv] = clock
        ? ["faketime", ["-f", clock, process.execPath, CLI, ...args]]
        : [process.execPath, [CLI, ...args]];
      return spawn(cmd, argv, { env: { ...env, ...extra }, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    },
    run: (args, extra, clock) => collect(rig.spawn(args, extra, clock)),
    async keys() {
      const keys = (await listVersions("")).filter((v) => v.Key && "Size" in v).map((v) => v.Key!);
      return [...new Set(keys)].sort();
    },
    async body(key) {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    async versions(key) {
      return (await listVersions(key)).filter((v) => v.Key === key).map((v) => v.VersionId ?? "null");
    },
    async close() {
      for (let round = 0; round < 10; round++) {
        const all = await listVersions("");
        if (all.length === 0) break;
        for (const v of all)
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId }));
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      s3.destroy();
      await proxy.close();
      await simulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/**
 * Every ready recording is in the bucket, byte-exact, and the state DB says so; each object has one version, plus
 * one per CopyObject onto it (which attaches `sha256` to a multipart object where the archiver still copies).
 */
async function assertArchived(rig: RgwRig, dbPath = rig.dbPath): Promise<void> {
  const keys = await rig.keys();
  const db = new Database(dbPath, { readonly: true });
  try {
    for (const c of rig.sim.calls.filter((x) => x.recording.hasRecording && x.recording.ready)) {
      const key = keys.find((k) => k.endsWith(`${c.id}.m4a`));
      assert.ok(key, `${c.id} archived`);
      const want = await expectedSha256(c);
      assert.equal(sha256(await rig.body(key)), want, `${key} byte-exact`);
      const copies = rig.versioned ? rig.seen.filter((r) => r.copy && r.path.endsWith(key)).length : 0;
      assert.equal((await rig.versions(key)).length, 1 + copies, `${key}: one version (${copies} copies)`);
      assert.equal((await rig.versions(`${key}.json`)).length, 1, `${key}.json: one version`);
      const row = db.prepare("SELECT status, sha256 FROM calls WHERE call_id = ?").get(c.id);
      assert.deepEqual(row, { status: "archived", sha256: want }, `${c.id} state`);
    }
  } finally {
    db.close();
  }
}

const isCompletion = (r: Seen) => r.method === "POST" && r.query.has("uploadId");
const isObjectPut = (r: Seen) =>
  r.method === "PUT" && !r.query.has("partNumber") && !r.copy && /\.m4a$/.test(r.path);
const count = (seen: Seen[], f: (r: Seen) => boolean, id: string) =>
  seen.filter((r) => f(r) && r.path.includes(id)).length;

describe("Ceph RGW: a clock 20 minutes off (the CLI under faketime)", { skip: SKIP || NO_FAKETIME }, () => {
  for (const clock of ["+20m", "-20m"]) {
    test(`clock ${clock}: everything archived, signed and judged by the servers' clocks`, async (t) => {
      const rig = await startRgwRig({
        calls: { count: 6, seed: 61, days: 2, sizeBytes: { min: 200_000, max: 7 * MiB } },
      });
      try {
        const r = await rig.run(["run", "--json"], PART, clock);
        assert.equal(r.code, 0, r.stderr);
        const s = summaryOf(r);
        assert.equal(s.archived, 6);
        const offset = s.clock_offset_ms as { s3: number; api: number };
        const want = clock === "+20m" ? -20 * MIN : 20 * MIN;
        assert.ok(Math.abs(offset.s3 - want) < 5000, `S3 offset ${offset.s3}`);
        assert.ok(Math.abs(offset.api - want) < 5000, `API offset ${offset.api}`);
        assert.equal(rig.sim.stats.recordingRequests, 6, "no media URL looked expired");
        assert.ok(
          logsOf(r).some((l) => l.code === "clock_skew_corrected"),
          "the first refusal was corrected",
        );
        await assertArchived(rig);
        const refused = logsOf(r).filter((l) => l.code === "clock_skew_corrected").length;
        assert.equal(refused, 1, "only the first request was refused; every later one was signed right");
        t.diagnostic(
          `figures: clock ${clock}: ${String(s.archived)}/6 archived, S3 offset ${offset.s3} ms, API offset ${offset.api} ms, ${refused} request(s) refused and re-signed, ${rig.sim.stats.recordingRequests} recording requests (no URL refreshed)`,
        );
      } finally {
        await rig.close();
      }
    });
  }
});

describe("Ceph RGW: answers lost after RGW applied the write (versioned bucket)", { skip: SKIP }, () => {
  test("a lost answer to a PUT or a completion: found in the bucket, nothing sent twice, one version each", async (t) => {
    const rig = await startRgwRig(
      { calls: { count: 4, seed: 62, days: 1, sizeBytes: { min: 300_000, max: 12 * MiB } } },
      { versioned: true },
    );
    try {
      const dropped = new Set<string>();
      const first = (r: Seen) => (dropped.has(r.path) ? false : (dropped.add(r.path), true));
      rig.faults.current = { drop: (r) => (isCompletion(r) || isObjectPut(r)) && first(r) };
      const r = await rig.run(["run", "--json"], PART);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 4);
      assert.equal(dropped.size, 4, "one answer lost per recording");
      for (const c of rig.sim.calls) {
        assert.equal(rig.sim.stats.mediaRequestsByCall[c.id], 1, `${c.id} downloaded once`);
        assert.equal(
          count(rig.seen, isCompletion, c.id) + count(rig.seen, isObjectPut, c.id),
          1,
          "written once",
        );
      }
      await assertArchived(rig);
      const completions = rig.seen.filter(isCompletion).length;
      const puts = rig.seen.filter(isObjectPut).length;
      t.diagnostic(
        `figures: lost answers: ${dropped.size} answers lost (${completions} completions and ${puts} recording PUTs sent in all), ${String(summaryOf(r).archived)}/4 archived, ${rig.sim.stats.mediaRequests} media requests, one version per recording and sidecar (plus this branch's CopyObject)`,
      );
    } finally {
      await rig.close();
    }
  });

  test("killed while the completion's answer is withheld: the next run records it, downloading and uploading nothing", async (t) => {
    const rig = await startRgwRig(
      { calls: { count: 1, seed: 63, days: 1, sizeBytes: 12 * MiB } },
      { versioned: true },
    );
    try {
      const id = rig.sim.calls[0]!.id;
      rig.faults.current = { hold: isCompletion };
      const child = rig.spawn(["run", "--json"], PART);
      const done = collect(child);
      const landed = async () => (await rig.keys()).some((k) => k.endsWith(`${id}.m4a`));
      for (let i = 0; i < 600 && !(await landed()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await landed(), "RGW completed the upload");
      child.kill("SIGKILL");
      await done;
      rig.faults.current = {};
      rig.seen.length = 0;
      const media = rig.sim.stats.mediaRequestsByCall[id];
      const r = await rig.run(["run", "--json"], PART);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 1);
      assert.equal(rig.sim.stats.mediaRequestsByCall[id], media, "not downloaded again");
      const uploads = rig.seen.filter(
        (x) =>
          (x.method === "PUT" && x.path.endsWith(".m4a")) || (x.method === "POST" && x.path.endsWith(".m4a")),
      );
      assert.deepEqual(uploads, [], "nothing uploaded again");
      await assertArchived(rig);
      t.diagnostic(
        `figures: killed during completion: next run ${String(summaryOf(r).archived)} archived, ${rig.sim.stats.mediaRequestsByCall[id]! - media!} downloads, ${uploads.length} uploads, ${(await rig.versions((await rig.keys()).find((k) => k.endsWith(".m4a"))!)).length} version`,
      );
    } finally {
      await rig.close();
    }
  });
});

describe("Ceph RGW: two writers (versioned bucket; RGW ignores If-None-Match there)", { skip: SKIP }, () => {
  // Multipart recordings: where RGW ignores If-None-Match, the check of the key and of other writers' uploads
  // before completing keeps one version. (Single PUTs in a versioned bucket are checked before writing by the
  // Object Lock work, issue 11; here they would rely on the ignored condition.)
  test("two hosts archive the same calls at once: one version per recording, both runs clean", async (t) => {
    const rig = await startRgwRig(
      { calls: { count: 4, seed: 64, days: 1, sizeBytes: { min: 6 * MiB, max: 12 * MiB } } },
      { versioned: true },
    );
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 8 * MiB });
      const runs = await Promise.all(
        ["a", "b"].map((h) => rig.run(["run", "--json", "--db", join(rig.dir, `${h}.db`)], PART)),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      for (const s of runs.map(summaryOf))
        assert.equal(Number(s.archived) + Number(s.already_archived), 4, "each run accounts for every call");
      for (const h of ["a", "b"]) await assertArchived(rig, join(rig.dir, `${h}.db`));
      const [a, b] = runs.map(summaryOf);
      const yielded = runs.flatMap(logsOf).filter((l) => /adopted/.test(String(l.msg))).length;
      t.diagnostic(
        `figures: two hosts: run a archived ${String(a!.archived)} + adopted ${String(a!.already_archived)}, run b archived ${String(b!.archived)} + adopted ${String(b!.already_archived)}; ${yielded} adoption log lines; ${rig.seen.filter((x) => isCompletion(x)).length} completions sent for 4 recordings; one version each`,
      );
    } finally {
      await rig.close();
    }
  });
});

describe("Ceph RGW: a source that changes after it was archived (versioned bucket)", { skip: SKIP }, () => {
  test("the original keeps its one version; the new bytes go under .v2; the change is recorded", async (t) => {
    const rig = await startRgwRig(
      { calls: { count: 2, seed: 65, days: 1, sizeBytes: 7 * MiB } },
      { versioned: true },
    );
    try {
      assert.equal((await rig.run(["run", "--json"], PART)).code, 0);
      const originals = new Map<string, string[]>();
      for (const k of (await rig.keys()).filter((k) => k.endsWith(".m4a")))
        originals.set(k, await rig.versions(k));
      await new Promise((r) => setTimeout(r, 2500));
      const changed = rig.sim.calls[0]!;
      changed.recording.mediaSeed ^= 0x77;
      const db = join(rig.dir, "lost.db");
      const r = await rig.run(["run", "--json", "--db", db], {
        ...PART,
        ARCHIVER_ON_SOURCE_CHANGE: "archive",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).source_changed, 1, r.stderr);
      for (const [k, v] of originals)
        assert.deepEqual(await rig.versions(k), v, `${k} untouched: no version added`);
      const v2 = (await rig.keys()).filter((k) => k.endsWith(".v2.m4a"));
      assert.equal(v2.length, 1, String(v2));
      assert.ok(v2[0]!.includes(changed.id));
      assert.equal(sha256(await rig.body(v2[0]!)), await expectedSha256(changed));
      const state = new Database(db, { readonly: true });
      const row = state.prepare("SELECT source_sha256, new_key FROM source_changes").get();
      state.close();
      assert.deepEqual(row, { source_sha256: await expectedSha256(changed), new_key: v2[0] });
      t.diagnostic(
        `figures: changed source: ${String(summaryOf(r).source_changed)} change recorded, ${originals.size} originals with ${[...originals.values()].map((v) => v.length).join("/")} version(s) before and after, new bytes in ${v2[0]}`,
      );
    } finally {
      await rig.close();
    }
  });
});
