/**
 * Evidence, not claims: after an object is stored, read back from the bucket the version, ETag, retention, legal
 * hold and tags it actually carries. Where the server ignored what the write asked for (Ceph RGW ignores lock
 * and tag headers on CreateMultipartUpload), apply it to that exact version with PutObjectRetention /
 * PutObjectLegalHold / PutObjectTagging and read back again; if the bucket still does not show it, the object
 * fails permanently, naming what the server did. What is recorded is what was read back.
 *
 * Requests: none when nothing is asked and the write's answer carried an ETag (and a version id, in a versioned
 * bucket); otherwise one HeadObject (lock or hold asked, or the answer lacked them) and one GetObjectTagging
 * (tags asked, unless HeadObject already counted none), plus the repairs and a second read when needed.
 */
import type { Logger } from "pino";
import { ArchiverError, classify } from "../base/errors.js";
import { warnOnce } from "../base/say-once.js";
import { tagging } from "./object-params.js";
import { asksLock, repairsFor, shortfalls, type Protection } from "./protection.js";
import type { ObjectHead } from "./object-store.js";
import { atVersion as at, type Requests } from "./requests.js";
import type { StoredEvidence } from "../base/stored.js";

/** One stored object as the bucket shows it, and what it took. */
export interface ObjectEvidence extends StoredEvidence {
  /** The requests that applied what the write itself did not; empty when the write sufficed. */
  repairedWith: string[];
}

export interface EvidenceContext {
  sink: Requests;
  /** What every object of this run is asked to carry; null: nothing (no lock, hold or tags). */
  wanted: Protection | null;
  /** The bucket keeps (or may keep) versions: an answer without a version id is completed by a HEAD. */
  versioned: boolean;
  repairs: RepairLog;
}

interface Shown {
  etag: string | null;
  versionId: string | null;
  protection: Protection;
}

/** Retention and legal hold as a HeadObject answer shows them (tags: not in it). */
export function lockShown(head: ObjectHead): Protection {
  const until = head.retainUntil;
  const retention = head.lockMode && until ? { mode: head.lockMode, until } : null;
  return { retention, legalHold: head.legalHold, tags: null };
}

function readTags(sink: Requests, key: string, versionId: string | null): Promise<[string, string][]> {
  return sink.s3(`GetObjectTagging ${at(key, versionId)}`, () => sink.store.getTags(key, versionId));
}

/** Read what the bucket shows for one version: HeadObject when `withHead`, GetObjectTagging when tags are asked. */
async function readShown(
  sink: Requests,
  key: string,
  known: { etag: string | null; versionId: string | null },
  wanted: Protection | null,
  withHead: boolean,
  /** A HEAD of this version made just before (the write's proof): not asked again. */
  shown?: ObjectHead,
): Promise<Shown> {
  const head = withHead ? (shown ?? (await sink.headObject(key, known.versionId))) : undefined;
  if (head === null)
    throw new ArchiverError(
      "retryable",
      "stored_object_missing",
      `${at(key, known.versionId)} is not in the bucket when read back`,
    );
  const versionId = known.versionId ?? head?.versionId ?? null;
  const tags = wanted?.tags ? (head?.tagCount === 0 ? [] : await readTags(sink, key, versionId)) : null;
  const lock = head ? lockShown(head) : { retention: null, legalHold: false };
  return { etag: head?.etag || known.etag, versionId, protection: { ...lock, tags } };
}

/** Apply what is missing to that version; returns the operations sent. */
async function repair(
  sink: Requests,
  key: string,
  versionId: string | null,
  wanted: Protection,
  shown: Protection,
) {
  const fix = repairsFor(wanted, shown);
  const { store } = sink;
  const ops: [string, () => Promise<unknown>][] = [];
  const { retention, tags } = fix;
  if (retention)
    ops.push([
      "PutObjectRetention",
      () => store.putRetention(key, versionId, retention.mode, retention.until),
    ]);
  if (fix.legalHold) ops.push(["PutObjectLegalHold", () => store.putLegalHold(key, versionId)]);
  if (tags) ops.push(["PutObjectTagging", () => store.putTags(key, versionId, tags)]);
  for (const [name, send] of ops) await sink.s3(`${name} ${at(key, versionId)}`, send).catch(refused(name));
  return ops.map(([name]) => name);

  function refused(name: string) {
    return (err: unknown): never => {
      const c = classify(err);
      const status = c.status !== undefined ? ` (HTTP ${c.status})` : "";
      throw new ArchiverError(
        c.kind,
        "lock_not_applied",
        `${at(key, versionId)} shows ${shortfalls(wanted, shown).join("; ")}, and ${name} failed: ${c.code}${status}: ${c.message}. Not recorded as protected.`,
        { cause: err, ...(c.status !== undefined ? { status: c.status } : {}) },
      );
    };
  }
}

function evidenceOf(shown: Shown, repairedWith: string[]): ObjectEvidence {
  const r = shown.protection.retention;
  return {
    etag: shown.etag,
    versionId: shown.versionId,
    lockMode: r?.mode ?? null,
    retainUntil: r?.until.toISOString() ?? null,
    legalHold: shown.protection.legalHold,
    tags: shown.protection.tags ? (tagging(shown.protection.tags) ?? "") : null,
    repairedWith,
  };
}

/**
 * The evidence for an object just stored (or found stored): `stored` is what the write answered, `writtenBy`
 * names the write for messages ("PutObject", "CreateMultipartUpload", ...).
 */
export async function settleEvidence(
  ctx: EvidenceContext,
  stored: { key: string; etag: string | null; versionId: string | null; head?: ObjectHead | undefined },
  writtenBy: string,
): Promise<ObjectEvidence> {
  const { sink, wanted } = ctx;
  const { key } = stored;
  const withHead = asksLock(wanted) || !stored.etag || (ctx.versioned && !stored.versionId);
  const known = { etag: stored.etag || null, versionId: stored.versionId || null };
  if (!withHead && !wanted)
    return evidenceOf({ ...known, protection: { retention: null, legalHold: false, tags: null } }, []);
  const first = await readShown(sink, key, known, wanted, withHead, stored.head);
  const lacking = wanted ? shortfalls(wanted, first.protection) : [];
  if (!wanted || lacking.length === 0) return evidenceOf(first, []);
  const applied = await repair(sink, key, first.versionId, wanted, first.protection);
  const second = await readShown(sink, key, first, wanted, asksLock(wanted));
  const still = shortfalls(wanted, second.protection);
  if (still.length > 0)
    throw new ArchiverError(
      "permanent",
      "lock_not_applied",
      `${at(key, second.versionId)}: after ${writtenBy} the bucket showed ${lacking.join("; ")}; ${applied.join(", ")} answered success, yet it still shows ${still.join("; ")}. Not recorded as protected.${asksLock(wanted) ? " (S3 shows a version's lock only to credentials with s3:GetObjectRetention and s3:GetObjectLegalHold.)" : ""}`,
    );
  ctx.repairs.note(key, writtenBy, lacking, applied);
  return evidenceOf(second, applied);
}

/**
 * Tells the user when a write did not get what it asked for: what the server does with one kind of write, warned
 * once per process (base/say-once.ts); each object it happens to is logged at info.
 */
export class RepairLog {
  constructor(private readonly logger: Logger) {}

  note(key: string, writtenBy: string, lacking: string[], applied: string[]): void {
    const msg = `after ${writtenBy} the bucket did not show all that was asked (${lacking.join("; ")}): applied with ${applied.join(", ")} and read back`;
    const fields = { key, written_by: writtenBy, lacking, applied };
    warnOnce(this.logger, `repaired-after:${writtenBy}`, fields, msg, "info");
  }
}
