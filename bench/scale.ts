/**
 * `npm run bench -- --scale` (W6): every command at 10k and 100k small recordings, and the commands that need no
 * S3 bodies on a synthetic state DB of 1M rows. Per command: CPU (user+sys), wall and peak RSS of the CLI
 * process (GNU time), CPU per recording, and the S3 requests it made (counted by the local S3 server).
 *
 *   npm run bench -- --scale [--sizes 10000,100000] [--synthetic 1000000] [--rounds 2]
 *                    [--only run,relist,noop,status,manifest,verify,reconcile,rebuild,waiting]
 *                    [--cli path/to/cli.js] [--label text] [--no-write] [--timeout-s N] [--synthetic-bucket]
 *
 * `--cli` measures another build of the archiver (e.g. main's) against the same servers and harness.
 * `--synthetic-bucket` also writes the bucket the synthetic DB describes into s3rver's directory (sparse objects:
 * sizes and ETags, no bytes) and measures `verify` and `reconcile` of the intact state on it: they read only the
 * listing.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { archiverEnv, ROOT, startServers, timed, type Servers } from "./harness.js";
import { fillSyntheticBucket, fillSyntheticDb } from "./synthetic-db.js";

interface Sample {
  /** Stopped at --timeout-s: the figures are lower bounds. */
  timedOut?: boolean;
  cpu: number;
  wall: number;
  rssMiB: number;
  s3: Record<string, number>;
}

interface ResultRow {
  step: string;
  rows: number;
  samples: Sample[];
}

const STEPS = ["run", "relist", "noop", "status", "manifest", "verify", "reconcile", "rebuild", "waiting"];

export async function scaleBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: "string", default: "10000,100000" },
      synthetic: { type: "string", default: "1000000" },
      rounds: { type: "string", default: "2" },
      only: { type: "string", default: STEPS.join(",") },
      cli: { type: "string", default: join(ROOT, "dist/src/cli.js") },
      label: { type: "string", default: "this tree" },
      "size-bytes": { type: "string", default: "1000" },
      "per-day": { type: "string", default: "500" },
      "no-write": { type: "boolean", default: false },
      "timeout-s": { type: "string", default: "0" },
      "synthetic-bucket": { type: "boolean", default: false },
    },
  });
  if (!existsSync("/usr/bin/time")) throw new Error("missing /usr/bin/time: apt-get install time");
  const cli = resolve(values.cli);
  if (!existsSync(cli)) throw new Error(`no CLI at ${cli}: build first`);
  const only = new Set(values.only.split(","));
  for (const s of only) if (!STEPS.includes(s)) throw new Error(`--only: unknown step ${s}`);
  const rounds = Math.max(1, Number(values.rounds));
  const sizeBytes = Number(values["size-bytes"]);
  const perDay = Number(values["per-day"]);
  const timeoutS = Number(values["timeout-s"]);
  const results: ResultRow[] = [];
  const sizes = values.sizes
    .split(",")
    .filter(Boolean)
    .map(Number)
    .filter((n) => n > 0);
  for (const n of sizes)
    results.push(...(await recordingsAt(n, { cli, rounds, only, sizeBytes, perDay, timeoutS })));
  const synthetic = Number(values.synthetic);
  if (synthetic > 0)
    results.push(
      ...(await syntheticAt(
        synthetic,
        { cli, rounds, only, sizeBytes, timeoutS },
        values["synthetic-bucket"],
      )),
    );
  const table = formatResults(results, { label: values.label, rounds, sizeBytes });
  process.stdout.write(table + "\n");
  if (!values["no-write"]) appendFileSync(join(ROOT, "bench/RESULTS.md"), "\n" + table);
}

interface Ctx {
  cli: string;
  rounds: number;
  only: Set<string>;
  sizeBytes: number;
  /** Stop a command after this many seconds (0: never). */
  timeoutS: number;
}

/** Environment for the CLI against these servers. */
const envFor = (servers: Servers, dir: string, db: string) =>
  archiverEnv(servers.info, dir, { ARCHIVER_DB_PATH: db, ARCHIVER_CONCURRENCY: "16" });

/**
 * One measured CLI command: fails loudly when it exits non-zero or `check` rejects its JSON output, so that a
 * broken run cannot look fast.
 */
async function measure(
  servers: Servers,
  ctx: Ctx,
  env: NodeJS.ProcessEnv,
  args: string[],
  check: (json: Record<string, unknown>) => string | null,
): Promise<Sample> {
  await servers.s3Requests(); // reset the count
  const r = ctx.timeoutS
    ? await timed("timeout", [String(ctx.timeoutS), process.execPath, ctx.cli, ...args], env)
    : await timed(process.execPath, [ctx.cli, ...args], env);
  // GNU time passes the status on only as text when the command fails.
  if (ctx.timeoutS && (r.code === 124 || /exited with non-zero status 124/.test(r.stderr))) {
    process.stderr.write(
      `  ${args.join(" ")}: stopped after ${ctx.timeoutS} s (${r.cpu.toFixed(2)} s CPU)\n`,
    );
    return { timedOut: true, cpu: r.cpu, wall: r.wall, rssMiB: r.rssMiB, s3: await servers.s3Requests() };
  }
  const s3 = await servers.s3Requests();
  const last = r.stdout.trim().split("\n").pop() ?? "";
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(last || "{}") as Record<string, unknown>;
  } catch {
    // manifest prints its summary on stderr
  }
  const problem = r.code !== 0 && r.code !== 3 ? `exit ${r.code}` : check(json);
  if (problem)
    throw new Error(`${args.join(" ")}: ${problem}\n${r.stdout.slice(-1000)}\n${r.stderr.slice(-3000)}`);
  process.stderr.write(
    `  ${args[0]} ${args.slice(1).join(" ")}: ${r.cpu.toFixed(2)} s CPU, ${r.wall.toFixed(2)} s wall, ${r.rssMiB.toFixed(0)} MiB, S3 ${JSON.stringify(s3)}\n`,
  );
  return { cpu: r.cpu, wall: r.wall, rssMiB: r.rssMiB, s3 };
}

async function repeat(times: number, fn: () => Promise<Sample>): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}

const expect = (field: string, want: number) => (json: Record<string, unknown>) =>
  json[field] === want ? null : `${field} ${String(json[field])}, expected ${want}`;

/** N small recordings archived for real, then every command over them. */
async function recordingsAt(n: number, opts: Ctx & { perDay: number }): Promise<ResultRow[]> {
  const { only, rounds } = opts;
  const out: ResultRow[] = [];
  const add = (step: string, samples: Sample[]) => out.push({ step, rows: n, samples });
  const dir = mkdtempSync(join(tmpdir(), `bench-scale-${n}-`));
  const days = Math.max(2, Math.ceil(n / opts.perDay));
  process.stderr.write(`W6: ${n} recordings of ${opts.sizeBytes} bytes over ${days} days…\n`);
  const servers = await startServers({
    calls: { count: n, seed: 61, days, sizeBytes: opts.sizeBytes },
    dir: join(dir, "s3"),
  });
  try {
    const env = envFor(servers, dir, join(dir, "state.db"));
    const since = new Date(Date.now() - (days + 1) * 86_400_000).toISOString().slice(0, 10);
    // Everything (no watermark yet): the first run archives all.
    const first = await measure(servers, opts, env, ["run", "--json", "--quiet"], expect("archived", n));
    if (only.has("run")) add("run (archive all)", [first]);
    if (only.has("relist"))
      add(
        "run --since (re-list, all archived)",
        await repeat(rounds, () =>
          measure(
            servers,
            opts,
            env,
            ["run", "--json", "--quiet", "--since", since],
            expect("already_archived", n),
          ),
        ),
      );
    if (only.has("noop"))
      add(
        "run (incremental, nothing new)",
        await repeat(rounds, () =>
          measure(servers, opts, env, ["run", "--json", "--quiet"], expect("archived", 0)),
        ),
      );
    await commonSteps(servers, opts, env, dir, n, add);
    if (only.has("verify"))
      add(
        "verify",
        await repeat(rounds, () => measure(servers, opts, env, ["verify", "--json"], expect("ok", n))),
      );
    if (only.has("reconcile"))
      add(
        "reconcile (state intact)",
        await repeat(rounds, () =>
          measure(servers, opts, env, ["reconcile", "--json"], expect("unchanged", n)),
        ),
      );
    if (only.has("rebuild"))
      add("reconcile (lost state DB)", [
        await measure(
          servers,
          opts,
          { ...env, ARCHIVER_DB_PATH: join(dir, "rebuilt.db") },
          ["reconcile", "--json"],
          expect("adopted", n),
        ),
      ]);
  } finally {
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (only.has("waiting")) add("run (N calls waiting, none listed)", [await waitingAt(n, opts)]);
  return out;
}

/** status and manifest: the same over real or synthetic rows. */
async function commonSteps(
  servers: Servers,
  opts: Ctx,
  env: NodeJS.ProcessEnv,
  dir: string,
  n: number,
  add: (step: string, samples: Sample[]) => void,
): Promise<void> {
  if (opts.only.has("status"))
    add(
      "status",
      await repeat(opts.rounds, () =>
        measure(servers, opts, env, ["status", "--json"], (j) =>
          (j.counts as Record<string, number> | undefined)?.archived === n ? null : "archived count",
        ),
      ),
    );
  if (opts.only.has("manifest"))
    add(
      "manifest (CSV to a file)",
      await repeat(opts.rounds, () =>
        measure(servers, opts, env, ["manifest", "--out", join(dir, "manifest.csv")], () => {
          const lines = Number(
            execFileSync("wc", ["-l", join(dir, "manifest.csv")], { encoding: "utf8" }).split(" ")[0],
          );
          return lines === n + 1 ? null : `manifest has ${lines - 1} rows`;
        }),
      ),
    );
}

/** N calls whose recordings are not ready: a run whose window lists none of them works through all N. */
async function waitingAt(n: number, opts: Ctx & { perDay: number }): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), `bench-waiting-${n}-`));
  const days = Math.max(2, Math.ceil(n / opts.perDay));
  const servers = await startServers({
    calls: { count: n, seed: 67, days, sizeBytes: opts.sizeBytes, notReadyEvery: 1 },
    dir: join(dir, "s3"),
  });
  try {
    const env = envFor(servers, dir, join(dir, "state.db"));
    await measure(servers, opts, env, ["run", "--json", "--quiet"], expect("not_ready", n));
    return await measure(
      servers,
      opts,
      env,
      ["run", "--json", "--quiet", "--since", "2001-01-01", "--until", "2001-01-01"],
      expect("not_ready", n),
    );
  } finally {
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A synthetic state DB of `rows` archived recordings: the commands that need no S3 bodies. */
async function syntheticAt(rows: number, opts: Ctx, withBucket: boolean): Promise<ResultRow[]> {
  const out: ResultRow[] = [];
  const add = (step: string, samples: Sample[]) => out.push({ step, rows, samples });
  const dir = mkdtempSync(join(tmpdir(), `bench-synthetic-`));
  const simCalls = { count: 1000, seed: 71, days: 2, sizeBytes: opts.sizeBytes };
  const servers = await startServers({ calls: simCalls, dir: join(dir, "s3") });
  try {
    const db = join(dir, "state.db");
    const env = envFor(servers, dir, db);
    process.stderr.write(`W6: a synthetic state DB of ${rows} archived recordings…\n`);
    // The CLI under test creates its own schema; then the rows go in; then one unmeasured command warms up.
    execFileSync(process.execPath, [opts.cli, "status", "--json"], { env, stdio: "ignore" });
    fillSyntheticDb(db, rows, simCalls);
    // The bucket the DB describes, for the commands that read only its listing (sparse objects, no bodies).
    if (withBucket) fillSyntheticBucket(db, join(dir, "s3", servers.info.bucket!));
    execFileSync(process.execPath, [opts.cli, "status", "--json"], { env, stdio: "ignore" });
    if (opts.only.has("noop"))
      add(
        "run (incremental, nothing new)",
        await repeat(opts.rounds, () =>
          measure(servers, opts, env, ["run", "--json", "--quiet"], expect("archived", 0)),
        ),
      );
    await commonSteps(servers, opts, env, dir, rows, add);
    if (withBucket && opts.only.has("verify"))
      add(
        "verify",
        await repeat(opts.rounds, () =>
          measure(servers, opts, env, ["verify", "--json"], expect("ok", rows)),
        ),
      );
    if (withBucket && opts.only.has("reconcile"))
      add(
        "reconcile (state intact)",
        await repeat(opts.rounds, () =>
          measure(servers, opts, env, ["reconcile", "--json"], expect("unchanged", rows)),
        ),
      );
  } finally {
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function formatResults(rows: ResultRow[], o: { label: string; rounds: number; sizeBytes: number }): string {
  /** min–max of a figure over the samples; "≥" when a sample was stopped at the timeout. */
  const cell = (r: ResultRow, f: (s: Sample) => number, digits: number, unit: string) => {
    const xs = r.samples.map(f);
    const lo = Math.min(...xs).toFixed(digits);
    const hi = Math.max(...xs).toFixed(digits);
    return `${r.samples.some((s) => s.timedOut) ? "≥ " : ""}${lo === hi ? lo : `${lo}–${hi}`} ${unit}`;
  };
  const s3 = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${v} ${k}`)
      .join(", ") || "0";
  return [
    `## ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC — W6 scale: ${o.label}`,
    "",
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, shared; node ${process.version}; recordings of ${o.sizeBytes} bytes; up to ${o.rounds} rounds, ranges (min–max).`,
    "",
    "| command | rows | CPU (user+sys) | CPU per row | wall | peak RSS | S3 requests (last round) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows.map((r) =>
      [
        "",
        r.step,
        r.rows.toLocaleString("en-US"),
        cell(r, (s) => s.cpu, 2, "s"),
        cell(r, (s) => (s.cpu / r.rows) * 1e6, 1, "µs"),
        cell(r, (s) => s.wall, 2, "s"),
        cell(r, (s) => s.rssMiB, 0, "MiB"),
        s3(r.samples.at(-1)!.s3),
        "",
      ]
        .join(" | ")
        .trim(),
    ),
    "",
  ].join("\n");
}
