/**
 * A real S3 protocol server on loopback (s3rver), for the demo, the tests and the benchmarks. No Docker, no
 * credentials: any access key is accepted.
 */
import S3rver from "s3rver";
import { createHash, createHmac } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { Readable } from "node:stream";
import { dirname, join } from "node:path";
import { listObjectsV2, type ListingStore } from "./local-s3-list.js";
import { errorXml, FaultPlan, type CapturedRequest, type S3Faults } from "./s3-faults.js";
import { objectLockExtras } from "./local-s3-lock.js";

export interface LocalS3 {
  endpoint: string;
  directory: string;
  /** Environment for the archiver (and any AWS SDK client) to talk to this server. */
  env: Record<string, string>;
  /** Inject failures into object writes and completions, and a wrong server clock, as real servers have them. */
  setFaults(faults: S3Faults): void;
  close(opts?: { keepFiles?: boolean }): Promise<void>;
}

export type { CapturedRequest, S3Faults } from "./s3-faults.js";

export async function startLocalS3(opts: {
  buckets: string[];
  directory?: string;
  port?: number;
  /** Called with every request's method, path, query and headers (tests assert on what was sent). */
  onRequest?: (req: CapturedRequest) => void;
  /** Called with every request and the status the server gave it (given even when the answer is then lost). */
  onResponse?: (req: CapturedRequest, status: number) => void;
  /**
   * How to answer GetObjectLockConfiguration: s3rver itself answers 501; "enabled"/"disabled" imitate a bucket
   * created with or without Object Lock.
   */
  objectLock?: "enabled" | "disabled";
  /** "ignore": drop lock and tag headers on CreateMultipartUpload, as Ceph RGW 16.2 does (local-s3-lock.ts). */
  lockOnMultipart?: "honour" | "ignore";
  /** "ignore": PutObjectRetention/LegalHold/Tagging answer 200 and store nothing (a server that cannot lock). */
  lockCalls?: "apply" | "ignore";
  /** "unsupported": ListMultipartUploads answers 501, as s3rver itself and some S3-compatible servers do. */
  listUploads?: "unsupported";
}): Promise<LocalS3> {
  const directory = opts.directory ?? mkdtempSync(join(tmpdir(), "envoy-archiver-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  // s3rver 3.7 answers 501/405 to ListMultipartUploads, AbortMultipartUpload and ListParts, and accepts parts for
  // uploads that do not exist; real S3 and MinIO do all of it right, and the archiver's orphan sweep and upload
  // resume rely on it. Serve them from s3rver's own upload directory.
  const middleware = (server as unknown as { middleware: Middleware[] }).middleware;
  middleware.unshift(multipartExtras(directory, opts.objectLock, opts.listUploads));
  // Object Lock, legal hold and tags, which s3rver lacks: stored and answered as AWS does.
  middleware.unshift(
    objectLockExtras(directory, {
      objectLock: opts.objectLock,
      multipart: opts.lockOnMultipart ?? "honour",
      calls: opts.lockCalls ?? "apply",
    }) as unknown as Middleware,
  );
  // s3rver's own ListObjectsV2 dies past 1,000 keys on Node 20 (a DES continuation token).
  middleware.unshift(listObjectsV2((server as unknown as { store: ListingStore }).store, directory));
  const faults = new FaultPlan();
  // Inside the signature check (which sees the request as signed), outside s3rver (which has the real clock).
  middleware.unshift(skewedClock(() => faults.clock));
  // s3rver does not check SigV4 signatures ("unimplemented"); S3 does, so this server does too.
  middleware.unshift(checkSigV4);
  middleware.unshift(async (ctx, next) => {
    const completion = faults.completion(ctx.method, ctx.path, ctx.query);
    if (completion) {
      await completion.before?.();
      await next();
      if (completion.answer === "withhold")
        await new Promise<void>((resolve) => ctx.req.socket.once("close", resolve));
      if (completion.answer !== "send") ctx.req.socket.destroy();
      return;
    }
    const fault = faults.next(ctx.method, ctx.path, ctx.headers);
    if (!fault) return next();
    if (fault === "reset") return void ctx.req.socket.destroy();
    if (fault === "lose-answer") {
      await next();
      return void ctx.req.socket.destroy();
    }
    ctx.status = fault.status;
    ctx.type = "application/xml";
    ctx.body = errorXml(fault.code, fault.message);
  });
  if (opts.onRequest || opts.onResponse) {
    const { onRequest, onResponse } = opts;
    middleware.unshift(async (ctx, next) => {
      const req = {
        method: ctx.method,
        path: ctx.path,
        query: { ...ctx.query },
        headers: { ...ctx.headers },
      };
      onRequest?.(req);
      try {
        await next();
      } finally {
        onResponse?.(req, ctx.status);
      }
    });
  }
  const addr = await server.run();
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    endpoint,
    directory,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      ARCHIVER_S3_FORCE_PATH_STYLE: "true",
    },
    setFaults: (f) => faults.set(f),
    async close({ keepFiles = opts.directory !== undefined } = {}) {
      server.httpServer?.closeAllConnections();
      await server.close();
      if (!keepFiles) rmSync(directory, { recursive: true, force: true });
    },
  };
}

interface KoaContext {
  method: string;
  path: string;
  /** The query string as sent (still percent-encoded). */
  querystring: string;
  req: import("node:http").IncomingMessage;
  res: { sendDate: boolean };
  set(name: string, value: string): void;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/** The secret of every access key this server accepts (s3rver's own convention). */
export const LOCAL_S3_SECRET = "S3RVER";

/** RFC 3986 encoding, as SigV4 canonicalizes query parameters. */
const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const hmac = (key: string | Buffer, s: string) => createHmac("sha256", key).update(s, "utf8").digest();

/**
 * Verify the SigV4 signature of header-signed requests, written from the AWS specification (not the SDK's
 * signer), and answer 403 SignatureDoesNotMatch as S3 does. For S3 the canonical URI is the path as sent (not
 * encoded again). The payload is covered through x-amz-content-sha256, which S3 requires on every request.
 */
async function checkSigV4(ctx: KoaContext, next: () => Promise<void>): Promise<void> {
  const auth = ctx.headers.authorization;
  if (typeof auth !== "string" || !auth.startsWith("AWS4-HMAC-SHA256 ")) return next();
  const m =
    /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})/.exec(
      auth,
    );
  const amzDate = ctx.headers["x-amz-date"];
  const payloadHash = ctx.headers["x-amz-content-sha256"];
  const refuse = (why: string) => {
    ctx.status = 403;
    ctx.type = "application/xml";
    ctx.body = `<Error><Code>SignatureDoesNotMatch</Code><Message>${xml(why)}</Message></Error>`;
  };
  if (!m || typeof amzDate !== "string" || typeof payloadHash !== "string")
    return refuse("malformed Authorization, or x-amz-date / x-amz-content-sha256 missing");
  const [, , day, region, service, signedHeaders, signature] = m as unknown as string[];
  const names = signedHeaders!.split(";");
  if (!names.includes("host") || !names.includes("x-amz-content-sha256") || !amzDate.startsWith(day!))
    return refuse("host and x-amz-content-sha256 must be signed, and the date must match the scope");
  const query = ctx.querystring
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      const [k, v] = i < 0 ? [p, ""] : [p.slice(0, i), p.slice(i + 1)];
      const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, "%20"));
      return [uriEncode(dec(k)), uriEncode(dec(v))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headerValue = (n: string) => {
    const v = ctx.headers[n];
    return (Array.isArray(v) ? v.join(",") : (v ?? "")).trim().replace(/ +/g, " ");
  };
  const canonical = [
    ctx.method,
    ctx.path,
    query,
    names.map((n) => `${n}:${headerValue(n)}\n`).join(""),
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${LOCAL_S3_SECRET}`, day!), region!), service!), "aws4_request");
  if (createHmac("sha256", key).update(toSign, "utf8").digest("hex") !== signature)
    return refuse(`The request signature we calculated does not match the signature you provided.`);
  return next();
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** 20261127T093000Z → ms since the epoch (NaN when malformed). */
function parseAmzDate(v: unknown): number {
  const m = typeof v === "string" ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v) : null;
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

const amzDate = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");

/** A server whose clock is off the real one (S3Faults.clock). */
function skewedClock(get: () => S3Faults["clock"]): Middleware {
  return async (ctx, next) => {
    const clock = get();
    if (!clock || typeof ctx.headers.authorization !== "string") return next();
    const serverNow = Date.now() + clock.offsetMs;
    const tellTime = () => {
      if (clock.dateHeader === false) ctx.res.sendDate = false;
      else ctx.set("Date", new Date(serverNow).toUTCString());
    };
    tellTime();
    const sent = parseAmzDate(ctx.headers["x-amz-date"]);
    if (Number.isNaN(sent) || Math.abs(sent - serverNow) > 15 * 60_000) {
      ctx.status = 403;
      ctx.type = "application/xml";
      ctx.body = `<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`;
      return;
    }
    // Within this server's tolerance: s3rver, which checks the time against the real clock, sees it shifted.
    ctx.headers["x-amz-date"] = amzDate(sent - clock.offsetMs);
    await next();
    tellTime();
  };
}

/** An object's file in s3rver's directory. */
const objectFile = (root: string, bucket: string, rawKey: string) =>
  join(root, bucket, `${decodeURIComponent(rawKey)}._S3rver_object`);

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, "-", the number of parts. */
function multipartEtag(uploadDir: string): string {
  const parts = readdirSync(uploadDir)
    .filter((f) => /^\d+$/.test(f) && existsSync(join(uploadDir, `${f}.md5`)))
    .map(Number)
    .sort((a, b) => a - b);
  const md5 = createHash("md5");
  for (const n of parts)
    md5.update(Buffer.from(readFileSync(join(uploadDir, `${n}.md5`), "utf8").trim(), "hex"));
  return `${md5.digest("hex")}-${parts.length}`;
}

/** ListParts from s3rver's upload directory (one file per part, with its MD5 beside it). */
function listParts(ctx: KoaContext, bucket: string, key: string, uploadId: string, dir: string): void {
  const parts = readdirSync(dir)
    .filter((f) => /^\d+$/.test(f) && existsSync(join(dir, `${f}.md5`)))
    .map(Number)
    .sort((a, b) => a - b)
    .map((n) => {
      const st = statSync(join(dir, String(n)));
      return { n, size: st.size, at: st.mtime, etag: readFileSync(join(dir, `${n}.md5`), "utf8").trim() };
    });
  ctx.status = 200;
  ctx.type = "application/xml";
  ctx.body =
    `<?xml version="1.0" encoding="UTF-8"?><ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><UploadId>${uploadId}</UploadId>` +
    `<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>${parts.at(-1)?.n ?? 0}</NextPartNumberMarker>` +
    `<MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>` +
    parts
      .map(
        (p) =>
          `<Part><PartNumber>${p.n}</PartNumber><LastModified>${p.at.toISOString()}</LastModified><ETag>"${p.etag}"</ETag><Size>${p.size}</Size></Part>`,
      )
      .join("") +
    `</ListPartsResult>`;
}

/**
 * CompleteMultipartUpload as S3 does it: conditional (If-None-Match: *, since 2024), and the object's ETag is the
 * multipart ETag (s3rver gives the MD5 of the whole object). The parts completed are all those stored.
 */
async function completeAsS3(ctx: KoaContext, next: () => Promise<void>, file: string, uploadDir: string) {
  return oneWriteAtATime(ctx, file, async () => {
    if (ctx.headers["if-none-match"] === "*" && existsSync(file)) return preconditionFailed(ctx);
    const etag = multipartEtag(uploadDir);
    // Present while s3rver writes the object, or a listing then would have it compute (and store) a plain MD5.
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.md5`, etag);
    await next();
    if (ctx.status !== 200 || typeof ctx.body !== "string") return;
    writeFileSync(`${file}.md5`, etag);
    ctx.body = ctx.body.replace(/<ETag>[^<]*<\/ETag>/, `<ETag>"${etag}"</ETag>`);
  });
}

/**
 * Writes to one key in turn: S3 checks a condition and applies the write as one step, s3rver does not. A client
 * that goes away mid-request (a SIGKILLed run) gives up its turn: s3rver never settles a request whose body stopped,
 * and the key would otherwise hang every later request to it.
 */
const writing = new Map<string, Promise<unknown>>();
async function oneWriteAtATime(ctx: KoaContext, file: string, write: () => Promise<void>): Promise<void> {
  const before = writing.get(file) ?? Promise.resolve();
  const done = before.then(write, write);
  const socket = ctx.req.socket;
  let onClose = () => {};
  const gone = new Promise<void>((resolve) => {
    onClose = resolve;
    if (socket.destroyed) resolve();
    else socket.once("close", onClose);
  });
  const turn = Promise.race([done.catch(() => undefined), gone]);
  writing.set(file, turn);
  try {
    await Promise.race([done, gone]);
  } finally {
    socket.off("close", onClose);
    if (writing.get(file) === turn) writing.delete(file);
  }
}

/**
 * A new object is written only once its body is whole, as S3 does: S3 never keeps a body shorter than its
 * Content-Length. s3rver writes the bytes into the object's file as they arrive, and its handler goes on after the
 * client is gone (its request never settles): a SIGKILLed run left a truncated object under a recording's key, or,
 * when the handler opened the file late, truncated the whole object the next run had written there meanwhile. So
 * the body is read here first, and s3rver is handed it only when it all arrived.
 */
async function wholeOrNothing(ctx: KoaContext, write: () => Promise<void>): Promise<void> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
  } catch {
    return; // the client went away mid-body: nothing is stored, and nobody hears the answer
  }
  if (!ctx.req.complete) return;
  // s3rver pipes the request into the object's file: from what arrived, now that it is whole.
  ctx.req.pipe = ((dest: NodeJS.WritableStream, opts?: { end?: boolean }) =>
    Readable.from(chunks).pipe(dest, opts)) as typeof ctx.req.pipe;
  await write();
}

function preconditionFailed(ctx: KoaContext): void {
  ctx.status = 412;
  ctx.type = "application/xml";
  ctx.body =
    "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>";
}

function multipartExtras(
  root: string,
  objectLock: "enabled" | "disabled" | undefined,
  listUploads: "unsupported" | undefined,
): Middleware {
  const uploadsDir = (bucket: string) => join(root, bucket, "._S3rver_uploads");
  return async (ctx, next) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    const bucket = m?.[1];
    if (!m || !bucket) return next();
    const uploadId = typeof ctx.query.uploadId === "string" ? ctx.query.uploadId : undefined;
    if (m[2] && uploadId !== undefined) {
      const dir = join(uploadsDir(bucket), uploadId);
      // s3rver recreates an aborted upload's directory when a part that was in flight lands; without its "key"
      // file the upload is gone, as S3 would say.
      if (!/^[\w-]+$/.test(uploadId) || !existsSync(join(dir, "key"))) {
        if (/^[\w-]+$/.test(uploadId)) rmSync(dir, { recursive: true, force: true });
        ctx.status = 404;
        ctx.type = "application/xml";
        ctx.body =
          "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>";
        return;
      }
      if (ctx.method === "DELETE") {
        rmSync(dir, { recursive: true, force: true });
        ctx.status = 204;
        return;
      }
      if (ctx.method === "GET") return listParts(ctx, bucket, m[2], uploadId, dir);
      if (ctx.method === "POST") return completeAsS3(ctx, next, objectFile(root, bucket, m[2]), dir);
    }
    // A key is read as it stands before or after a write to it, never half way (as S3 does).
    if ((ctx.method === "GET" || ctx.method === "HEAD") && m[2] && uploadId === undefined)
      return oneWriteAtATime(ctx, objectFile(root, bucket, m[2]), next);
    // Conditional writes (If-None-Match: *), as S3 has had them since 2024: refuse to overwrite an existing key.
    if (
      ctx.method === "PUT" &&
      m[2] &&
      ctx.headers["if-none-match"] === "*" &&
      !("partNumber" in ctx.query)
    ) {
      const file = objectFile(root, bucket, m[2]);
      return oneWriteAtATime(ctx, file, () =>
        existsSync(file) ? Promise.resolve(preconditionFailed(ctx)) : wholeOrNothing(ctx, next),
      );
    }
    if (ctx.method === "GET" && !m[2] && "object-lock" in ctx.query && objectLock) {
      ctx.type = "application/xml";
      if (objectLock === "enabled") {
        ctx.status = 200;
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`;
      } else {
        ctx.status = 404;
        ctx.body = `<Error><Code>ObjectLockConfigurationNotFoundError</Code><Message>Object Lock configuration does not exist for this bucket</Message></Error>`;
      }
      return;
    }
    if (ctx.method === "GET" && !m[2] && "uploads" in ctx.query && listUploads === "unsupported") {
      ctx.status = 501;
      ctx.type = "application/xml";
      ctx.body =
        "<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>";
      return;
    }
    if (ctx.method === "GET" && !m[2] && "uploads" in ctx.query) {
      const prefix = typeof ctx.query.prefix === "string" ? ctx.query.prefix : "";
      const dir = uploadsDir(bucket);
      const uploads = existsSync(dir)
        ? readdirSync(dir)
            .filter((id) => existsSync(join(dir, id, "key")))
            .map((id) => ({
              id,
              key: readFileSync(join(dir, id, "key"), "utf8"),
              at: statSync(join(dir, id, "key")).mtime, // written once, when the upload is created
            }))
            .filter((u) => u.key.startsWith(prefix))
        : [];
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        uploads
          .map(
            (u) =>
              `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.at.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
          )
          .join("") +
        `</ListMultipartUploadsResult>`;
      return;
    }
    return next();
  };
}
