/**
 * A synthetic state DB for the scale benchmark: `rows` archived recordings as a run would have recorded them
 * (call JSON of the simulator's shape, keys, SHA-256s, ETags), plus the simulator's own calls (so that an
 * incremental run over the last days finds them all archived), and a watermark of now. The schema is whatever
 * the CLI under test creates: this only inserts the columns every schema version has.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { generateCalls, type GenerateOptions } from "../simulator/data.js";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");

function uuidFrom(n: number): string {
  const h = hex(`synthetic-${n}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function fillSyntheticDb(path: string, rows: number, simCalls: GenerateOptions): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const insert = db.prepare(
    `INSERT INTO calls (call_id, call_time, call_json, status, attempts, key, content_type, recording_start_time,
       duration_seconds, sha256, bytes, etag, version_id, first_seen_at, updated_at, archived_at, last_run_id)
     VALUES (?, ?, ?, 'archived', 1, ?, 'audio/mp4', ?, ?, ?, ?, ?, NULL, ?, ?, ?, 'synthetic')`,
  );
  const now = Date.now();
  const span = 730 * 86_400_000; // two years of calls
  const add = (id: string, callTime: string, json: string) => {
    const day = callTime.slice(0, 10).replace(/-/g, "/");
    const sha = hex(id);
    insert.run(
      id,
      callTime,
      json,
      `recordings/${day}/${id}.m4a`,
      callTime,
      120,
      sha,
      20_000,
      `"${sha.slice(0, 32)}"`,
      callTime,
      callTime,
      callTime,
    );
  };
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t = new Date(now - span + Math.floor((i / rows) * (span - 3 * 86_400_000)))
        .toISOString()
        .replace(/\.\d+Z$/, "Z");
      const id = `call_${uuidFrom(i)}`;
      const call = {
        id,
        status: "completed",
        call_time: t,
        created_at: t,
        updated_at: t,
        call_direction: i % 2 ? "inbound" : "outbound",
        phone_number: `+1${2_000_000_000 + i}`,
        to_number: `+1${2_000_000_000 + i}`,
        from_number: `+1${3_000_000_000 + i}`,
        call_start_time: t,
        call_end_time: t,
        call_type: "voice",
        load_id: null,
        organization_id: "org_00000000-0000-4000-8000-00000000e1a7",
        created_by_id: `user_${uuidFrom(i + 1e9)}`,
        recording_status: "AVAILABLE",
        load_number: `LD-${100000 + i}`,
      };
      add(id, t, JSON.stringify(call));
    }
  });
  const own = generateCalls(simCalls);
  for (let i = 0; i < rows - own.length; i += 10_000) batch(i, Math.min(i + 10_000, rows - own.length));
  db.transaction(() => {
    for (const c of own) {
      const { recording: _r, ...call } = c;
      add(c.id, c.call_time, JSON.stringify(call));
    }
    db.prepare(
      "INSERT INTO meta (key, value) VALUES ('watermark', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(new Date(now).toISOString());
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
}

/**
 * The bucket such a state DB describes, written straight into s3rver's directory layout: for each archived row an
 * object of its size (a sparse file: no bytes on disk) with its recorded ETag as s3rver's stored MD5, and a small
 * sidecar beside it. Shallow verify and reconcile of an intact state read only the listing, so they can run at
 * sizes whose bodies would not fit this machine.
 */
export function fillSyntheticBucket(dbPath: string, bucketDir: string): number {
  const db = new Database(dbPath, { readonly: true });
  const rows = db
    .prepare("SELECT key, bytes, etag FROM calls WHERE status = 'archived'")
    .iterate() as Iterable<{
    key: string;
    bytes: number;
    etag: string;
  }>;
  const made = new Set<string>();
  let n = 0;
  const put = (key: string, size: number, md5: string, body?: string) => {
    const file = join(bucketDir, `${key}._S3rver_object`);
    const dir = dirname(file);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    if (body === undefined) {
      closeSync(openSync(file, "w"));
      truncateSync(file, size);
    } else writeFileSync(file, body);
    writeFileSync(`${file}.md5`, md5);
  };
  for (const r of rows) {
    put(r.key, r.bytes, r.etag.replace(/"/g, ""));
    const sidecar = JSON.stringify({ archive: { key: r.key, bytes: r.bytes, etag: r.etag } });
    put(`${r.key}.json`, sidecar.length, createHash("md5").update(sidecar).digest("hex"), sidecar);
    n++;
  }
  db.close();
  return n;
}
