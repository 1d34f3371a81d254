/**
 * Archived rows in key order, each paired with what one pass over the bucket listing shows under its key: a
 * merge of two streams in the same order, so a million recordings take a thousand list requests and constant
 * memory. A listed object proves a row intact only when it has the size and ETag recorded when it was stored;
 * every other row is for a HEAD to decide.
 */
import { compareKeys, sameEtag, type ListedObject } from "../sink/listing.js";
import type { ArchivedRow } from "../state/scans.js";

export interface Paired<R> {
  row: R;
  /** The object listed under the row's key; null: the listing has none; undefined: outside the listing. */
  listed: ListedObject | null | undefined;
}

/**
 * `list(startAfter)` lists `prefix` in key order from after `startAfter`; it is called only when a row falls
 * inside that range, and the listing is read only as far as the rows go.
 */
export async function* withListing<R extends { key: string }>(
  rows: Iterable<R>,
  range: { prefix: string; startAfter: string },
  list: (prefix: string, startAfter: string) => AsyncIterable<ListedObject>,
): AsyncGenerator<Paired<R>> {
  let listing: AsyncIterator<ListedObject> | undefined;
  let current: ListedObject | null = null;
  const advance = async () => {
    const next = await listing!.next();
    current = next.done ? null : next.value;
  };
  try {
    for (const row of rows) {
      if (!row.key.startsWith(range.prefix) || compareKeys(row.key, range.startAfter) <= 0) {
        yield { row, listed: undefined };
        continue;
      }
      if (!listing) {
        listing = list(range.prefix, range.startAfter)[Symbol.asyncIterator]();
        await advance();
      }
      while (current !== null && compareKeys((current as ListedObject).key, row.key) < 0) await advance();
      const c = current as ListedObject | null;
      yield { row, listed: c !== null && c.key === row.key ? c : null };
    }
  } finally {
    await listing?.return?.();
  }
}

/** The listing alone proves this row intact: listed under its key, with the recorded size and ETag. */
export function provenByListing(row: ArchivedRow, listed: ListedObject | null | undefined): boolean {
  return !!listed && listed.size === row.bytes && sameEtag(listed.etag, row.etag);
}
