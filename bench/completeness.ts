/**
 * `npm run bench -- --completeness [--rows 1000000]`: what the per-day check against the source costs the state
 * DB at scale (issue 22). On a synthetic state DB of N archived calls over two years: building migration 010's
 * calls_call_day index on an existing DB (what upgrading costs, once), its size, the state's side of a check
 * (30 days, and a year, counted by status), and what the index adds to recording newly listed calls.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { StateDb } from "../src/state/db.js";
import { DAY_SQL } from "../src/state/days.js";
import { fillSyntheticDb } from "./synthetic-db.js";

const ms = (t0: number) => performance.now() - t0;
const day = (offset: number) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10);

export function completenessBench(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { rows: { type: "string", default: "1000000" } } });
  const rows = Number(values.rows);
  const dir = mkdtempSync(join(tmpdir(), "bench-completeness-"));
  try {
    const path = join(dir, "state.db");
    const before = StateDb.open(path);
    before.db.exec("DROP INDEX calls_call_day"); // a DB as the release before migration 010 left it
    before.close();
    fillSyntheticDb(path, rows, { count: 0 });
    const s = StateDb.open(path);
    const size0 = statSync(path).size;
    let t0 = performance.now();
    s.db.exec("CREATE INDEX calls_call_day ON calls (date(call_time), status)");
    const build = ms(t0);
    s.db.pragma("wal_checkpoint(TRUNCATE)");
    const size1 = statSync(path).size;
    const plan = (s.db.prepare(`EXPLAIN QUERY PLAN ${DAY_SQL}`).all(day(10)) as { detail: string }[])
      .map((r) => r.detail)
      .join("; ");
    const check = (days: number) => {
      t0 = performance.now();
      let calls = 0;
      for (let i = 1; i <= days; i++) calls += Object.values(s.knownOnDay(day(i))).reduce((a, b) => a + b, 0);
      return { ms: ms(t0), calls };
    };
    check(30); // warm the cache as a run's second check would find it
    const month = check(30);
    const year = check(365);
    const listed = (n: number, from: number) => {
      t0 = performance.now();
      s.db.transaction(() => {
        for (let i = from; i < from + n; i++)
          s.recordListed(
            `call_00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
            new Date(Date.now() - (i % 30) * 86_400_000).toISOString(),
            "{}",
            "bench",
          );
      })();
      return ms(t0);
    };
    // With and without the index, alternately (the first batches also warm the cache): the best of two each.
    const timings: Record<"with" | "without", number[]> = { with: [], without: [] };
    s.db.exec("DROP INDEX calls_call_day");
    for (let round = 0; round < 4; round++) {
      const indexed = round % 2 === 1;
      if (indexed) s.db.exec("CREATE INDEX calls_call_day ON calls (date(call_time), status)");
      timings[indexed ? "with" : "without"].push(listed(25_000, round * 25_000));
      if (indexed) s.db.exec("DROP INDEX calls_call_day");
    }
    const withIndex = Math.min(...timings.with);
    const withoutIndex = Math.min(...timings.without);
    s.close();
    const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
    process.stdout.write(
      [
        `completeness bench: ${rows.toLocaleString("en")} archived calls over two years (${(rows / 730).toFixed(0)} a day)`,
        `  migration 010 on this DB: CREATE INDEX ${build.toFixed(0)} ms, DB ${mib(size0)} -> ${mib(size1)} MiB`,
        `  plan: ${plan}`,
        `  state side of a check: 30 days ${month.ms.toFixed(1)} ms (${month.calls} calls counted), 365 days ${year.ms.toFixed(1)} ms (${year.calls})`,
        `  25,000 newly listed calls recorded (best of two): ${withIndex.toFixed(0)} ms with the index, ${withoutIndex.toFixed(0)} ms without`,
      ].join("\n") + "\n",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
