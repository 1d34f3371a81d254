/**
 * What a benchmarked tool really stored, read from s3rver's directory rather than from the tool's own report:
 * s3rver keeps each object's bytes in `<key>._S3rver_object` (a completed multipart upload included).
 */
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const OBJECT_SUFFIX = "._S3rver_object";

export interface Stored {
  count: number;
  bytes: number;
}

/** Objects under `bucketDir/prefix` whose key matches `keyRe` (media only, say, not sidecars): count and bytes. */
export function storedUnder(bucketDir: string, prefix: string, keyRe: RegExp): Stored {
  const root = join(bucketDir, prefix);
  let count = 0;
  let bytes = 0;
  for (const rel of readdirSync(root, { recursive: true, encoding: "utf8" })) {
    if (!rel.endsWith(OBJECT_SUFFIX) || !keyRe.test(rel.slice(0, -OBJECT_SUFFIX.length))) continue;
    count += 1;
    bytes += statSync(join(root, rel)).size;
  }
  return { count, bytes };
}

/**
 * Fails loudly unless exactly the expected objects and bytes are there, so a broken run cannot look fast; then
 * deletes them (the next round writes its own prefix; a W5 round is 2.5 GiB per tool).
 */
export function checkStoredAndDrop(
  who: string,
  bucketDir: string,
  prefix: string,
  keyRe: RegExp,
  expected: Stored,
): void {
  const got = storedUnder(bucketDir, prefix, keyRe);
  if (got.count !== expected.count || got.bytes !== expected.bytes)
    throw new Error(
      `${who} stored ${got.count} objects, ${got.bytes} bytes under ${prefix}; expected ${expected.count}, ${expected.bytes}`,
    );
  rmSync(join(bucketDir, prefix), { recursive: true, force: true });
}
