/**
 * Object protection (retention, legal hold, tags): what an object was asked to carry, what the bucket shows, and
 * how the two compare. Pure; lock-evidence.ts does the reading and repairing.
 */
import type { ObjectParams } from "./types.js";

export type LockMode = "GOVERNANCE" | "COMPLIANCE";

export interface Protection {
  /** Retention mode and retain-until date; null when none (asked or shown). */
  retention: { mode: string; until: Date } | null;
  legalHold: boolean;
  /** Tags, in order; null when none were asked (and so none read). */
  tags: [string, string][] | null;
}

/** A mode protects at least as much as another: COMPLIANCE > GOVERNANCE > anything else (unknown, none). */
const strength = (mode: string | undefined) => (mode === "COMPLIANCE" ? 2 : mode === "GOVERNANCE" ? 1 : 0);

/** Dates compared to the second: some servers keep retain-until dates without milliseconds. */
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** What the object parameters ask for; null when they ask for nothing (then nothing is read back). */
export function wantedProtection(p: ObjectParams): Protection | null {
  const retention =
    p.ObjectLockMode && p.ObjectLockRetainUntilDate
      ? { mode: p.ObjectLockMode, until: p.ObjectLockRetainUntilDate }
      : null;
  const legalHold = p.ObjectLockLegalHoldStatus === "ON";
  const tags = p.Tagging ? parseTagging(p.Tagging) : null;
  return retention || legalHold || tags ? { retention, legalHold, tags } : null;
}

/** `k=v&k2=v2` (URL-encoded, as in x-amz-tagging) to pairs. */
export function parseTagging(s: string): [string, string][] {
  return [...new URLSearchParams(s)];
}

/** Asks for a lock or a hold (what HeadObject reads back; tags need GetObjectTagging). */
export const asksLock = (w: Protection | null): boolean => !!w && (w.retention !== null || w.legalHold);

export function describeRetention(r: Protection["retention"]): string {
  return r ? `${r.mode} retention until ${r.until.toISOString()}` : "no retention";
}

/**
 * How `shown` falls short of `wanted`, one phrase per shortfall (`word` names where `wanted` came from); empty
 * when it holds everything wanted. Stronger is fine: a later retain-until, COMPLIANCE for GOVERNANCE, extra tags.
 */
export function shortfalls(wanted: Protection, shown: Protection, word = "asked"): string[] {
  const out: string[] = [];
  const w = wanted.retention;
  const s = shown.retention;
  if (w && (!s || strength(s.mode) < strength(w.mode) || seconds(s.until) < seconds(w.until)))
    out.push(`${describeRetention(s)} (${word}: ${describeRetention(w)})`);
  if (wanted.legalHold && !shown.legalHold) out.push(`legal hold OFF (${word}: ON)`);
  const have = new Map(shown.tags ?? []);
  for (const [k, v] of wanted.tags ?? []) {
    const got = have.get(k);
    if (got !== v)
      out.push(got === undefined ? `no tag ${k} (asked: ${k}=${v})` : `tag ${k}=${got} (asked: ${k}=${v})`);
  }
  return out;
}

/** What to apply so that `shown` holds what `wanted` asks, never weakening anything it already holds. */
export function repairsFor(
  wanted: Protection,
  shown: Protection,
): { retention?: { mode: LockMode; until: Date }; legalHold?: true; tags?: [string, string][] } {
  const out: ReturnType<typeof repairsFor> = {};
  const w = wanted.retention;
  const s = shown.retention;
  if (w && (!s || strength(s.mode) < strength(w.mode) || seconds(s.until) < seconds(w.until)))
    out.retention = {
      mode: strength(s?.mode) > strength(w.mode) ? "COMPLIANCE" : (w.mode as LockMode),
      until: s && s.until > w.until ? s.until : w.until,
    };
  if (wanted.legalHold && !shown.legalHold) out.legalHold = true;
  const tags = new Map(shown.tags ?? []);
  let changed = false;
  for (const [k, v] of wanted.tags ?? [])
    if (tags.get(k) !== v) {
      tags.set(k, v);
      changed = true;
    }
  if (changed) out.tags = [...tags];
  return out;
}
