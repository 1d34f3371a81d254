/**
 * At rest on the host (issue 25): the real CLI, under the usual umask 022 as cron on a shared host runs it, leaves
 * nothing that its group or other users can read — the state DB and its -wal/-shm, the spool and the bodies in
 * it, manifests (the user's --out and the temp file of --upload), the metrics file, what the worker writes. Every
 * path that appears under the test's directory while the commands run is seen (a poll every few ms: spool bodies
 * and the upload's temp file live for a moment only), and each one's mode is checked.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, chownSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "../helpers/backends.js";
import { collect, logsOf, startRig, summaryOf, type Rig } from "../helpers/env.js";

const MiB = 1024 * 1024;

// The test's own process and so every child it spawns: the umask the issue measured with.
process.umask(0o022);

/** Every path that appears under `root` (but `skip`), with the modes it was seen with, polled every few ms. */
class ModeWatch {
  readonly seen = new Map<string, Set<number>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: string,
    private readonly skip: ReadonlySet<string>,
  ) {
    this.timer = setInterval(() => this.walk(root), 5);
  }

  private walk(path: string): void {
    if (this.skip.has(path)) return;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // gone between the listing and the look (a spool body, a temp file)
    }
    const modes = this.seen.get(path) ?? new Set<number>();
    this.seen.set(path, modes.add(st.mode & 0o777));
    if (!st.isDirectory()) return;
    let names: string[] = [];
    try {
      names = readdirSync(path);
    } catch {
      return;
    }
    for (const name of names) this.walk(join(path, name));
  }

  /** The paths seen (relative to the root) matching `re`. */
  matching(re: RegExp): string[] {
    return [...this.seen.keys()].map((p) => relative(this.root, p)).filter((p) => re.test(p));
  }

  waitFor(what: string, re: RegExp): Promise<void> {
    return until(what, () => this.matching(re).length > 0);
  }

  /** Stop polling after one last walk. */
  stop(): void {
    clearInterval(this.timer);
    this.walk(this.root);
  }
}

const octal = (m: number) => `0${m.toString(8)}`;

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("at rest (umask 022)", () => {
  let rig: Rig;
  const ready = () => rig.sim.calls.filter((c) => c.recording.ready && c.recording.hasRecording).length;

  before(async () => {
    // Recordings above 1 MiB wait in the spool; slow media keeps each body there long enough to be seen.
    rig = await startRig(
      { calls: { count: 5, seed: 25, days: 2, sizeBytes: 3 * MiB, notReadyEvery: 5 } },
      { faults: true }, // S3 is stopped while manifest --upload's temp file is looked at (RGW: through the proxy)
    );
  });
  after(() => rig.close());

  test("run, worker, status, reconcile, verify and manifests create nothing its group or others can read", async () => {
    assert.equal(
      execFileSync("sh", ["-c", "umask"], { encoding: "utf8" }).trim(),
      "0022",
      "children's umask",
    );
    // What the operator made (left as they are, and not counted): the working directory, the node_exporter
    // textfile directory (0755, as node_exporter's own is), the temp directory, last month's manifest.
    const home = join(rig.dir, "home"); // created by the archiver: the state DB's directory does not exist yet
    const textfiles = join(rig.dir, "textfile");
    const tmp = join(rig.dir, "tmp");
    mkdirSync(textfiles, { mode: 0o755 });
    mkdirSync(tmp, { mode: 0o755 });
    chmodSync(textfiles, 0o755);
    chmodSync(tmp, 0o755);
    const oldManifest = join(rig.dir, "last-month.csv");
    writeFileSync(oldManifest, "old\n", { mode: 0o644 });
    const made = new Set([textfiles, tmp, oldManifest, join(rig.dir, "s3")]);
    const watch = new ModeWatch(rig.dir, new Set([join(rig.dir, "s3")]));
    const env = { ARCHIVER_DB_PATH: join(home, "state", "archiver.db"), TMPDIR: tmp };
    try {
      rig.sim.setFaults({ mediaSlowBytesPerSec: 6 * MiB });
      const run = await rig.run(["run", "--json", "--metrics-file", join(textfiles, "envoy.prom")], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(summaryOf(run).archived, ready());

      // The worker, on a DB of its own and another prefix, so that it transfers (and spools) for itself.
      const worker = rig.spawn(["worker", "--cron", "0 0 1 1 *", "--run-on-start", "--metrics-port", "0"], {
        ...env,
        ARCHIVER_DB_PATH: join(home, "worker", "worker.db"),
        ARCHIVER_S3_PREFIX: "worker/",
      });
      let stderr = "";
      worker.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const done = collect(worker);
      await until("the worker's run", () => /"msg":"run ok"/.test(stderr));
      worker.kill("SIGTERM");
      assert.equal((await done).code, 143, stderr);
      rig.sim.setFaults({});

      const out = await rig.run(["manifest", "--out", join(rig.dir, "manifest.csv")], env);
      assert.equal(out.code, 0, out.stderr);
      const again = await rig.run(["manifest", "--format", "jsonl", "--out", oldManifest], env);
      assert.equal(again.code, 0, again.stderr);

      // --upload writes the manifest to a temp file first: S3 stays away until that file has been seen.
      await rig.s3.stop();
      const upload = collect(rig.spawn(["manifest", "--upload"], env));
      try {
        await watch.waitFor("the manifest's temp file", /^tmp\/envoy-manifest-[^/]+\/manifest\.csv$/);
      } finally {
        await rig.s3.start();
      }
      const up = await upload;
      assert.equal(up.code, 0, up.stderr);

      // Every other command that opens a state DB: `status` reads the run's (it never creates one), `reconcile`
      // makes a new one in a directory that does not exist yet.
      const status = await rig.run(["status", "--json"], env);
      assert.equal(status.code, 0, status.stderr);
      const rebuilt = await rig.run(["reconcile", "--json", "--db", join(home, "rebuilt", "r.db")], env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      const verify = await rig.run(["verify", "--json"], env);
      assert.equal(verify.code, 0, verify.stderr);
    } finally {
      watch.stop();
    }

    const created = [...watch.seen].filter(([p]) => !made.has(p) && p !== rig.dir);
    const names = created.map(([p]) => relative(rig.dir, p));
    // Everything there was to look at was looked at: nothing passes for want of having been seen.
    for (const expected of [
      /^home$/,
      /^home\/state$/,
      /^home\/state\/archiver\.db$/,
      /^home\/state\/archiver\.db-wal$/,
      /^home\/state\/archiver\.db-shm$/,
      /^home\/state\/archiver\.db\.spool$/,
      /^home\/state\/archiver\.db\.spool\/\d+-\d+\.body$/,
      /^home\/worker\/worker\.db(-wal|-shm)?$/,
      /^home\/worker\/worker\.db\.spool\/\d+-\d+\.body$/,
      /^home\/rebuilt\/r\.db(-wal|-shm)?$/,
      /^textfile\/envoy\.prom$/,
      /^manifest\.csv$/,
      /^tmp\/envoy-manifest-[^/]+$/,
      /^tmp\/envoy-manifest-[^/]+\/manifest\.csv$/,
    ])
      assert.ok(
        names.some((n) => expected.test(n)),
        `never saw ${expected}; saw:\n${names.sort().join("\n")}`,
      );
    const open = created
      .flatMap(([p, modes]) => [...modes].map((m) => [relative(rig.dir, p), m] as const))
      .filter(([, m]) => (m & 0o077) !== 0)
      .map(([p, m]) => `${octal(m)} ${p}`);
    assert.deepEqual(open, [], "created with a group or other permission bit");
    assert.equal(
      lstatSync(oldManifest).mode & 0o777,
      0o600,
      "a manifest written over an old 0644 one is 0600",
    );
  });

  test("ARCHIVER_GROUP_READABLE=true: manifests and the metrics file are 0640 under umask 077; state stays 0600", async () => {
    const dir = join(rig.dir, "group");
    const env = {
      ARCHIVER_DB_PATH: join(dir, "state", "g.db"),
      ARCHIVER_S3_PREFIX: "group/",
      ARCHIVER_GROUP_READABLE: "true",
    };
    mkdirSync(dir);
    process.umask(0o077); // takes the group's bits from whatever is created: the setting must put them back
    try {
      const run = await rig.run(["run", "--json", "--metrics-file", join(dir, "envoy.prom")], env);
      assert.equal(run.code, 0, run.stderr);
      const out = await rig.run(["manifest", "--out", join(dir, "manifest.csv")], env);
      assert.equal(out.code, 0, out.stderr);
    } finally {
      process.umask(0o022);
    }
    const mode = (p: string) => octal(lstatSync(join(dir, p)).mode & 0o777);
    assert.equal(mode("envoy.prom"), "0640");
    assert.equal(mode("manifest.csv"), "0640");
    assert.equal(mode("state"), "0700", "the state DB's directory is never the group's");
    assert.equal(mode("state/g.db"), "0600");
    assert.equal(mode("state/g.db.spool"), "0700");
  });

  test("a state DB, spool directory or secret-holding settings file others can read: one warning each, with the fix", async () => {
    const dir = join(rig.dir, "warn");
    const db = join(dir, "old.db");
    const spool = `${db}.spool`;
    const settings = join(dir, "settings.env");
    const env = { ARCHIVER_DB_PATH: db };
    // As an older release (or a hand) left them: created under umask 022. (`status` only reads a state DB and
    // never creates one: `reconcile` makes it.)
    const made = await rig.run(["reconcile", "--json", "--prefix", "warn/"], env);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(warnings(made), [], "a new state DB is private: nothing to say");
    const ok = await rig.run(["status", "--json"], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(warnings(ok), [], "a new state DB is private: nothing to say");
    chmodSync(dir, 0o755);
    chmodSync(db, 0o644);
    // Left by a killed run: SQLite keeps its mode as it is. (A read-only `status` may have left one already, with
    // the DB's mode then: set the mode, not only a new file's.)
    writeFileSync(`${db}-wal`, "", { mode: 0o644 });
    chmodSync(`${db}-wal`, 0o644);
    mkdirSync(spool, { mode: 0o755 });
    writeFileSync(settings, "ENVOY_API_KEY=envai_live_s3cr3tv4lue\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n", {
      mode: 0o644,
    });

    const status = await rig.run(["status", "--json", "--dotenv", settings], env);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(warnings(status), [
      {
        path: db,
        mode: "0644",
        msg: `the state DB (call metadata: phone numbers, call times) ${db} is open to other users (mode 0644; ${db}-wal 0644): chmod 600 ${db} ${db}-wal`,
      },
      {
        path: spool,
        mode: "0755",
        msg: `the spool directory (recording bytes in transit) ${spool} is open to other users (mode 0755): chmod 700 ${spool}`,
      },
      {
        path: settings,
        mode: "0644",
        msg: `the settings file ${settings} holds AWS_SECRET_ACCESS_KEY, ENVOY_API_KEY and is open to other users (mode 0644): chmod 600 ${settings}, and replace those secrets if anyone else could read them`,
      },
    ]);
    assert.doesNotMatch(status.stderr, /s3cr3tv4lue|wJalrXUtnFEMI/, "the secrets' names, never their values");
    // A warning, not a change: the operator may have a reason, and the fix is theirs.
    assert.equal(lstatSync(db).mode & 0o777, 0o644);
    assert.equal(lstatSync(spool).mode & 0o777, 0o755);

    // A run says it once too (not once a recording, not once a tick). A file of another group that the group can
    // read is named as such; the archiver's own group (a per-user group, Kubernetes' fsGroup) is no one else.
    chmodSync(settings, 0o640);
    const group = anotherGroup();
    if (group !== undefined) chownSync(settings, process.getuid!(), group);
    const run = await rig.run(["run", "--json", "--prefix", "warn/", "--dotenv", settings], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      warnings(run).map((w) => [w.path, w.mode]),
      [[db, "0644"], [spool, "0755"], ...(group === undefined ? [] : [[settings, "0640"]])],
    );
    if (group !== undefined)
      assert.match(
        warnings(run)[2]!.msg,
        new RegExp(`is open to its group \\(gid ${group}\\) \\(mode 0640\\)`),
      );
    if (group !== undefined) chownSync(settings, process.getuid!(), process.getgid!());
    const own = await rig.run(["status", "--json", "--dotenv", settings], env);
    assert.deepEqual(
      warnings(own).map((w) => w.path),
      [db, spool],
      "0640 in the archiver's own group: no one else can read it",
    );

    // Fixed as the warnings say: nothing more to say. A settings file without secrets is nobody's concern.
    // (A read-only `status` leaves the DB's -wal and -shm in place: the warning's chmod names them too.)
    for (const [p, m] of [
      [db, 0o600],
      [`${db}-wal`, 0o600],
      [`${db}-shm`, 0o600],
      [spool, 0o700],
      [settings, 0o600],
    ] as const)
      if (existsSync(p)) chmodSync(p, m);
    const plain = join(dir, "plain.env");
    writeFileSync(plain, "ARCHIVER_CONCURRENCY=2\n", { mode: 0o644 });
    for (const file of [settings, plain]) {
      const quiet = await rig.run(["status", "--json", "--dotenv", file], env);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.deepEqual(warnings(quiet), [], file);
    }
  });
});

/** A group this process may give a file that is not its own primary group (root: any; else a supplementary one). */
function anotherGroup(): number | undefined {
  if (process.getuid!() === 0) return 65534;
  return process.getgroups!().find((g) => g !== process.getgid!());
}

/** The warnings about a path a command logged (pino JSON on stderr): path, mode and message. */
function warnings(r: Parameters<typeof logsOf>[0]): { path: unknown; mode: unknown; msg: string }[] {
  return logsOf(r)
    .filter((l) => l.level === 40 && l.path !== undefined)
    .map((l) => ({ path: l.path, mode: l.mode, msg: String(l.msg) }));
}
