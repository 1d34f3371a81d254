/**
 * base/private-fs.ts: what the archiver creates is its owner's alone (files 0600, directories 0700) whatever the
 * umask, a deliberate group gets 0640/0750, and a file that already exists is brought to that mode when it is
 * ours. Each test sets the umask it is about (this file runs in a process of its own) and puts back 022, the
 * usual one, which is what makes a plain `open` or `mkdir` group- and world-readable.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import {
  chmodFix,
  ensurePrivateFile,
  exposure,
  exposureOf,
  mkdirPrivate,
  openPrivate,
  openPrivateWriteStream,
  replaceFilePrivate,
  writeFilePrivate,
} from "../../src/base/private-fs.js";
import { StateDb } from "../../src/state/db.js";

process.umask(0o022);

const modeOf = (path: string) => statSync(path).mode & 0o777;
const tmp = () => mkdtempSync(join(tmpdir(), "private-fs-"));

/** Run `fn` under `mask`, then put 022 back. */
async function underUmask<T>(mask: number, fn: () => T | Promise<T>): Promise<T> {
  process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(0o022);
  }
}

test("mkdirPrivate: every directory it creates is 0700 under umask 022; one that was there is left alone", () => {
  const root = tmp();
  const outer = join(root, "outer");
  mkdirSync(outer, { mode: 0o755 });
  mkdirPrivate(join(outer, "a", "b", "c"));
  assert.equal(modeOf(outer).toString(8), "755", "an existing directory is the operator's");
  for (const dir of ["a", "a/b", "a/b/c"]) assert.equal(modeOf(join(outer, dir)).toString(8), "700", dir);
  mkdirPrivate(join(outer, "a", "b", "c")); // already there: nothing to do, no error
  // A relative path, as ARCHIVER_DB_PATH's default (./data/archiver.db) gives one.
  const cwd = process.cwd();
  process.chdir(root);
  try {
    mkdirPrivate("rel/x");
  } finally {
    process.chdir(cwd);
  }
  assert.equal(modeOf(join(root, "rel")).toString(8), "700");
  assert.equal(modeOf(join(root, "rel", "x")).toString(8), "700");
});

test("group: directories 0750 and files 0640 even under umask 077, which would take the group's bits", async () => {
  const root = tmp();
  await underUmask(0o077, () => {
    mkdirPrivate(join(root, "g", "h"), "group");
    writeFilePrivate(join(root, "g", "h", "manifest.csv"), "a\n", "group");
    replaceFilePrivate(join(root, "g", "archiver.prom"), "m 1\n", "group");
  });
  assert.equal(modeOf(join(root, "g")).toString(8), "750");
  assert.equal(modeOf(join(root, "g", "h")).toString(8), "750");
  assert.equal(modeOf(join(root, "g", "h", "manifest.csv")).toString(8), "640");
  assert.equal(modeOf(join(root, "g", "archiver.prom")).toString(8), "640");
});

test("under umask 000 too, nothing it creates is open to anyone else", async () => {
  const root = tmp();
  const stream = await underUmask(0, async () => {
    mkdirPrivate(join(root, "d"));
    writeFilePrivate(join(root, "d", "w"), "x");
    replaceFilePrivate(join(root, "d", "r"), "x");
    ensurePrivateFile(join(root, "d", "e"));
    await (await openPrivate(join(root, "d", "o"))).close();
    return openPrivateWriteStream(join(root, "d", "s"));
  });
  stream.end("x");
  await once(stream, "close");
  assert.equal(modeOf(join(root, "d")).toString(8), "700");
  for (const f of ["w", "r", "e", "o", "s"]) assert.equal(modeOf(join(root, "d", f)).toString(8), "600", f);
});

test("a file of ours that exists with an open mode is brought to 0600 when written again", async () => {
  const root = tmp();
  const paths = ["written", "replaced", "streamed", "opened"].map((n) => join(root, n));
  for (const p of paths) {
    writeFileSync(p, "old contents, longer than the new\n");
    chmodSync(p, 0o644);
  }
  writeFilePrivate(paths[0]!, "new\n");
  replaceFilePrivate(paths[1]!, "new\n");
  const stream = openPrivateWriteStream(paths[2]!);
  stream.end("new\n");
  await once(stream, "close");
  const handle = await openPrivate(paths[3]!, "w+");
  await handle.write("new\n");
  await handle.close();
  for (const p of paths) {
    assert.equal(modeOf(p).toString(8), "600", p);
    assert.equal(readFileSync(p, "utf8"), "new\n", `${p}: replaced, not appended to`);
  }
  assert.deepEqual(
    readdirSync(root).sort(),
    ["opened", "replaced", "streamed", "written"],
    "no temp file left",
  );
});

test("a device is written to but never chmodded (manifest --out /dev/stdout, /dev/null)", () => {
  const before = modeOf("/dev/null");
  writeFilePrivate("/dev/null", "x");
  assert.equal(modeOf("/dev/null"), before);
});

test("ensurePrivateFile creates an empty 0600 file and leaves an existing one (contents and mode) alone", () => {
  const root = tmp();
  const fresh = join(root, "new.db");
  ensurePrivateFile(fresh);
  assert.equal(modeOf(fresh).toString(8), "600");
  assert.equal(statSync(fresh).size, 0);
  const old = join(root, "old.db");
  writeFileSync(old, "SQLite format 3\0");
  chmodSync(old, 0o644);
  ensurePrivateFile(old);
  assert.equal(
    modeOf(old).toString(8),
    "644",
    "an existing DB is warned about, not changed (see cli/context.ts)",
  );
  assert.equal(readFileSync(old, "utf8"), "SQLite format 3\0");
});

test("the state DB, its -wal and -shm and its new directory are owner-only under umask 022", () => {
  const dir = join(tmp(), "state");
  const path = join(dir, "archiver.db");
  const state = StateDb.open(path);
  try {
    state.setMeta("k", "v"); // a write: the WAL has frames, the shared memory index exists
    assert.ok(existsSync(`${path}-wal`) && existsSync(`${path}-shm`), "WAL mode while open");
    for (const p of [path, `${path}-wal`, `${path}-shm`]) assert.equal(modeOf(p).toString(8), "600", p);
    assert.equal(modeOf(dir).toString(8), "700");
  } finally {
    state.close();
  }
});

test("exposure: the other users a path is open to; its own group is no one else's; nothing when private or missing", () => {
  const root = tmp();
  const file = join(root, "f");
  writeFileSync(file, "");
  const own = process.getgid!();
  const cases: [number, number, string | undefined][] = [
    [0o600, own, undefined],
    [0o400, 4242, undefined],
    [0o640, own, undefined], // the archiver's own (per-user) group, or Kubernetes' fsGroup = runAsGroup
    [0o660, own, undefined],
    [0o640, 4242, "its group (gid 4242)"],
    [0o620, 4242, "its group (gid 4242)"],
    [0o604, own, "other users"],
    [0o644, own, "other users"],
    [0o644, 4242, "its group (gid 4242) and other users"],
  ];
  for (const [mode, gid, who] of cases)
    assert.equal(
      exposureOf(file, { mode: 0o100000 | mode, gid })?.who,
      who,
      `${mode.toString(8)} gid ${gid}`,
    );
  // On the file itself: made by this process, so its group is the process's own.
  chmodSync(file, 0o640);
  assert.equal(exposure(file), undefined);
  chmodSync(file, 0o644);
  assert.deepEqual(exposure(file), { path: file, mode: 0o644, who: "other users" });
  assert.equal(exposure(join(root, "missing")), undefined);
  chmodSync(root, 0o755);
  assert.deepEqual(exposure(root), { path: root, mode: 0o755, who: "other users" });
});

test("chmodFix: a command to paste, each path quoted for a shell when it needs it", () => {
  assert.equal(
    chmodFix(["/var/lib/envoy-archiver/archiver.db", "/var/lib/envoy-archiver/archiver.db-wal"]),
    "chmod 600 /var/lib/envoy-archiver/archiver.db /var/lib/envoy-archiver/archiver.db-wal",
  );
  assert.equal(chmodFix(["./data/archiver.db.spool"], "directory"), "chmod 700 ./data/archiver.db.spool");
  assert.equal(chmodFix(["/srv/my data/it's.env"]), `chmod 600 '/srv/my data/it'\\''s.env'`);
});
