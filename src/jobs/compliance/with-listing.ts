/**
 * Archived rows in key order, each paired with what the bucket listing shows under its key. The rows are taken in
 * chunks; each chunk's key range is listed (ListObjectsV2 from after the previous chunk's last key, up to its own
 * last key), several chunks at once, and paired in order as their listings complete: a million recordings take
 * about a thousand list requests, run in parallel, in memory bounded by the chunks in flight. A listed object
 * proves a row intact only when it has the size and ETag recorded when it was stored; every other row is for a
 * HEAD to decide.
 */
import { compareKeys } from "../../base/keys.js";
import { sameEtag, type ListedObject } from "../../s3/listing.js";
import type { ArchivedRow } from "../../state/scans.js";

export interface Paired<R> {
  row: R;
  /** The object listed under the row's key; null: the listing has none; undefined: outside the listing. */
  listed: ListedObject | null | undefined;
}

export interface ListingPlan {
  /** Rows with keys under it, past `startAfter`, are looked up in the listing; the others are outside it. */
  prefix: string;
  startAfter: string;
  /** Chunks listed at once. */
  parallel: number;
  /** Rows per chunk (each listing reads its own pages: about two keys per recording with the sidecars). */
  chunkRows?: number;
}

/** `list(prefix, startAfter, stopAfter)` lists keys under `prefix` in order, from after `startAfter`. */
export type Lister = (prefix: string, startAfter: string, stopAfter: string) => AsyncIterable<ListedObject>;

export async function* withListing<R extends { key: string }>(
  rows: Iterable<R>,
  plan: ListingPlan,
  list: Lister,
): AsyncGenerator<Paired<R>> {
  const chunkRows = plan.chunkRows ?? 2_000;
  const inFlight: { rows: R[]; found: Promise<Map<string, ListedObject>> }[] = [];
  let chunk: R[] = [];
  let after = plan.startAfter;
  const launch = () => {
    const last = chunk[chunk.length - 1]!.key;
    const found = objectsFor(chunk, list(plan.prefix, after, last), last);
    found.catch(() => undefined); // awaited in turn; a failure must not go unhandled meanwhile
    inFlight.push({ rows: chunk, found });
    chunk = [];
    after = last;
  };
  async function* pairOldest(): AsyncGenerator<Paired<R>> {
    const { rows: done, found } = inFlight.shift()!;
    const objects = await found;
    for (const row of done) yield { row, listed: objects.get(row.key) ?? null };
  }
  for (const row of rows) {
    if (!row.key.startsWith(plan.prefix) || compareKeys(row.key, plan.startAfter) <= 0) {
      yield { row, listed: undefined };
      continue;
    }
    chunk.push(row);
    if (chunk.length < chunkRows) continue;
    launch();
    if (inFlight.length >= plan.parallel) yield* pairOldest();
  }
  if (chunk.length > 0) launch();
  while (inFlight.length > 0) yield* pairOldest();
}

/** The listed objects under the chunk's keys, reading the listing up to the chunk's last key. */
async function objectsFor<R extends { key: string }>(
  rows: R[],
  listing: AsyncIterable<ListedObject>,
  last: string,
): Promise<Map<string, ListedObject>> {
  const wanted = new Set(rows.map((r) => r.key));
  const found = new Map<string, ListedObject>();
  for await (const o of listing) {
    if (compareKeys(o.key, last) > 0) break;
    if (wanted.has(o.key)) found.set(o.key, o);
  }
  return found;
}

/** The listing alone proves this row intact: listed under its key, with the recorded size and ETag. */
export function provenByListing(row: ArchivedRow, listed: ListedObject | null | undefined): boolean {
  return !!listed && listed.size === row.bytes && sameEtag(listed.etag, row.etag);
}
