/**
 * `envoy-archiver verify`: proves today that what the state DB says was archived is in S3, intact. For each
 * archived recording: the object exists, its size equals the recorded size, its sha256 metadata (or, for a
 * multipart upload, its ETag) equals the recorded one; a recorded lock or hold still holds on the recorded version
 * (lock-check.ts); with `deep`, every byte is read back and hashed.
 */
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { NO_COUNTS, startCommandRun } from "../audit.js";
import { BoundedQueue } from "../concurrency.js";
import type { Window } from "../dates.js";
import { classify } from "../errors.js";
import { DEFAULT_RETRY_POLICY } from "../retry.js";
import { hashObject } from "../sink/read-back.js";
import { openSink } from "../sink/s3.js";
import { StateDb, type CallRow } from "../state/db.js";
import { archivedRows } from "./archived.js";
import { lockProblem, recordsLock } from "./lock-check.js";

export interface VerifyResult {
  checked: number;
  ok: number;
  missing: number;
  mismatched: number;
  errors: number;
}

const unquote = (etag: string | null | undefined) => (etag ?? "").replace(/^"|"$/g, "");

/**
 * A single PUT carries its SHA-256 as `sha256` metadata; a multipart upload carries none (it lives in the
 * sidecar, the state and the manifest), so its ETag as stored must be the one recorded.
 */
function contentChanged(
  head: { Metadata?: Record<string, string>; ETag?: string },
  r: CallRow,
): string | null {
  const stored = head.Metadata?.sha256;
  if (stored !== undefined)
    return stored === r.sha256 ? null : `sha256 metadata ${stored} but ${r.sha256} was archived`;
  if (!r.etag) return "no sha256 metadata, and no ETag recorded to compare";
  return unquote(head.ETag) === unquote(r.etag)
    ? null
    : `ETag ${head.ETag ?? "(none)"} but ${r.etag} was archived`;
}

export async function verifyArchive(
  config: Config,
  opts: { window?: Partial<Window>; deep?: boolean },
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<VerifyResult> {
  const { logger } = deps;
  const state = StateDb.open(config.dbPath);
  const runId = startCommandRun(state, config, opts.deep ? "verify-deep" : "verify", opts.window);
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger, deps.signal);
  const bucket = sink.settings.bucket;
  const result: VerifyResult = { checked: 0, ok: 0, missing: 0, mismatched: 0, errors: 0 };

  const problem = (kind: "missing" | "mismatched", r: CallRow, reason: string) => {
    result[kind]++;
    logger.error({ call_id: r.call_id, key: r.key, problem: kind }, `${kind}: ${r.key}: ${reason}`);
  };

  const check = async (r: CallRow): Promise<void> => {
    const key = r.key!;
    try {
      let head;
      try {
        head = await sink.s3(`HeadObject ${key}`, () =>
          sink.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
        );
      } catch (err) {
        const c = classify(err);
        if (c.status === 404 || c.code === "NotFound" || c.code === "NoSuchKey")
          return problem("missing", r, "no such object");
        throw c;
      }
      if (head.ContentLength !== r.bytes)
        return problem("mismatched", r, `size ${head.ContentLength} but ${r.bytes} bytes were archived`);
      const changed = contentChanged(head, r);
      if (changed) return problem("mismatched", r, changed);
      if (recordsLock(r)) {
        const lock = await lockProblem(sink, r);
        if (lock) return problem(lock.kind, r, lock.reason);
      }
      if (opts.deep) {
        const actual = await hashObject(sink, key);
        if (actual !== r.sha256)
          return problem("mismatched", r, `content hashes to ${actual}, archived as ${r.sha256}`);
      }
      result.ok++;
    } catch (err) {
      const c = classify(err);
      if (c.kind === "fatal") throw c;
      result.errors++;
      logger.error({ call_id: r.call_id, key, code: c.code }, `could not check ${key}: ${c.message}`);
    } finally {
      result.checked++;
    }
  };

  const queue = new BoundedQueue(config.concurrency);
  let outcome = "ok";
  try {
    for (const r of archivedRows(state, opts.window)) {
      if (deps.signal?.aborted) break;
      await queue.add(() => check(r));
    }
    await queue.drain();
    outcome = result.missing + result.mismatched > 0 ? "failures" : result.errors > 0 ? "errors" : "ok";
    return result;
  } catch (err) {
    outcome = "fatal";
    await queue.settle();
    throw err;
  } finally {
    sink.client.destroy();
    state.finishRun(
      runId,
      {
        ...NO_COUNTS,
        listed: result.checked,
        archived: result.ok,
        failed: result.missing + result.mismatched,
      },
      outcome,
      null,
      result,
    );
    state.close();
  }
}
