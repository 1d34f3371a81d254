/**
 * The audit trail as a hash chain over the `runs` table (migration 012). When a command finishes, its row becomes
 * the next link: numbered (chain_seq), carrying the SHA-256 of the link before (chain_prev), and hashed itself
 * (chain_sha256) over the canonical JSON of its fields. A link is never rewritten. `checkChain` walks the links
 * and names the first that was edited, deleted or does not follow the one before.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Sql } from "./sql.js";
import type { RunRow } from "./types.js";

/** chain_prev of the first link. */
export const GENESIS = "0".repeat(64);

/** The fields of a run row that its link's hash covers, in the order the record shows them. */
const LINKED_FIELDS = [
  "id",
  "command",
  "mode",
  "window_start",
  "window_end",
  "dry_run",
  "started_at",
  "finished_at",
  "outcome",
  "error",
  "listed",
  "archived",
  "already_archived",
  "not_ready",
  "no_recording",
  "failed",
  "bytes",
  "pid",
  "host",
  "actor",
  "archiver_version",
  "config_fingerprint",
  "details",
] as const satisfies readonly (keyof RunRow)[];

export interface ChainColumns {
  chain_seq: number | null;
  chain_prev: string | null;
  chain_sha256: string | null;
}

export type LinkedRow = RunRow & ChainColumns;

/** One link as the trail prints it and the bucket holds it: the record's fields, its place, both hashes. */
export interface ChainLink {
  /** The trail's id: one a state DB, named in the bucket's keys (several shards may share a bucket). */
  trail: string;
  seq: number;
  prev: string;
  sha256: string;
  record: Record<(typeof LINKED_FIELDS)[number], string | number | null>;
}

/** JSON with keys sorted at every level and no spaces: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

function recordOf(row: RunRow): ChainLink["record"] {
  const out = {} as ChainLink["record"];
  for (const f of LINKED_FIELDS) out[f] = row[f];
  return out;
}

/** The SHA-256 a link must carry: over its record, its number and the hash of the link before. */
export function linkHash(row: RunRow, seq: number, prev: string): string {
  const text = canonicalJson({ seq, prev, record: recordOf(row) });
  return createHash("sha256").update(text).digest("hex");
}

function linkOf(trail: string, row: LinkedRow): ChainLink {
  return {
    trail,
    seq: row.chain_seq!,
    prev: row.chain_prev!,
    sha256: row.chain_sha256!,
    record: recordOf(row),
  };
}

const TRAIL_ID = "audit_trail_id";

/** This state DB's trail id (16 hex digits), made with its first link; null before. */
export function trailId(sql: Sql): string | null {
  const known = sql.st("SELECT value FROM meta WHERE key = ?").pluck().get(TRAIL_ID);
  return typeof known === "string" ? known : null;
}

function ensureTrailId(sql: Sql): string {
  const known = trailId(sql);
  if (known) return known;
  const id = randomBytes(8).toString("hex");
  sql.st("INSERT INTO meta (key, value) VALUES (?, ?)").run(TRAIL_ID, id);
  return id;
}

/**
 * Make a finished run the next link, in the caller's transaction (the row must be finished already). A run
 * already linked keeps its link.
 */
export function appendLink(sql: Sql, runId: string): ChainLink {
  const row = sql.st("SELECT * FROM runs WHERE id = ?").get(runId) as LinkedRow | undefined;
  if (!row) throw new Error(`no run ${runId} to add to the audit trail`);
  const trail = ensureTrailId(sql);
  if (row.chain_seq !== null) return linkOf(trail, row);
  const head = chainHead(sql);
  const seq = (head?.seq ?? 0) + 1;
  const prev = head?.sha256 ?? GENESIS;
  const sha256 = linkHash(row, seq, prev);
  sql
    .st("UPDATE runs SET chain_seq = ?, chain_prev = ?, chain_sha256 = ? WHERE id = ?")
    .run(seq, prev, sha256, runId);
  return { trail, seq, prev, sha256, record: recordOf(row) };
}

/** The last link; undefined before the first. */
export function chainHead(sql: Sql): ChainLink | undefined {
  const row = sql
    .st("SELECT * FROM runs WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1")
    .get() as LinkedRow | undefined;
  return row ? linkOf(trailId(sql) ?? "", row) : undefined;
}

/** Every link in order (the trail is one row a command: it is read whole). */
export function chainLinks(sql: Sql): ChainLink[] {
  const trail = trailId(sql) ?? "";
  return linkedRows(sql).map((r) => linkOf(trail, r));
}

function linkedRows(sql: Sql): LinkedRow[] {
  return sql.st("SELECT * FROM runs WHERE chain_seq IS NOT NULL ORDER BY chain_seq").all() as LinkedRow[];
}

/** The first link that breaks the chain, and how. */
export interface BrokenLink {
  seq: number;
  runId: string | null;
  reason: string;
}

export interface ChainCheck {
  links: number;
  /** The last link, when the chain is whole. */
  head: ChainLink | undefined;
  broken: BrokenLink | null;
}

/** Walk the links from the first: each must be numbered next, follow the one before, and hash to what it says. */
export function checkChain(sql: Sql): ChainCheck {
  const rows = linkedRows(sql);
  let prev = GENESIS;
  let expected = 1;
  for (const row of rows) {
    const seq = row.chain_seq!;
    if (seq !== expected)
      return {
        links: rows.length,
        head: undefined,
        broken: {
          seq: expected,
          runId: null,
          reason: `record #${expected} is missing: the trail goes from #${expected - 1} to #${seq} (deleted)`,
        },
      };
    const actual = linkHash(row, seq, row.chain_prev ?? "");
    const broken = (reason: string) => ({
      links: rows.length,
      head: undefined,
      broken: { seq, runId: row.id, reason: `record #${seq} (${row.id}) ${reason}` },
    });
    if (actual !== row.chain_sha256)
      return broken(`was altered: its fields hash to ${actual}, it was recorded as ${row.chain_sha256}`);
    if (row.chain_prev !== prev)
      return broken(
        `does not follow record #${seq - 1}: it carries ${row.chain_prev} as the hash before it, record #${seq - 1} hashes to ${prev}`,
      );
    prev = row.chain_sha256;
    expected++;
  }
  const last = rows.at(-1);
  return { links: rows.length, head: last ? linkOf(trailId(sql) ?? "", last) : undefined, broken: null };
}
