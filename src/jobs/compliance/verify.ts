/**
 * `envoy-archiver verify`: proves today that what the state DB says was archived is in S3, intact.
 *
 * Shallow: the bucket listing (1,000 objects a request, several ranges at once: with-listing.ts) shows each
 * recording under its key with the size and ETag recorded when it was stored, which proves it unchanged since.
 * A recording that the listing does not prove (missing from it, another size or ETag, no ETag recorded) or whose
 * state records a lock or hold is asked for with a HEAD, which decides: the object exists, its size equals the
 * recorded size, its ETag the recorded one (another ETag: it was written again), its sha256 metadata (or, for a
 * multipart upload, its ETag) the recorded one; a recorded lock or hold still holds on the recorded version
 * (lock-check.ts). `deep`: the HEAD for every recording, and every byte read back and hashed.
 */
import type { Logger } from "pino";
import type { Config } from "../../base/config.js";
import { NO_COUNTS } from "../../observe/tally.js";
import { startCommandRun } from "../../state/audit.js";
import { anchorLink } from "../audit.js";
import { BoundedQueue } from "../../base/concurrency.js";
import type { Window } from "../../base/dates.js";
import { classify } from "../../base/errors.js";
import { recordingsListing } from "../../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../../base/retry.js";
import { listObjects, sameEtag, unquoteEtag } from "../../s3/listing.js";
import { hashObject } from "../../s3/read-back.js";
import type { ObjectHead } from "../../s3/object-store.js";
import { openSink, type S3Sink } from "../../s3/s3.js";
import { openState } from "../../state/integrity.js";
import { archivedByKey, awaitingRepair, type ArchivedRow } from "../../state/scans.js";
import { laterCopies } from "../../state/source-changes.js";
import { anyLockProblem, recordsAnyLock } from "./lock-check.js";
import { provenByListing, withListing, type Paired } from "./with-listing.js";

/** The audit row lists this many of the recordings marked for repair (the rest are in the log and the state). */
const MAX_LISTED_REPAIRS = 1000;

export interface VerifyResult {
  checked: number;
  ok: number;
  missing: number;
  mismatched: number;
  errors: number;
}

/**
 * A single PUT carries its SHA-256 as `sha256` metadata; a multipart upload carries none (it lives in the
 * sidecar, the state and the manifest), so its ETag as stored must be the one recorded. Shallow, any ETag other
 * than the recorded one means the object was written again.
 */
function contentChanged(head: ObjectHead, r: ArchivedRow, shallow: boolean): string | null {
  const etagChanged = unquoteEtag(r.etag) !== "" && !sameEtag(head.etag, r.etag);
  if (shallow && etagChanged)
    return `ETag ${head.etag ?? "(none)"} but ${r.etag} was archived: the object was written again`;
  const stored = head.metadata.sha256;
  if (stored !== undefined)
    return stored === r.sha256 ? null : `sha256 metadata ${stored} but ${r.sha256} was archived`;
  if (!r.etag) return "no sha256 metadata, and no ETag recorded to compare";
  return etagChanged ? `ETag ${head.etag ?? "(none)"} but ${r.etag} was archived` : null;
}

/** What is wrong with one archived recording in the bucket (HEAD, lock, and with `deep` its bytes); null: nothing. */
async function recordingProblem(
  sink: S3Sink,
  r: ArchivedRow,
  deep: boolean,
): Promise<{ kind: "missing" | "mismatched"; reason: string } | null> {
  const head = await sink.headObject(r.key);
  if (!head) return { kind: "missing", reason: "no such object" };
  if (head.size !== r.bytes)
    return { kind: "mismatched", reason: `size ${head.size} but ${r.bytes} bytes were archived` };
  const changed = contentChanged(head, r, !deep);
  if (changed) return { kind: "mismatched", reason: changed };
  const lock = await anyLockProblem(sink, r);
  if (lock) return lock;
  if (deep) {
    const actual = await hashObject(sink, r.key);
    if (actual !== r.sha256)
      return { kind: "mismatched", reason: `content hashes to ${actual}, archived as ${r.sha256}` };
  }
  return null;
}

export async function verifyArchive(
  config: Config,
  opts: { window?: Partial<Window>; deep?: boolean },
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<VerifyResult> {
  const { logger } = deps;
  const state = openState(config.dbPath, { always: true, mustExist: true });
  const runId = startCommandRun(state, config, opts.deep ? "verify-deep" : "verify", opts.window);
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger, deps.signal);
  const result: VerifyResult = { checked: 0, ok: 0, missing: 0, mismatched: 0, errors: 0 };
  const c: CheckContext = {
    sink,
    state,
    logger,
    runId,
    deep: opts.deep === true,
    result,
    repairs: [],
    byHead: 0,
  };
  const check = checker(c);
  let byListing = 0;
  const queue = new BoundedQueue(config.concurrency);
  let outcome = "fatal";
  try {
    await queue.run(async () => {
      for await (const { row, listed } of rowsToCheck(state, sink, config, opts)) {
        if (deps.signal?.aborted) break;
        // A recorded lock or hold is read from the recorded version: the listing cannot show it.
        if (!opts.deep && !recordsAnyLock(row) && provenByListing(row, listed)) {
          result.checked++;
          result.ok++;
          byListing++;
          continue;
        }
        await queue.add(() => check(row));
      }
      // The later copies of changed sources ({call_id}.v2.m4a): a HEAD each (they are few), as a recording.
      for (const row of laterCopies(state, opts.window ?? {})) {
        if (deps.signal?.aborted) break;
        await queue.add(() => check(row));
      }
    });
    logger.info(
      { checked: result.checked, by_listing: byListing, by_head: c.byHead },
      "verify: recordings proven by the bucket listing, and by a request each",
    );
    outcome =
      result.missing + result.mismatched > 0
        ? "failures"
        : result.errors > 0
          ? "errors"
          : result.checked === 0
            ? "nothing_checked"
            : "ok";
    return result;
  } finally {
    const link = state.finishRun(
      runId,
      {
        ...NO_COUNTS,
        listed: result.checked,
        archived: result.ok,
        failed: result.missing + result.mismatched,
      },
      outcome,
      null,
      { ...result, by_listing: byListing, by_head: c.byHead, marked_for_repair: c.repairs },
    );
    state.close();
    await anchorLink(config, link, logger, sink);
    sink.close();
  }
}

interface CheckContext {
  sink: S3Sink;
  state: ReturnType<typeof openState>;
  logger: Logger;
  runId: string;
  deep: boolean;
  result: VerifyResult;
  /** The recordings this verify marked for repair (the first MAX_LISTED_REPAIRS, for the audit trail). */
  repairs: { call_id: string; key: string; problem: string }[];
  /** Recordings checked with a request each (not proven by the listing). */
  byHead: number;
}

/**
 * The check of one recording with a request (HEAD, lock, `deep`: its bytes). Each one found missing or altered
 * goes back to pending: the next `run` archives it again from the source (an altered object is never written
 * over: the source's bytes go under the next versioned key).
 */
function checker(c: CheckContext): (r: ArchivedRow) => Promise<void> {
  const { result, logger } = c;
  const problem = (kind: "missing" | "mismatched", r: ArchivedRow, reason: string) => {
    result[kind]++;
    const marked = c.state.markForRepair(
      r.call_id,
      kind === "missing" ? "verify_missing" : "verify_altered",
      `${c.runId} found it ${kind === "missing" ? "missing" : "altered"}: ${reason}`,
    );
    if (marked && c.repairs.length < MAX_LISTED_REPAIRS)
      c.repairs.push({ call_id: r.call_id, key: r.key, problem: kind });
    logger.error(
      { call_id: r.call_id, key: r.key, problem: kind },
      `${kind}: ${r.key}: ${reason} (the next \`run\` archives it again from the source)`,
    );
  };
  return async (r) => {
    c.byHead++;
    try {
      const found = await recordingProblem(c.sink, r, c.deep);
      if (found) return problem(found.kind, r, found.reason);
      result.ok++;
    } catch (err) {
      const e = classify(err);
      if (e.kind === "fatal") throw e;
      result.errors++;
      logger.error(
        { call_id: r.call_id, key: r.key, code: e.code },
        `could not check ${r.key}: ${e.message}`,
      );
    } finally {
      result.checked++;
    }
  };
}

/**
 * Every archived recording in the window: first those an earlier verify found missing or altered that no run
 * has archived again yet (still counted until they are), then the rest in key order; shallow: each paired with
 * the bucket listing.
 */
async function* rowsToCheck(
  state: ReturnType<typeof openState>,
  sink: ReturnType<typeof openSink>,
  config: Config,
  opts: { window?: Partial<Window>; deep?: boolean },
): AsyncGenerator<Paired<ArchivedRow>> {
  for (const row of awaitingRepair(state, opts.window)) yield { row, listed: undefined };
  const rows = archivedByKey(state, opts.window);
  if (opts.deep) {
    for (const row of rows) yield { row, listed: undefined };
    return;
  }
  const range = recordingsListing(config.s3.prefix, opts.window?.startDate);
  yield* withListing(rows, { ...range, parallel: Math.min(config.concurrency, 4) }, (p, after, stop) =>
    listObjects(sink, p, { startAfter: after, stopAfter: stop, ahead: false }),
  );
}
