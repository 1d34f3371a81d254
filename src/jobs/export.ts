/**
 * `envoy-archiver export`: an eDiscovery export of a selection (jobs/selection.ts: from the state DB, never the
 * source) to an S3 prefix or a directory: each recording and its sidecar, the archived versions, copied and each
 * copy checked (export-target.ts); a manifest of the export (one JSON line a file, with its SHA-256 and how it
 * was checked) whose own SHA-256 is printed and recorded in the audit trail.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { BoundedQueue } from "../base/concurrency.js";
import { classify } from "../base/errors.js";
import { openPrivateWriteStream } from "../base/private-fs.js";
import { sidecarKey } from "../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../base/retry.js";
import { NO_COUNTS } from "../observe/tally.js";
import { openSink } from "../s3/s3.js";
import { startCommandRun } from "../state/audit.js";
import { openState } from "../state/integrity.js";
import type { ArchivedRow } from "../state/scans.js";
import { endCommand } from "./audit.js";
import {
  CopyMismatch,
  manifestPlace,
  openTarget,
  type ExportObject,
  type ExportTarget,
} from "./export-target.js";
import { describeSelection, selectArchived, type Selection } from "./selection.js";

export interface ExportResult {
  to: string;
  /** Recordings selected. */
  selected: number;
  /** Files copied and checked (recordings and sidecars). */
  files: number;
  bytes: number;
  /** Copies that did not match what was archived (each logged). */
  mismatched: number;
  /** Objects that could not be copied (each logged). */
  errors: number;
  /** The export's manifest: where it is, its SHA-256; null when nothing was selected. */
  manifest: { where: string; sha256: string; bytes: number } | null;
}

/** The two objects a recording is exported as: the archived version and its sidecar's. */
function objectsOf(r: ArchivedRow): ExportObject[] {
  const recording = {
    callId: r.call_id,
    key: r.key,
    versionId: r.version_id,
    bytes: r.bytes,
    sha256: r.sha256,
    etag: r.etag,
  };
  const sidecar = {
    callId: r.call_id,
    key: sidecarKey(r.key),
    versionId: r.sidecar_version_id,
    bytes: null,
    sha256: null,
    etag: r.sidecar_etag ?? null,
  };
  return [recording, sidecar];
}

export async function exportSelection(
  config: Config,
  opts: { selection: Selection; to: string },
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<ExportResult> {
  const { logger } = deps;
  const state = openState(config.dbPath);
  const runId = startCommandRun(state, config, "export", opts.selection.window, { mode: "selection" });
  const source = openSink(config, DEFAULT_RETRY_POLICY, logger, deps.signal);
  const target = openTarget(config, opts.to, source, logger);
  const res: ExportResult = {
    to: target.where,
    selected: 0,
    files: 0,
    bytes: 0,
    mismatched: 0,
    errors: 0,
    manifest: null,
  };
  let tmp: string | undefined;
  let outcome = "fatal";
  let error: string | null = null;
  try {
    const rows = selectArchived(state, opts.selection);
    const first = rows.next();
    if (first.done) {
      outcome = "empty";
      return res;
    }
    const tmpDir = () => (tmp = mkdtempSync(join(tmpdir(), "envoy-export-")));
    const path = manifestPlace(opts.to, tmpDir, config.outputReaders);
    const manifest = openPrivateWriteStream(path, config.outputReaders);
    const hash = createHash("sha256");
    let manifestBytes = 0;
    const line = async (text: string) => {
      hash.update(text);
      manifestBytes += Buffer.byteLength(text);
      if (!manifest.write(text)) await once(manifest, "drain");
    };
    await copyAll(config, prepend(first.value, rows), target, res, line, deps);
    manifest.end();
    await once(manifest, "finish");
    const sha256 = hash.digest("hex");
    res.manifest = {
      where: await target.storeManifest(path, manifestBytes, sha256, logger),
      sha256,
      bytes: manifestBytes,
    };
    outcome = res.mismatched > 0 ? "failures" : res.errors > 0 ? "errors" : "ok";
    return res;
  } catch (err) {
    error = (err as Error).message;
    throw err;
  } finally {
    target.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const failed = res.mismatched + res.errors;
    const counts = { ...NO_COUNTS, listed: res.selected, archived: res.files, failed, bytes: res.bytes };
    const details = { selection: describeSelection(opts.selection), ...res };
    await endCommand(config, state, { runId, counts, outcome, error, details }, logger, source);
  }
}

function* prepend<T>(first: T, rest: Iterator<T>): Generator<T> {
  yield first;
  for (let n = rest.next(); !n.done; n = rest.next()) yield n.value;
}

/** Every selected recording's objects copied, N at a time; each copy's line written as it is proven. */
async function copyAll(
  config: Config,
  rows: Iterable<ArchivedRow>,
  target: ExportTarget,
  res: ExportResult,
  line: (text: string) => Promise<void>,
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<void> {
  const { logger } = deps;
  const copyOne = async (o: ExportObject): Promise<void> => {
    try {
      const f = await target.copy(o);
      res.files++;
      res.bytes += f.bytes;
      await line(JSON.stringify(f) + "\n");
    } catch (err) {
      if (err instanceof CopyMismatch) {
        res.mismatched++;
        logger.error({ call_id: o.callId, key: o.key }, `export: copy does not match: ${err.message}`);
        return;
      }
      const c = classify(err);
      if (c.kind === "fatal") throw c;
      res.errors++;
      logger.error(
        { call_id: o.callId, key: o.key, code: c.code },
        `export: could not copy ${o.key}: ${c.message}`,
      );
    }
  };
  const queue = new BoundedQueue(config.concurrency);
  await queue.run(async () => {
    for (const r of rows) {
      if (deps.signal?.aborted) break;
      res.selected++;
      for (const o of objectsOf(r)) await queue.add(() => copyOne(o));
    }
  });
}
