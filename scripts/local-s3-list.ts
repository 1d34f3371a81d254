/**
 * ListObjectsV2 for the local S3 server. s3rver 3.7 encrypts its continuation token with DES, which Node 20's
 * OpenSSL 3 refuses without `--openssl-legacy-provider`: every listing past 1,000 keys failed with a 500. This
 * serves list-type=2 itself from s3rver's directory, with an opaque token (the last key returned, base64url), and
 * answers as S3 does: keys in UTF-8 byte order, at most 1,000 a page (or max-keys), IsTruncated,
 * NextContinuationToken, KeyCount. It reads only what a page needs (s3rver stats every file of every directory it
 * passes and reads three files per key, ~0.2 s a page here, which made its listing, not the archiver, the cost of
 * a verify of 100,000 recordings); with a delimiter it hands over to s3rver's store.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { compareKeys } from "../src/base/keys.js";

/** What this needs of s3rver's FilesystemStore. */
export interface ListingStore {
  getBucket(bucket: string): Promise<unknown>;
  listObjects(
    bucket: string,
    opts: { prefix?: string; delimiter?: string; startAfter?: string; maxKeys: number },
  ): Promise<{
    objects: { key: string; size: number; lastModifiedDate: Date; metadata: Record<string, string> }[];
    commonPrefixes: string[];
    isTruncated: boolean;
  }>;
}

interface ListContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const one = (v: string | string[] | undefined) => (typeof v === "string" ? v : undefined);

function s3Error(ctx: ListContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = "application/xml";
  ctx.body = `<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`;
}

const OBJECT = "._S3rver_object";

/** Keys under `prefix` after `startAfter`, in byte order, from s3rver's layout (one `<key>._S3rver_object` each). */
function* keysAfter(bucketDir: string, dir: string, prefix: string, startAfter: string): Generator<string> {
  const items: { key: string; dir: boolean }[] = [];
  for (const e of readdirSync(join(bucketDir, dir), { withFileTypes: true })) {
    if (e.isDirectory() && !e.name.startsWith("._S3rver")) items.push({ key: `${dir}${e.name}/`, dir: true });
    else if (e.isFile() && e.name.endsWith(OBJECT))
      items.push({ key: dir + e.name.slice(0, -OBJECT.length), dir: false });
  }
  items.sort((a, b) => compareKeys(a.key, b.key));
  for (const { key, dir: sub } of items) {
    if (!sub) {
      if (compareKeys(key, startAfter) > 0 && key.startsWith(prefix)) yield key;
      continue;
    }
    // Every key below starts with `key`: skip a directory wholly before startAfter or outside the prefix.
    if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
    if (compareKeys(key, startAfter) < 0 && !startAfter.startsWith(key)) continue;
    yield* keysAfter(bucketDir, key, prefix, startAfter);
  }
}

/** One page of objects: size and mtime from the object file, the ETag from s3rver's stored MD5. */
async function listPage(
  store: ListingStore,
  bucketDir: string,
  bucket: string,
  opts: { prefix: string; startAfter: string; maxKeys: number },
): Promise<Awaited<ReturnType<ListingStore["listObjects"]>>> {
  const objects: Awaited<ReturnType<ListingStore["listObjects"]>>["objects"] = [];
  let isTruncated = false;
  for (const key of keysAfter(bucketDir, "", opts.prefix, opts.startAfter)) {
    if (objects.length === opts.maxKeys) {
      isTruncated = true;
      break;
    }
    const file = join(bucketDir, key + OBJECT);
    let md5: string;
    try {
      md5 = readFileSync(`${file}.md5`, "utf8");
    } catch {
      // s3rver computes a missing MD5 on first read: let it.
      const page = await store.listObjects(bucket, { prefix: key, maxKeys: 1 });
      if (page.objects[0]) objects.push(page.objects[0]);
      continue;
    }
    const st = statSync(file);
    objects.push({ key, size: st.size, lastModifiedDate: st.mtime, metadata: { etag: JSON.stringify(md5) } });
  }
  return { objects, commonPrefixes: [], isTruncated };
}

export function listObjectsV2(store: ListingStore, directory: string) {
  return async (ctx: ListContext, next: () => Promise<void>): Promise<void> => {
    const bucket = /^\/([^/]+)\/?$/.exec(ctx.path)?.[1];
    if (ctx.method !== "GET" || !bucket || ctx.query["list-type"] !== "2") return next();
    if (!(await store.getBucket(bucket)))
      return s3Error(ctx, 404, "NoSuchBucket", "The specified bucket does not exist");
    const maxKeysText = one(ctx.query["max-keys"]) ?? "1000";
    if (!/^\d+$/.test(maxKeysText))
      return s3Error(ctx, 400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
    const maxKeys = Math.min(1000, Number(maxKeysText));
    const token = one(ctx.query["continuation-token"]);
    let startAfter = one(ctx.query["start-after"]);
    if (token !== undefined) {
      startAfter = Buffer.from(token, "base64url").toString("utf8");
      if (token === "" || Buffer.from(startAfter, "utf8").toString("base64url") !== token)
        return s3Error(ctx, 400, "InvalidArgument", "The continuation token provided is incorrect");
    }
    const prefix = one(ctx.query.prefix) ?? "";
    const delimiter = one(ctx.query.delimiter) ?? "";
    const result =
      maxKeys === 0
        ? { objects: [], commonPrefixes: [], isTruncated: false }
        : delimiter
          ? await store.listObjects(bucket, {
              prefix,
              delimiter,
              ...(startAfter ? { startAfter } : {}),
              maxKeys,
            })
          : await listPage(store, join(directory, bucket), bucket, {
              prefix,
              startAfter: startAfter ?? "",
              maxKeys,
            });
    const last = result.objects.at(-1)?.key;
    const next_ =
      result.isTruncated && last !== undefined
        ? `<NextContinuationToken>${Buffer.from(last, "utf8").toString("base64url")}</NextContinuationToken>`
        : "";
    ctx.status = 200;
    ctx.type = "application/xml";
    ctx.body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix>` +
      (token !== undefined ? `<ContinuationToken>${xml(token)}</ContinuationToken>` : "") +
      (token === undefined && startAfter ? `<StartAfter>${xml(startAfter)}</StartAfter>` : "") +
      `<KeyCount>${result.objects.length + result.commonPrefixes.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>` +
      (delimiter ? `<Delimiter>${xml(delimiter)}</Delimiter>` : "") +
      `<IsTruncated>${result.isTruncated}</IsTruncated>${next_}` +
      result.objects
        .map(
          (o) =>
            `<Contents><Key>${xml(o.key)}</Key><LastModified>${o.lastModifiedDate.toISOString()}</LastModified>` +
            `<ETag>${xml(o.metadata.etag ?? "")}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
        )
        .join("") +
      result.commonPrefixes
        .map((p) => `<CommonPrefixes><Prefix>${xml(p)}</Prefix></CommonPrefixes>`)
        .join("") +
      `</ListBucketResult>`;
  };
}
