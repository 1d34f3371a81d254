/**
 * Listing bounds: a `GET /calls` listing that does not end (has_next forever, the same calls again and again,
 * pages past total_pages, more pages than any real organisation has) stops the run with a message naming the
 * page and why, instead of paging forever while holding the lock.
 */
import { ArchiverError } from "../base/errors.js";

/** Pages in a row that add no call the listing has not shown recently before it is called endless. */
const REPEATS_ALLOWED = 1;
/** How many recent pages' ids are remembered (bounded memory whatever the listing's length). */
const PAGES_REMEMBERED = 4;

export class ListingGuard {
  private readonly recent: Set<string>[] = [];
  private repeats = 0;

  constructor(private readonly maxPages: number) {}

  /**
   * Check page `page` (its call ids, and what its pagination says) and whether another page may be asked for.
   * Throws a fatal error when the listing is not going to end; returns whether to go on.
   */
  next(page: number, ids: string[], p: { hasNext: boolean; totalPages: number | null }): boolean {
    const seen = (id: string) => this.recent.some((s) => s.has(id));
    const fresh = ids.filter((id) => !seen(id)).length;
    this.recent.push(new Set(ids));
    if (this.recent.length > PAGES_REMEMBERED) this.recent.shift();
    if (!p.hasNext || ids.length === 0) return false;
    this.repeats = fresh === 0 ? this.repeats + 1 : 0;
    if (this.repeats > REPEATS_ALLOWED)
      throw endless(
        page,
        `pages ${page - REPEATS_ALLOWED}-${page} added no new call (every call on them was listed just before), yet has_next is still true`,
      );
    if (p.totalPages !== null && page >= p.totalPages)
      throw endless(page, `has_next is true on page ${page} of total_pages ${p.totalPages}`);
    if (page >= this.maxPages)
      throw endless(
        page,
        `has_next is still true after ${this.maxPages} pages (ARCHIVER_MAX_PAGES; raise it if the organisation really has that many calls in the window)`,
      );
    return true;
  }
}

function endless(page: number, why: string): ArchiverError {
  return new ArchiverError(
    "fatal",
    "listing_does_not_end",
    `GET /calls page ${page}: ${why}. The listing does not end: the run stops here (the watermark is not moved)`,
  );
}
