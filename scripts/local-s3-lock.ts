/**
 * Object Lock, legal hold and tags for the local S3 server, answered the way AWS answers them (s3rver has none):
 * retention, hold and tags are stored from the headers of PutObject and CreateMultipartUpload and from
 * PutObjectRetention / PutObjectLegalHold / PutObjectTagging, and returned by HeadObject, GetObject and the
 * Get* calls. A retention is only ever strengthened, except GOVERNANCE with `x-amz-bypass-governance-retention`;
 * a protected object cannot be deleted. `multipart: "ignore"` imitates Ceph RGW 16.2, which ignores lock and tag
 * headers on CreateMultipartUpload; `calls: "ignore"` a server that answers the Put* calls and stores nothing.
 * GetBucketVersioning answers Enabled for an Object Lock bucket, else never
 * versioned. s3rver keeps no versions: one protection per key, replaced when the key is written again.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface LockEmulation {
  /** "ignore": CreateMultipartUpload's lock and tag headers are dropped, as Ceph RGW 16.2 does. */
  multipart?: "honour" | "ignore";
  /** "ignore": PutObjectRetention / PutObjectLegalHold / PutObjectTagging answer 200 and store nothing. */
  calls?: "apply" | "ignore";
  objectLock?: "enabled" | "disabled" | undefined;
}

interface Ctx {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  req: AsyncIterable<Buffer>;
  set(field: string, value: string): void;
}

interface Stored {
  mode?: string;
  until?: string;
  hold?: string;
  tags?: [string, string][];
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const unxml = (s: string) =>
  s.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, e: string) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[e]!,
  );
const field = (doc: string, name: string) => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(doc);
  return m ? unxml(m[1]!) : undefined;
};
const header = (ctx: Ctx, name: string) => {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function fail(ctx: Ctx, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = "application/xml";
  ctx.body = `<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`;
}

function reply(ctx: Ctx, body: string): void {
  ctx.status = 200;
  ctx.type = "application/xml";
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>${body}`;
}

async function readBody(ctx: Ctx): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

/** What lock and tag headers ask for (PutObject, CreateMultipartUpload). */
function fromHeaders(h: Record<string, string | string[] | undefined>): Stored {
  const one = (n: string) => (Array.isArray(h[n]) ? h[n][0] : h[n]);
  const s: Stored = {};
  const mode = one("x-amz-object-lock-mode");
  const until = one("x-amz-object-lock-retain-until-date");
  if (mode && until) Object.assign(s, { mode, until: new Date(until).toISOString() });
  const hold = one("x-amz-object-lock-legal-hold");
  if (hold) s.hold = hold;
  const tagging = one("x-amz-tagging");
  if (tagging) s.tags = [...new URLSearchParams(tagging)];
  return s;
}

const active = (s: Stored) => s.until !== undefined && Date.parse(s.until) > Date.now();
const strength = (m: string | undefined) => (m === "COMPLIANCE" ? 2 : m === "GOVERNANCE" ? 1 : 0);

export function objectLockExtras(root: string, opts: LockEmulation) {
  const file = (bucket: string, key: string) => join(root, bucket, `${key}._S3rver_protection.json`);
  const exists = (bucket: string, key: string) => existsSync(join(root, bucket, `${key}._S3rver_object`));
  const load = (bucket: string, key: string): Stored => {
    const f = file(bucket, key);
    return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Stored) : {};
  };
  const save = (bucket: string, key: string, s: Stored) => {
    const f = file(bucket, key);
    if (Object.keys(s).length === 0) rmSync(f, { force: true });
    else writeFileSync(f, JSON.stringify(s));
  };

  const subresources = async (ctx: Ctx, bucket: string, key: string, sub: string): Promise<void> => {
    if (!exists(bucket, key)) return fail(ctx, 404, "NoSuchKey", "The specified key does not exist.");
    const s = load(bucket, key);
    const noConfig = () =>
      fail(
        ctx,
        404,
        "NoSuchObjectLockConfiguration",
        "The specified object does not have a ObjectLock configuration",
      );
    if (ctx.method === "GET") {
      if (sub === "retention")
        return s.mode
          ? reply(
              ctx,
              `<Retention><Mode>${s.mode}</Mode><RetainUntilDate>${s.until}</RetainUntilDate></Retention>`,
            )
          : noConfig();
      if (sub === "legal-hold")
        return s.hold ? reply(ctx, `<LegalHold><Status>${s.hold}</Status></LegalHold>`) : noConfig();
      const tags = (s.tags ?? []).map(([k, v]) => `<Tag><Key>${xml(k)}</Key><Value>${xml(v)}</Value></Tag>`);
      return reply(ctx, `<Tagging><TagSet>${tags.join("")}</TagSet></Tagging>`);
    }
    const doc = await readBody(ctx);
    if (opts.calls === "ignore") {
      ctx.status = 200;
      ctx.body = "";
      return;
    }
    if (sub === "retention") {
      const mode = field(doc, "Mode");
      const untilRaw = field(doc, "RetainUntilDate");
      const until = untilRaw ? new Date(untilRaw).toISOString() : undefined;
      const weaker =
        !mode || !until || strength(mode) < strength(s.mode) || Date.parse(until) < Date.parse(s.until ?? "");
      const bypass = s.mode === "GOVERNANCE" && header(ctx, "x-amz-bypass-governance-retention") === "true";
      if (active(s) && weaker && !bypass)
        return fail(ctx, 403, "AccessDenied", "Access Denied because object protected by object lock.");
      const { mode: _m, until: _u, ...rest } = s;
      save(bucket, key, mode && until ? { ...rest, mode, until } : rest);
    } else if (sub === "legal-hold") save(bucket, key, { ...s, hold: field(doc, "Status") ?? "OFF" });
    else {
      const tags = [...doc.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)];
      save(bucket, key, { ...s, tags: tags.map((m) => [unxml(m[1]!), unxml(m[2]!)]) });
    }
    ctx.status = 200;
    ctx.body = "";
  };

  return async (ctx: Ctx, next: () => Promise<void>): Promise<void> => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    const bucket = m?.[1];
    const key = m?.[2] ? decodeURIComponent(m[2]) : undefined;
    if (!bucket) return next();
    if (!key) {
      if (ctx.method !== "GET" || !("versioning" in ctx.query)) return next();
      const status = opts.objectLock === "enabled" ? "<Status>Enabled</Status>" : "";
      return reply(
        ctx,
        `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${status}</VersioningConfiguration>`,
      );
    }
    const sub = ["retention", "legal-hold", "tagging"].find((q) => q in ctx.query);
    if (sub && (ctx.method === "GET" || ctx.method === "PUT")) return subresources(ctx, bucket, key, sub);
    const uploadId = typeof ctx.query.uploadId === "string" ? ctx.query.uploadId : undefined;
    if (ctx.method === "PUT" && !uploadId && !("partNumber" in ctx.query)) {
      await next();
      if (ctx.status === 200) save(bucket, key, fromHeaders(ctx.headers));
      return;
    }
    if (ctx.method === "POST" && uploadId && /^[\w-]+$/.test(uploadId)) {
      // s3rver kept CreateMultipartUpload's headers beside the upload's parts; completing removes them.
      const meta = join(root, bucket, "._S3rver_uploads", uploadId, "metadata");
      const created = existsSync(meta) ? (JSON.parse(readFileSync(meta, "utf8")) as Ctx["headers"]) : {};
      await next();
      if (ctx.status === 200) save(bucket, key, opts.multipart === "ignore" ? {} : fromHeaders(created));
      return;
    }
    if ((ctx.method === "GET" || ctx.method === "HEAD") && !uploadId) {
      await next();
      if (ctx.status !== 200 && ctx.status !== 206) return;
      const s = load(bucket, key);
      if (s.mode) ctx.set("x-amz-object-lock-mode", s.mode);
      if (s.until) ctx.set("x-amz-object-lock-retain-until-date", s.until);
      if (s.hold) ctx.set("x-amz-object-lock-legal-hold", s.hold);
      if (s.tags?.length) ctx.set("x-amz-tagging-count", String(s.tags.length));
      return;
    }
    if (ctx.method === "DELETE" && !uploadId) {
      const s = load(bucket, key);
      const bypass = s.mode === "GOVERNANCE" && header(ctx, "x-amz-bypass-governance-retention") === "true";
      if (s.hold === "ON" || (active(s) && !bypass))
        return fail(ctx, 403, "AccessDenied", "Access Denied because object protected by object lock.");
      save(bucket, key, {});
    }
    return next();
  };
}
