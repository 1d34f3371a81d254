/**
 * The audit trail beyond the state DB: after every command that changes or attests the archive, the chain's head
 * is written to the bucket as its own object ({prefix}_audit/{trail}/{seq}-{sha256}.json, locked like a recording
 * when lock settings are on, never overwritten: one small object a command). `checkTrail` walks the DB's chain
 * and compares it with the heads the bucket holds, so an edited, truncated or older copy of the DB is caught.
 */
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { classify } from "../base/errors.js";
import { auditHeadKey, auditPrefix, parseAuditHeadKey } from "../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../base/retry.js";
import { listObjects } from "../s3/listing.js";
import { objectParamsFor } from "../s3/object-params.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import type { BrokenLink, ChainLink, RunCounts, StateDb } from "../state/db.js";
import { openState } from "../state/integrity.js";

/** A head as the bucket holds it, read back after it was written. */
export interface AnchoredHead {
  key: string;
  versionId: string | null;
  lockMode: string | null;
  retainUntil: string | null;
}

/**
 * Write a link (the chain's new head) to the bucket and read it back. Never throws: a head that could not be
 * written is logged, and the next command's head covers this link (each head is the hash of all before it).
 */
export async function anchorLink(
  config: Config,
  link: ChainLink,
  logger: Logger,
  /** The command's own store, when it has one (closed by the command); otherwise one is opened for this. */
  store?: S3Sink,
): Promise<AnchoredHead | null> {
  if (!config.s3.bucket) {
    logger.info(
      { seq: link.seq },
      "audit: no bucket set, this record is anchored by the next command's head",
    );
    return null;
  }
  const sink = store ?? openSink(config, DEFAULT_RETRY_POLICY, logger);
  const key = auditHeadKey(config.s3.prefix, link.trail, link.seq, link.sha256);
  try {
    // Retained like a recording (and encrypted, and in its class), from now; a legal hold and the recordings'
    // tags are for recordings: `hold --off` must never have to find the trail's heads.
    const {
      ObjectLockLegalHoldStatus: _hold,
      Tagging: _tags,
      ...params
    } = objectParamsFor(config.storage, null, sink.now());
    const written = await sink.putJson(key, link, params, { sha256: link.sha256 });
    const head = await sink.headObject(key, written.versionId);
    const shown: AnchoredHead = {
      key,
      versionId: head?.versionId ?? null,
      lockMode: head?.lockMode ?? null,
      retainUntil: head?.retainUntil?.toISOString() ?? null,
    };
    if (!head) logger.warn({ key }, "audit: the head just written is not in the bucket");
    else if (params.ObjectLockMode && shown.lockMode !== params.ObjectLockMode)
      logger.warn(
        { key, asked: params.ObjectLockMode, shown: shown.lockMode },
        "audit: the bucket does not show the lock asked for on the trail's head",
      );
    return shown;
  } catch (err) {
    const c = classify(err);
    logger.warn(
      { key, code: c.code },
      `audit: could not write the trail's head to the bucket (${c.message}); the next command's head covers it`,
    );
    return null;
  } finally {
    if (!store) sink.close();
  }
}

/**
 * A command's end: its record appended to the trail, the state DB closed, the new head written to the bucket
 * (with the command's store, closed after), in that order.
 */
export async function endCommand(
  config: Config,
  state: StateDb,
  end: { runId: string; counts: RunCounts; outcome: string; error: string | null; details: unknown },
  logger: Logger,
  store?: S3Sink,
): Promise<void> {
  const link = state.finishRun(end.runId, end.counts, end.outcome, end.error, end.details);
  state.close();
  await anchorLink(config, link, logger, store);
  store?.close();
}

/** The trail as the state DB holds it, link by link. */
export function readTrail(config: Config): ChainLink[] {
  const state = openState(config.dbPath);
  try {
    return state.auditTrail();
  } finally {
    state.close();
  }
}

export interface TrailCheck {
  /** This state DB's trail id (null before its first record). */
  trail: string | null;
  /** Records in the state DB's chain. */
  records: number;
  head: { seq: number; sha256: string } | null;
  /** The first record that breaks the chain, or that the bucket contradicts; null when intact. */
  broken: BrokenLink | null;
  /** What the bucket holds; null when no bucket is set (nothing to compare with). */
  bucket: {
    heads: number;
    latest: { seq: number; sha256: string } | null;
    /** Records after the bucket's latest head (written when the bucket could not be reached, or the last). */
    unanchored: number;
    /** Other trails under the prefix (other shards' state DBs, or a state DB this one replaced). */
    otherTrails: string[];
  } | null;
}

/** Compare the DB's links with the heads the bucket holds: every head must be the DB's link of that number. */
export function compareHeads(
  links: readonly ChainLink[],
  heads: readonly { seq: number; sha256: string }[],
): BrokenLink | null {
  const last = links.at(-1)?.seq ?? 0;
  for (const h of [...heads].sort((a, b) => a.seq - b.seq)) {
    const link = links[h.seq - 1];
    if (!link || link.seq !== h.seq)
      return {
        seq: h.seq,
        runId: null,
        reason: `the bucket holds head #${h.seq} (${h.sha256}) that the state DB does not have (its last record is #${last}): the state DB was truncated or is an older copy`,
      };
    if (link.sha256 !== h.sha256)
      return {
        seq: h.seq,
        runId: String(link.record.id),
        reason: `record #${h.seq} (${String(link.record.id)}) hashes to ${link.sha256}, the bucket holds ${h.sha256} for it: the state DB's trail was rewritten`,
      };
  }
  return null;
}

/** The chain checked record by record, then against the heads in the bucket. */
export async function checkTrail(config: Config, deps: { logger: Logger }): Promise<TrailCheck> {
  const state = openState(config.dbPath);
  let links: ChainLink[];
  let chain: ReturnType<typeof state.checkAuditTrail>;
  let trail: string | null;
  try {
    chain = state.checkAuditTrail();
    links = state.auditTrail();
    trail = state.auditTrailId();
  } finally {
    state.close();
  }
  const out: TrailCheck = {
    trail,
    records: chain.links,
    head: chain.head ? { seq: chain.head.seq, sha256: chain.head.sha256 } : null,
    broken: chain.broken,
    bucket: null,
  };
  if (!config.s3.bucket) return out;
  const sink = openSink(config, DEFAULT_RETRY_POLICY, deps.logger);
  const heads: { seq: number; sha256: string }[] = [];
  const others = new Set<string>();
  try {
    for await (const o of listObjects(sink, auditPrefix(config.s3.prefix))) {
      const h = parseAuditHeadKey(config.s3.prefix, o.key);
      if (h?.trail === trail) heads.push(h);
      else if (h) others.add(h.trail);
    }
  } finally {
    sink.close();
  }
  const latest = heads.reduce<{ seq: number; sha256: string } | null>(
    (a, h) => (a && a.seq >= h.seq ? a : h),
    null,
  );
  out.bucket = {
    heads: heads.length,
    latest,
    unanchored: Math.max(0, chain.links - (latest?.seq ?? 0)),
    otherTrails: [...others].sort(),
  };
  out.broken ??= compareHeads(links, heads);
  return out;
}
