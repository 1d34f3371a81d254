/**
 * `envoy-archiver hold --on|--off`: a legal hold placed on, or lifted from, every version of the selected
 * recordings and of their sidecars (and of the newer copies of a changed source, `{call_id}.v2.m4a`, with theirs),
 * each version read back from the bucket. The state records what the bucket showed, the audit trail the command.
 */
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { BoundedQueue } from "../base/concurrency.js";
import { classify } from "../base/errors.js";
import { sidecarKey } from "../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../base/retry.js";
import { NO_COUNTS } from "../observe/tally.js";
import { holdEveryVersion, type HoldShown } from "../s3/legal-hold.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import { startCommandRun } from "../state/audit.js";
import type { StateDb } from "../state/db.js";
import { openState } from "../state/integrity.js";
import type { ArchivedRow } from "../state/scans.js";
import { versionedKeys } from "../state/source-changes.js";
import { endCommand } from "./audit.js";
import { describeSelection, selectArchived, type Selection } from "./selection.js";

export interface HoldResult {
  on: boolean;
  /** Recordings the selection named. */
  selected: number;
  /** Object versions the hold was set on. */
  versions: number;
  /** Versions that read back with the hold as asked. */
  confirmed: number;
  /** Versions that read back otherwise, or were gone; and recordings with no version at all. */
  not_shown: number;
  /** Recordings that could not be done (each logged). */
  errors: number;
  /** Archived recordings on hold afterwards, as the state records the bucket's answers. */
  on_hold: number;
}

/** The hold the recorded version shows (the only version, when none was recorded); null when not read. */
function shownFor(shown: HoldShown[], versionId: string | null): boolean | null {
  const v = versionId
    ? shown.find((s) => s.versionId === versionId)
    : shown.length === 1
      ? shown[0]
      : undefined;
  return v?.legalHold ?? null;
}

async function holdRecording(
  sink: S3Sink,
  state: StateDb,
  r: ArchivedRow,
  res: HoldResult,
  logger: Logger,
): Promise<void> {
  const keys = [r.key, ...versionedKeys(state, r.call_id)].flatMap((k) => [k, sidecarKey(k)]);
  const byKey = new Map<string, HoldShown[]>();
  for (const key of keys) {
    const shown = await holdEveryVersion(sink, key, res.on);
    byKey.set(key, shown);
    for (const s of shown) {
      res.versions++;
      if (s.legalHold === res.on) res.confirmed++;
      else {
        res.not_shown++;
        logger.error(
          { call_id: r.call_id, key, version_id: s.versionId, shown: s.legalHold },
          `legal hold ${res.on ? "ON" : "OFF"} asked, the bucket shows ${s.legalHold === null ? "no such version" : s.legalHold ? "ON" : "OFF"}: ${key} (version ${s.versionId})`,
        );
      }
    }
  }
  if ((byKey.get(r.key) ?? []).length === 0) {
    res.not_shown++;
    logger.error({ call_id: r.call_id, key: r.key }, `no version of ${r.key} in the bucket: nothing to hold`);
  }
  state.recordHold(
    r.call_id,
    shownFor(byKey.get(r.key) ?? [], r.version_id),
    shownFor(byKey.get(sidecarKey(r.key)) ?? [], r.sidecar_version_id),
  );
}

export async function holdSelection(
  config: Config,
  opts: { on: boolean; selection: Selection },
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<HoldResult> {
  const { logger } = deps;
  const state = openState(config.dbPath);
  const runId = startCommandRun(state, config, opts.on ? "hold-on" : "hold-off", opts.selection.window, {
    mode: "selection",
  });
  const sink = openSink(config, DEFAULT_RETRY_POLICY, logger, deps.signal);
  const res: HoldResult = {
    on: opts.on,
    selected: 0,
    versions: 0,
    confirmed: 0,
    not_shown: 0,
    errors: 0,
    on_hold: 0,
  };
  const queue = new BoundedQueue(config.concurrency);
  let outcome = "fatal";
  let error: string | null = null;
  try {
    await queue.run(async () => {
      for (const r of selectArchived(state, opts.selection)) {
        if (deps.signal?.aborted) break;
        res.selected++;
        await queue.add(async () => {
          try {
            await holdRecording(sink, state, r, res, logger);
          } catch (err) {
            const c = classify(err);
            if (c.kind === "fatal") throw c;
            res.errors++;
            logger.error(
              { call_id: r.call_id, key: r.key, code: c.code },
              `could not hold ${r.key}: ${c.message}`,
            );
          }
        });
      }
    });
    outcome =
      res.selected === 0 ? "empty" : res.not_shown > 0 ? "failures" : res.errors > 0 ? "errors" : "ok";
    return res;
  } catch (err) {
    error = (err as Error).message;
    throw err;
  } finally {
    res.on_hold = state.countOnHold();
    const failed = res.not_shown + res.errors;
    const counts = { ...NO_COUNTS, listed: res.selected, archived: res.confirmed, failed };
    const details = { selection: describeSelection(opts.selection), ...res };
    await endCommand(config, state, { runId, counts, outcome, error, details }, logger, sink);
  }
}
