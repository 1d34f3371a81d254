/**
 * `npm run bench`: the archiver against rclone, same servers, same parallelism, alternating, several rounds.
 * Reports medians of wall time, CPU seconds (user+sys) and peak RSS (GNU time -v), and the archiver/rclone
 * ratios; appends the results to bench/RESULTS.md.
 *
 *   npm run bench -- [--rounds 3] [--only W1,W3] [--quick] [--env NAME=VALUE ...] [--cli path] [--label text]
 *
 * `--cli` measures another build of the archiver (e.g. another tree's dist/src/cli.js) with this harness and
 * these servers; `--label` names the section written to RESULTS.md.
 * `--env` (repeatable) adds a setting to the archiver's environment, e.g. `--env ARCHIVER_PART_SIZE_MB=8` or
 * `--env NODE_OPTIONS=--max-semi-space-size=4`, to measure a tuning before making it a default.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { archiverEnv, median, ROOT, startServers, timed, type Measure } from "./harness.js";
import { formatSizeSummary, logNormalSizes, summarizeSizes } from "./sizes.js";
import { checkStoredAndDrop } from "./stored.js";

const RESULTS = join(ROOT, "bench/RESULTS.md");
const MiB = 1024 * 1024;

if (process.argv.includes("--completeness")) {
  const { completenessBench } = await import("./completeness.js");
  completenessBench(process.argv.slice(2).filter((a) => a !== "--completeness"));
  process.exit(0);
}

if (process.argv.includes("--scale")) {
  const { scaleBench } = await import("./scale.js");
  await scaleBench(process.argv.slice(2).filter((a) => a !== "--scale"));
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    cli: { type: "string", default: join(ROOT, "dist/src/cli.js") },
    label: { type: "string" },
  },
});
const CLI = resolve(values.cli);
const extraEnv: Record<string, string> = {};
for (const kv of values.env) {
  const i = kv.indexOf("=");
  if (i <= 0) throw new Error(`--env expects NAME=VALUE, got ${JSON.stringify(kv)}`);
  extraEnv[kv.slice(0, i)] = kv.slice(i + 1);
}
const rounds = Number(values.rounds);
const scale = values.quick ? 0.25 : 1;

interface Workload {
  id: string;
  title: string;
  count: number;
  /** One size for every recording, or one per recording (W5). */
  size: number | number[];
  concurrency: number;
  rps?: number;
  rclone: boolean;
  /** Targets against rclone: wall ≤ 1.0× (unless false), CPU ≤ 2×, peak RSS ≤ rssMiB. */
  targets?: { wall: boolean; rssMiB: number };
}

/** W5: 400 recordings, ln(size) normal around 4 MB (σ = 1), clipped to 0.2–40 MB, the same sizes every time. */
const W5_SIZES = { median: 4e6, sigma: 1, min: 200_000, max: 40e6, seed: 13 };

const workloads: Workload[] = [
  {
    id: "W1",
    title: "40 × 8 MiB, concurrency 8",
    count: 40,
    size: 8 * MiB,
    concurrency: 8,
    rclone: true,
    targets: { wall: true, rssMiB: 150 },
  },
  {
    id: "W2",
    title: "2,000 × 100 KB, concurrency 16",
    count: 2000,
    size: 100_000,
    concurrency: 16,
    rclone: true,
    targets: { wall: true, rssMiB: 150 },
  },
  {
    id: "W3",
    title: "1 × 512 MiB, concurrency 1",
    count: 1,
    size: 512 * MiB,
    concurrency: 1,
    rclone: true,
    targets: { wall: false, rssMiB: 160 },
  },
  {
    id: "W4",
    title: "500 small behind a 20 req/s API limit",
    count: 500,
    size: 20_000,
    concurrency: 8,
    rps: 20,
    rclone: false,
  },
  {
    id: "W5",
    title: "400, log-normal around 4 MB (0.2–40 MB), concurrency 8",
    count: 400,
    size: 0, // drawn below, once the count is scaled
    concurrency: 8,
    rclone: true,
    targets: { wall: true, rssMiB: 200 },
  },
]
  .filter((w) => !values.only || values.only.split(",").includes(w.id))
  .map((w) => {
    const count = Math.max(1, Math.round(w.count * (w.id === "W3" ? 1 : scale)));
    const size =
      w.id === "W5"
        ? logNormalSizes({ count, ...W5_SIZES })
        : w.id === "W3"
          ? Math.round((w.size as number) * scale)
          : w.size;
    return { ...w, count, size };
  });

const totalBytes = (w: Workload) =>
  typeof w.size === "number" ? w.count * w.size : w.size.reduce((a, b) => a + b, 0);
const loadText = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");

function ensureTools(): void {
  const missing = ["/usr/bin/time", "rclone"].filter((t) => {
    try {
      execFileSync("sh", ["-c", `command -v ${t}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  if (process.getuid?.() === 0) {
    process.stderr.write(`installing ${missing.join(", ")} (Debian packages time, rclone)…\n`);
    execFileSync(
      "sh",
      ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time rclone"],
      {
        stdio: "inherit",
      },
    );
  } else {
    throw new Error(`missing ${missing.join(", ")}: apt-get install time rclone`);
  }
}

interface Row {
  workload: Workload;
  archiver: Measure[];
  rclone: Measure[];
  variant?: string;
  notes: string[];
}

async function benchWorkload(
  w: Workload,
  variant: { name: string; env: Record<string, string> } | null,
): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${w.id}-`));
  const expected = { count: w.count, bytes: totalBytes(w) };
  const servers = await startServers({
    calls: { count: w.count, seed: 99, days: 5, sizeBytes: w.size },
    ...(w.rps ? { rateLimit: { rps: w.rps } } : {}),
    dir: join(dir, "s3"),
  });
  const { info } = servers;
  const row: Row = {
    workload: w,
    archiver: [],
    rclone: [],
    notes: [],
    ...(variant ? { variant: variant.name } : {}),
  };
  const bucketDir = join(info.s3Dir ?? "", info.bucket ?? "");
  const loadAtStart = loadText();
  try {
    for (let r = 0; r < rounds; r++) {
      const env = archiverEnv(info, dir, {
        ARCHIVER_S3_PREFIX: `archiver-${r}`,
        ARCHIVER_DB_PATH: join(dir, `state-${r}.db`),
        ARCHIVER_CONCURRENCY: String(w.concurrency),
        ...extraEnv,
        ...(variant?.env ?? {}),
      });
      const a = await timed(process.execPath, [CLI, "run", "--json", "--quiet"], env);
      const json = JSON.parse(a.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
      if (a.code !== 0 || json.archived !== w.count || json.bytes !== expected.bytes)
        throw new Error(
          `${w.id}: archiver exited ${a.code}, archived ${String(json.archived)} of ${w.count}, ${String(json.bytes)} of ${expected.bytes} bytes\n${a.stderr.slice(-2000)}`,
        );
      // The recordings themselves (not their .json sidecars), read back from the bucket.
      checkStoredAndDrop(`${w.id}: archiver`, bucketDir, `archiver-${r}`, /\.(m4a|mp4)$/, expected);
      row.archiver.push({ wall: a.wall, cpu: a.cpu, rssMiB: a.rssMiB, json });
      if (!w.rclone) continue;
      const renv: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: dir,
        RCLONE_CONFIG_SRC_TYPE: "http",
        RCLONE_CONFIG_SRC_URL: `${info.baseUrl}/files/`,
        RCLONE_CONFIG_DST_TYPE: "s3",
        RCLONE_CONFIG_DST_PROVIDER: "Other",
        RCLONE_CONFIG_DST_ENDPOINT: info.s3Endpoint,
        RCLONE_CONFIG_DST_ACCESS_KEY_ID: "S3RVER",
        RCLONE_CONFIG_DST_SECRET_ACCESS_KEY: "S3RVER",
        RCLONE_CONFIG_DST_REGION: "us-east-1",
        RCLONE_CONFIG_DST_FORCE_PATH_STYLE: "true",
      }; // no AWS_CA_BUNDLE: rclone refuses to start with it set
      const b = await timed(
        "rclone",
        [
          "copy",
          "src:",
          `dst:${info.bucket}/rclone-${r}`,
          "--transfers",
          String(w.concurrency),
          "--checkers",
          String(w.concurrency),
          "--s3-no-check-bucket",
          "--s3-upload-cutoff",
          "16M",
          "--s3-chunk-size",
          "16M",
          "--s3-upload-concurrency",
          "2",
          "--no-traverse",
          "--stats",
          "0",
        ],
        renv,
      );
      if (b.code !== 0) throw new Error(`${w.id}: rclone exited ${b.code}\n${b.stderr.slice(-2000)}`);
      checkStoredAndDrop(`${w.id}: rclone`, bucketDir, `rclone-${r}`, /./, expected);
      row.rclone.push({ wall: b.wall, cpu: b.cpu, rssMiB: b.rssMiB });
    }
    row.notes.push(`load average (1, 5, 15 min) ${loadAtStart} at the start, ${loadText()} at the end`);
    row.notes.push(`each round: ${perRound(row)}`);
  } finally {
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

/** The rounds behind the medians, so a reader can see the spread: wall, CPU and RSS, archiver | rclone. */
function perRound(row: Row): string {
  const list = (ms: Measure[], pick: (m: Measure) => number, digits: number) =>
    ms.map((m) => pick(m).toFixed(digits)).join(", ");
  const both = (pick: (m: Measure) => number, digits: number, unit: string) =>
    `${list(row.archiver, pick, digits)}${row.rclone.length ? ` | ${list(row.rclone, pick, digits)}` : ""} ${unit}`;
  return `wall ${both((m) => m.wall, 2, "s")}; CPU ${both((m) => m.cpu, 2, "s")}; peak RSS ${both((m) => m.rssMiB, 0, "MiB")} (archiver${row.rclone.length ? " | rclone" : ""})`;
}

function fmtRow(row: Row): string[] {
  const w = row.workload;
  const am = {
    wall: median(row.archiver.map((m) => m.wall)),
    cpu: median(row.archiver.map((m) => m.cpu)),
    rss: median(row.archiver.map((m) => m.rssMiB)),
  };
  const lines: string[] = [];
  if (row.rclone.length > 0) {
    const rm = {
      wall: median(row.rclone.map((m) => m.wall)),
      cpu: median(row.rclone.map((m) => m.cpu)),
      rss: median(row.rclone.map((m) => m.rssMiB)),
    };
    const t = w.targets ?? { wall: true, rssMiB: 150 };
    lines.push(
      `| ${w.id} | ${w.title} | ${am.wall.toFixed(2)} s | ${rm.wall.toFixed(2)} s | **${(am.wall / rm.wall).toFixed(2)}×** | ${am.cpu.toFixed(2)} s | ${rm.cpu.toFixed(2)} s | **${(am.cpu / rm.cpu).toFixed(2)}×** | ${am.rss.toFixed(0)} MiB | ${rm.rss.toFixed(0)} MiB | ` +
        [
          t.wall ? `wall ≤1.0×: ${am.wall <= rm.wall ? "PASS" : "FAIL"}` : null,
          `CPU ≤2×: ${am.cpu <= 2 * rm.cpu ? "PASS" : "FAIL"}`,
          `RSS ≤${t.rssMiB} MiB: ${am.rss <= t.rssMiB ? "PASS" : "FAIL"}`,
        ]
          .filter(Boolean)
          .join(", ") +
        " |",
    );
  } else {
    const api = median(row.archiver.map((m) => Number(m.json?.api_requests)));
    const r429 = median(row.archiver.map((m) => Number(m.json?.rate_limited)));
    // The ideal is the requests that had to succeed, at the limit: a refused request is overhead, not work.
    const ideal = (api - r429) / (w.rps ?? 1);
    lines.push(
      `| ${w.id}${row.variant ? ` (${row.variant})` : ""} | ${w.title} | ${am.wall.toFixed(2)} s | ideal ${ideal.toFixed(2)} s | **${(am.wall / ideal).toFixed(2)}×** | ${am.cpu.toFixed(2)} s | | | ${am.rss.toFixed(0)} MiB | | ${api} requests, ${r429} answered 429 (${((100 * r429) / api).toFixed(1)}%); ≤1.10× ideal: ${am.wall <= 1.1 * ideal ? "PASS" : "FAIL"}, ≤1% 429: ${r429 <= api / 100 ? "PASS" : "FAIL"} |`,
    );
  }
  return lines;
}

ensureTools();
if (!existsSync(CLI)) throw new Error(`no CLI at ${CLI}: build first (npm run build)`);
const rows: Row[] = [];
for (const w of workloads) {
  type Variant = { name: string; env: Record<string, string> };
  const variants: (Variant | null)[] = w.rps
    ? [
        { name: "no client cap", env: {} },
        { name: `ARCHIVER_API_RPS=${w.rps}`, env: { ARCHIVER_API_RPS: String(w.rps) } },
      ]
    : [null];
  for (const v of variants) {
    process.stderr.write(`${w.id}${v ? ` (${v.name})` : ""}: ${w.title}, ${rounds} rounds…\n`);
    if (typeof w.size !== "number")
      process.stderr.write(`  sizes: ${formatSizeSummary(summarizeSizes(w.size))}\n`);
    rows.push(await benchWorkload(w, v));
  }
}
const rcloneVersion = (() => {
  try {
    return execFileSync("rclone", ["version"], { encoding: "utf8" }).split("\n")[0];
  } catch {
    return "rclone: not found";
  }
})();
const header = [
  `## ${values.label ? `${values.label} — ` : ""}${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC${values.quick ? " (quick: counts ÷ 4, W3 ÷ 4)" : ""}`,
  "",
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; node ${process.version}; ${rcloneVersion}; ${rounds} rounds, medians.${values.env.length ? ` Archiver environment: ${values.env.map((e) => `\`${e}\``).join(", ")}.` : ""}${CLI === join(ROOT, "dist/src/cli.js") ? "" : " The archiver is another tree's build (`--cli`)."}`,
  "",
  "| workload | | archiver wall | rclone wall | ratio | archiver CPU | rclone CPU | ratio | archiver peak RSS | rclone peak RSS | targets |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
];
const notes = rows.flatMap((row) => {
  const w = row.workload;
  const sizes = typeof w.size === "number" ? [] : [`sizes: ${formatSizeSummary(summarizeSizes(w.size))}`];
  const id = `${w.id}${row.variant ? ` (${row.variant})` : ""}`;
  return [...sizes, ...row.notes].map((n) => `- ${id}: ${n}`);
});
const table = [...header, ...rows.flatMap(fmtRow), "", ...notes, ""].join("\n");
process.stdout.write(table + "\n");
if (!values["no-write"]) appendFileSync(RESULTS, "\n" + table);
