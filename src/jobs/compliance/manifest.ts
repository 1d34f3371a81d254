/**
 * `envoy-archiver manifest`: one row per archived recording, streamed from the state DB (a million recordings
 * never need a million rows in memory), as CSV or JSON Lines, to a file or stdout, optionally uploaded to S3
 * under {prefix}manifests/ with its own SHA-256.
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Config } from "../../base/config.js";
import { NO_COUNTS } from "../../observe/tally.js";
import { newRunId, startCommandRun } from "../../state/audit.js";
import { StateDb, type ChainLink } from "../../state/db.js";
import { anchorLink } from "../audit.js";
import type { Window } from "../../base/dates.js";
import { manifestKey } from "../../base/keys.js";
import { openPrivateWriteStream, type Readers } from "../../base/private-fs.js";
import { DEFAULT_RETRY_POLICY } from "../../base/retry.js";
import { openSink } from "../../s3/s3.js";
import { unquoteEtag } from "../../s3/listing.js";
import { openState } from "../../state/integrity.js";
import { archivedByCallId, type ArchivedRow } from "../../state/scans.js";
import { redactText } from "../../base/redact.js";
import { laterCopies } from "../../state/source-changes.js";

export const MANIFEST_COLUMNS = [
  "call_id",
  "key",
  "bytes",
  "sha256",
  "content_type",
  "recording_start_time",
  "duration_seconds",
  "archived_at",
  "etag",
  "version_id",
  "lock_mode",
  "retain_until",
  "legal_hold",
  "storage_class",
  "sse",
  "tags",
  "sidecar_version_id",
  "sidecar_lock_mode",
  "sidecar_retain_until",
  "sidecar_legal_hold",
] as const;

type ManifestRow = Record<(typeof MANIFEST_COLUMNS)[number], string | number | boolean | null>;

export function manifestRow(r: ArchivedRow): ManifestRow {
  const row: ManifestRow = {
    call_id: r.call_id,
    key: r.key,
    bytes: r.bytes,
    sha256: r.sha256,
    content_type: r.content_type,
    recording_start_time: r.recording_start_time,
    duration_seconds: r.duration_seconds,
    archived_at: r.archived_at,
    // The ETag's value, without the quotes HTTP puts around it (CSV would triple them: `"""894b…"""`).
    etag: r.etag === null ? null : unquoteEtag(r.etag),
    version_id: r.version_id,
    lock_mode: r.lock_mode,
    retain_until: r.retain_until,
    legal_hold: r.legal_hold === 1,
    storage_class: r.storage_class ?? "STANDARD",
    sse: r.sse,
    tags: r.tags,
    sidecar_version_id: r.sidecar_version_id,
    sidecar_lock_mode: r.sidecar_lock_mode,
    sidecar_retain_until: r.sidecar_retain_until,
    sidecar_legal_hold: r.sidecar_legal_hold === 1,
  };
  // The values that came from the source pass the one redaction, like everything stored or printed.
  for (const c of ["content_type", "recording_start_time"] as const) {
    const v = row[c];
    if (typeof v === "string") row[c] = redactText(v);
  }
  return row;
}

/** The manifest's rows: the archived recordings in call-id order (a window: by day, then key), then the later copies. */
export function* manifestRows(state: StateDb, window: Partial<Window> | undefined): Generator<ArchivedRow> {
  yield* archivedByCallId(state, window);
  yield* laterCopies(state, window);
}

export function csvField(v: string | number | boolean | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatRow(row: ManifestRow, format: "csv" | "jsonl"): string {
  return format === "csv"
    ? MANIFEST_COLUMNS.map((c) => csvField(row[c])).join(",") + "\n"
    : JSON.stringify(row) + "\n";
}

export interface ManifestOptions {
  format: "csv" | "jsonl";
  /** File to write; stdout when absent (and not uploading). */
  out?: string | undefined;
  window?: Partial<Window>;
  upload?: boolean;
}

export interface ManifestResult {
  rows: number;
  bytes: number;
  sha256: string;
  out: string | null;
  key: string | null;
}

async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}

/**
 * Where the rows go: the file (created 0600 whatever the umask; the user's `--out` is 0640 under
 * ARCHIVER_GROUP_READABLE, the temp file to upload never is), or stdout.
 */
function manifestStream(path: string | null, readers: Readers, stdout: Writable | undefined): Writable {
  return path ? openPrivateWriteStream(path, readers) : (stdout ?? process.stdout);
}

/** A file written here, stored in S3 under `key`, checked to hash as it did when written (manifests, exports). */
export async function storeFile(
  config: Config,
  f: {
    key: string;
    path: string;
    contentType: string;
    metadata: Record<string, string>;
    bytes: number;
    sha256: string;
  },
  logger: Logger,
): Promise<void> {
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger);
  try {
    const stored = await sink.transfer({
      key: f.key,
      contentType: f.contentType,
      metadata: f.metadata,
      objectParams: {},
      open: async (offset) => ({
        body: createReadStream(f.path, { start: offset }),
        skip: 0,
        totalBytes: statSync(f.path).size,
        contentType: null,
      }),
      expectedBytes: f.bytes,
    });
    if (stored.sha256 !== f.sha256)
      throw new Error(`${f.key} changed while uploading (${stored.sha256} != ${f.sha256})`);
  } finally {
    sink.close();
  }
}

export async function writeManifest(
  config: Config,
  opts: ManifestOptions,
  deps: { logger: Logger; stdout?: Writable },
): Promise<ManifestResult> {
  const { state, audit } = openForManifest(config, opts.window, deps.logger);
  const runId = audit?.runId ?? newRunId("manifest");
  let tmp: string | undefined;
  let link: ChainLink | undefined;
  const counts = { ...NO_COUNTS };

  try {
    let path = opts.out ?? null;
    if (!path && opts.upload) {
      tmp = mkdtempSync(join(tmpdir(), "envoy-manifest-"));
      path = join(tmp, `manifest.${opts.format}`);
    }
    const stream = manifestStream(path, tmp ? "owner" : config.outputReaders, deps.stdout);
    const hash = createHash("sha256");
    let rows = 0;
    let bytes = 0;
    const emit = async (text: string) => {
      hash.update(text);
      bytes += Buffer.byteLength(text);
      await write(stream, text);
    };
    if (opts.format === "csv") await emit(MANIFEST_COLUMNS.join(",") + "\n");
    // Each recording as archived, then the later copies of sources that changed ({call_id}.v2.m4a).
    for (const r of manifestRows(state, opts.window)) {
      await emit(formatRow(manifestRow(r), opts.format));
      rows++;
      counts.bytes += r.bytes;
    }
    if (path) {
      stream.end();
      await once(stream, "finish");
    }
    const sha256 = hash.digest("hex");
    let key: string | null = null;
    if (opts.upload && path) {
      key = manifestKey(config.s3.prefix, `manifest-${runId.slice("manifest-".length)}.${opts.format}`);
      const contentType = opts.format === "csv" ? "text/csv" : "application/x-ndjson";
      const file = { key, path, contentType, metadata: { rows: String(rows) }, bytes, sha256 };
      await storeFile(config, file, deps.logger);
    }
    counts.archived = rows;
    link = audit?.state.finishRun(runId, counts, "ok", null, {
      rows,
      bytes,
      sha256,
      out: opts.out ?? null,
      key,
      format: opts.format,
    });
    return { rows, bytes, sha256, out: opts.out ?? null, key };
  } catch (err) {
    link = audit?.state.finishRun(runId, counts, "fatal", (err as Error).message);
    throw err;
  } finally {
    state.close();
    audit?.state.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (link) await anchorLink(config, link, deps.logger);
  }
}

/**
 * The rows are read from a read-only connection (an auditor's read-only copy works); the manifest is recorded in
 * the audit trail when the DB can be written, and said not to be when it cannot.
 */
function openForManifest(
  config: Config,
  window: Partial<Window> | undefined,
  logger: Logger,
): { state: StateDb; audit: { state: StateDb; runId: string } | undefined } {
  const state = StateDb.openReadOnly(config.dbPath);
  let writable: StateDb | undefined;
  try {
    writable = openState(config.dbPath, { mustExist: true });
    return {
      state,
      audit: { state: writable, runId: startCommandRun(writable, config, "manifest", window) },
    };
  } catch (err) {
    writable?.close();
    const code = (err as { code?: string }).code ?? "";
    if (code !== "state_db_read_only" && !code.startsWith("SQLITE_READONLY")) {
      state.close();
      throw err;
    }
    logger.warn(
      { db: config.dbPath },
      "the state DB is read-only: this manifest is not recorded in its audit trail (runs)",
    );
    return { state, audit: undefined };
  }
}
