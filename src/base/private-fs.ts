/**
 * Every file and directory the archiver creates goes through here, so that what it writes at rest is its owner's
 * alone whatever the umask: files 0600, directories 0700. The state DB holds call metadata (phone numbers, call
 * times, directions), the spool holds recording bytes in transit, and the outputs (manifests, the metrics file,
 * reports, exports) describe both; a umask of 022, the usual one, would leave all of them readable by every
 * local user.
 *
 * Outputs meant for someone else (an auditors' group reading manifests and reports, node_exporter reading the
 * metrics file) can be opened to the file's group on purpose: `readers: "group"` (ARCHIVER_GROUP_READABLE) makes
 * them 0640 and their new directories 0750. Nothing is ever opened to others.
 *
 * How: each file is opened with its mode, then the mode is set on the open descriptor (`fchmod`), because the
 * umask takes bits away from a new file's mode (a group-readable output under umask 077) and because a file that
 * already exists keeps its old mode on open (a manifest written again over last month's 0644 one). Only a regular
 * file this user owns is changed: never a device (`--out /dev/stdout`) or someone else's file.
 */
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  createWriteStream,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  writeFileSync,
  type WriteStream,
} from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/** Who may read a file the archiver creates besides its owner: no one, or the file's group too. */
export type Readers = "owner" | "group";

export const FILE_MODE: Readonly<Record<Readers, number>> = { owner: 0o600, group: 0o640 };
export const DIR_MODE: Readonly<Record<Readers, number>> = { owner: 0o700, group: 0o750 };

const myUid = process.getuid?.();

/** The mode bits only (no file type), as `chmod` takes them. */
export const permissions = (mode: number): number => mode & 0o777;

/** `0644`, as `ls` and `chmod` spell a mode. */
export const octal = (mode: number): string => `0${permissions(mode).toString(8).padStart(3, "0")}`;

/** Whether a stat is a regular file this user owns, whose mode the archiver may therefore set. */
function ours(st: { isFile(): boolean; uid: number }): boolean {
  return st.isFile() && myUid !== undefined && st.uid === myUid;
}

/** Give an open file exactly `mode`, when it is ours and has another one. */
function settle(fd: number, mode: number): void {
  const st = fstatSync(fd);
  if (ours(st) && permissions(st.mode) !== mode) fchmodSync(fd, mode);
}

/**
 * Create `path` and any missing parents as directories of mode 0700 (0750 for `group`). Directories that already
 * exist are left as they are (an operator's /var/lib/... is theirs to set); `exposure` says when one is open.
 */
export function mkdirPrivate(path: string, readers: Readers = "owner"): void {
  const mode = DIR_MODE[readers];
  const first = mkdirSync(path, { recursive: true, mode });
  if (first === undefined) return;
  // The umask may have taken bits from each directory this call created (group's r-x under umask 077).
  const top = resolve(first);
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    chmodSync(dir, mode);
    if (dir === top || dir === dirname(dir)) break;
  }
}

/** Open `path` for writing (created, or truncated), mode 0600 (0640 for `group`); the caller closes the fd. */
export function openPrivateSync(path: string, readers: Readers = "owner", flags = "w"): number {
  const mode = FILE_MODE[readers];
  const fd = openSync(path, flags, mode);
  try {
    settle(fd, mode);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Write `data` to `path` (created, or replaced in place), mode 0600 (0640 for `group`). */
export function writeFilePrivate(path: string, data: string | Uint8Array, readers: Readers = "owner"): void {
  const fd = openPrivateSync(path, readers);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write `data` beside `path` and rename it over `path`, so that a reader (node_exporter's textfile collector, a
 * report viewer) never sees half a file; the new file has mode 0600 (0640 for `group`) whatever the old one had.
 */
export function replaceFilePrivate(
  path: string,
  data: string | Uint8Array,
  readers: Readers = "owner",
): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFilePrivate(tmp, data, readers);
  renameSync(tmp, path);
}

/** Copy `from` to a new file `to` (never over an existing one), mode 0600 whatever `from`'s mode or the umask. */
export function copyFilePrivate(from: string, to: string): void {
  copyFileSync(from, to, constants.COPYFILE_EXCL);
  chmodSync(to, FILE_MODE.owner);
}

/** A write stream to `path` (created, or truncated), mode 0600 (0640 for `group`), opened before it returns. */
export function openPrivateWriteStream(path: string, readers: Readers = "owner"): WriteStream {
  return createWriteStream(path, { fd: openPrivateSync(path, readers) });
}

/** `open(path, flags)` for the hot paths (spool bodies): mode 0600, whatever the umask. */
export async function openPrivate(path: string, flags = "w+"): Promise<FileHandle> {
  const mode = FILE_MODE.owner;
  const handle = await open(path, flags, mode);
  try {
    const st = await handle.stat();
    if (ours(st) && permissions(st.mode) !== mode) await handle.chmod(mode);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/**
 * Make sure `path` exists as a file, creating it empty with mode 0600 when it does not (an existing one is left
 * as it is). For files another library creates on open: SQLite makes a new DB 0644 under umask 022, and its
 * `-wal` and `-shm` take the DB file's mode, so creating the DB first gives all three 0600.
 */
export function ensurePrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openPrivateSync(path, "owner", "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  closeSync(fd);
}

/** An existing path that other users may use: its mode, and who they are. */
export interface Exposure {
  path: string;
  mode: number;
  /** "other users", "its group (gid N)", or "its group (gid N) and other users". */
  who: string;
}

const myGid = process.getgid?.();

/**
 * Whether an existing path lets other users in; undefined when private or missing. Others' bits always count; the
 * group's count when the group is not the archiver's own primary group: a per-user group (user `archiver`, group
 * `archiver`), or Kubernetes' `fsGroup` equal to `runAsGroup` (which makes the volume's files 0660), has no one
 * else in it.
 */
export function exposure(path: string): Exposure | undefined {
  try {
    return exposureOf(path, statSync(path));
  } catch {
    return undefined;
  }
}

/** `exposure` from a stat already made (the settings file's, from the descriptor it was read through). */
export function exposureOf(path: string, st: { mode: number; gid: number }): Exposure | undefined {
  const group = (st.mode & 0o070) !== 0 && st.gid !== myGid;
  const others = (st.mode & 0o007) !== 0;
  if (!group && !others) return undefined;
  const theGroup = `its group (gid ${st.gid})`;
  return {
    path,
    mode: permissions(st.mode),
    who: group && others ? `${theGroup} and other users` : group ? theGroup : "other users",
  };
}

/** The shell command that closes exposed paths: `chmod 600 'a' 'b'` (700 for directories), quoted for a shell. */
export function chmodFix(paths: string[], kind?: "directory"): string {
  const quote = (p: string) => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replaceAll("'", `'\\''`)}'`);
  return `chmod ${kind === "directory" ? "700" : "600"} ${paths.map(quote).join(" ")}`;
}
