/**
 * A bucket listing (ListObjectsV2): up to 1,000 objects per request with each one's size and ETag, in key order
 * (UTF-8 byte order). The next page is asked for while the caller works through this one.
 */
import { ArchiverError } from "../base/errors.js";
import { compareKeys } from "../base/keys.js";
import { unquoteEtag } from "./multipart-etag.js";
import type { ListedObject, ObjectPage } from "./object-store.js";
import type { Requests } from "./requests.js";

export type { ListedObject } from "./object-store.js";

/**
 * The objects under `prefix`, from after `startAfter`. With `stopAfter`, no page is asked for once a page has
 * listed a key past it (the caller stops there). `ahead` (default): the next page is asked for while the caller
 * works through this one; callers that list several ranges at once turn it off, to hold one page each.
 */
export async function* listObjects(
  sink: Requests,
  prefix: string,
  range: { startAfter?: string; stopAfter?: string; ahead?: boolean } = {},
): AsyncGenerator<ListedObject> {
  const { startAfter, stopAfter, ahead = true } = range;
  const page = (token: string | undefined): Promise<ObjectPage> => {
    const p = sink.s3(`ListObjectsV2 ${prefix}`, () =>
      sink.store.listObjects(prefix, token ? { token } : { startAfter }),
    );
    // Asked for ahead: if the caller stops before reading it, its failure is nobody's.
    p.catch(() => undefined);
    return p;
  };
  let next = page(undefined);
  let previous: string | undefined;
  for (;;) {
    const out = await next;
    const token = out.next;
    if (out.truncated && !token)
      throw new ArchiverError(
        "fatal",
        "bad_listing",
        `S3 listed ${prefix} as truncated with no continuation token`,
      );
    if (token && token === previous)
      throw new ArchiverError("fatal", "bad_listing", `S3 repeated a continuation token listing ${prefix}`);
    previous = token;
    const objects: ListedObject[] = out.items;
    const lastKey = objects.at(-1)?.key;
    const more =
      token !== undefined &&
      !(stopAfter !== undefined && lastKey !== undefined && compareKeys(lastKey, stopAfter) >= 0);
    if (more && ahead) next = page(token);
    yield* objects;
    if (!more) return;
    if (!ahead) next = page(token);
  }
}

export { unquoteEtag };

/** Two ETags are the same object's: both known and equal, quotes aside. */
export function sameEtag(a: string | null | undefined, b: string | null | undefined): boolean {
  return unquoteEtag(a) !== "" && unquoteEtag(a) === unquoteEtag(b);
}
