/**
 * An in-memory ObjectStore (src/s3/object-store.ts) for tests of the pieces that run on the port: the transfer,
 * resume, the already-stored decision. It keeps objects and multipart uploads as S3 does (ETags are MD5s, a
 * multipart ETag is the MD5 of the parts' MD5s and their count, If-None-Match refuses a taken key with 412, an
 * unknown upload is NoSuchUpload), and can be told to fail the Nth call of an operation, as restic's tests do
 * (`failAt`). Every call is counted (`calls`) and logged (`log`).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type * as port from "../../src/s3/object-store.js";

/** A retry policy that does not wait (tests on the in-memory store). */
export const FAST_POLICY = {
  retries: 1,
  minDelayMs: 1,
  maxDelayMs: 2,
  maxRetryTimeMs: 5_000,
  urlRefreshes: 0,
  defaultRetryAfterMs: 1,
  maxRetryAfterMs: 1,
};

export type Operation = Exclude<keyof port.ObjectStore, "bucket" | "clockOffsetMs" | "close">;

/** What a failing call does: throw this error, or run this (which may throw, or change the store) first. */
export type Fault = Error | ((args: unknown[]) => void);

/** An error as the AWS SDK throws an S3 error document: the code as its name, the status in $metadata. */
export function s3Error(code: string, status: number, message = code): Error {
  return Object.assign(new Error(message), {
    name: code,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
  });
}

interface StoredObjectBody {
  body: Buffer;
  etag: string;
  metadata: Record<string, string>;
  contentType: string;
  lastModified: Date;
}

interface Upload {
  key: string;
  initiated: Date;
  contentType: string;
  metadata: Record<string, string>;
  parts: Map<number, { body: Buffer; etag: string }>;
}

const quoted = (hex: string) => `"${hex}"`;
const md5 = (b: Buffer) => createHash("md5").update(b).digest();

async function readBody(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export class MemoryStore implements port.ObjectStore {
  readonly objects = new Map<string, StoredObjectBody>();
  readonly uploads = new Map<string, Upload>();
  /** Calls made of each operation (failed ones included). */
  readonly calls: Partial<Record<Operation, number>> = {};
  /** Every call, in order: the operation and its first argument's key and part number where it has them. */
  readonly log: string[] = [];
  private readonly faults = new Map<string, Fault>();
  private nextUpload = 1;

  constructor(readonly bucket = "memory") {}

  /** The `nth` call of `op` (counting from 1), and the `times - 1` after it, meet `fault`. */
  failAt(op: Operation, nth: number, fault: Fault, times = 1): this {
    for (let i = 0; i < times; i++) this.faults.set(`${op}#${nth + i}`, fault);
    return this;
  }

  /** Drop every multipart upload in progress (a lifecycle rule, or an operator, aborted them). */
  dropUploads(): void {
    this.uploads.clear();
  }

  private call(op: Operation, args: unknown[]): void {
    const n = (this.calls[op] ?? 0) + 1;
    this.calls[op] = n;
    const first = args[0] as { key?: string; partNumber?: number } | string | undefined;
    const what =
      typeof first === "string" ? first : [first?.key, first?.partNumber].filter(Boolean).join(" ");
    this.log.push(`${op} ${what}`.trim());
    const fault = this.faults.get(`${op}#${n}`);
    if (fault instanceof Error) throw fault;
    fault?.(args);
  }

  private upload(uploadId: string): Upload {
    const up = this.uploads.get(uploadId);
    if (!up) throw s3Error("NoSuchUpload", 404, "The specified upload does not exist.");
    return up;
  }

  headBucket(): Promise<void> {
    this.call("headBucket", []);
    return Promise.resolve();
  }

  probeList(): Promise<void> {
    this.call("probeList", []);
    return Promise.resolve();
  }

  objectLock(): Promise<"enabled" | "not-configured" | "disabled"> {
    this.call("objectLock", []);
    return Promise.resolve("not-configured");
  }

  versioning(): Promise<port.VersioningStatus> {
    this.call("versioning", []);
    return Promise.resolve(undefined);
  }

  head(key: string): Promise<port.ObjectHead | null> {
    this.call("head", [key]);
    const o = this.objects.get(key);
    if (!o) return Promise.resolve(null);
    return Promise.resolve({
      size: o.body.length,
      etag: o.etag,
      versionId: null,
      lastModified: o.lastModified,
      metadata: o.metadata,
      lockMode: undefined,
      retainUntil: undefined,
      legalHold: false,
      tagCount: undefined,
    });
  }

  get(key: string): Promise<Readable | null> {
    this.call("get", [key]);
    const o = this.objects.get(key);
    return Promise.resolve(o ? Readable.from([o.body]) : null);
  }

  async put(r: port.PutRequest): Promise<port.WriteAnswer> {
    this.call("put", [r]);
    const body = await readBody(r.body);
    if (body.length !== r.length) throw s3Error("IncompleteBody", 400);
    if (r.contentMD5 !== undefined && r.contentMD5 !== md5(body).toString("base64"))
      throw s3Error("BadDigest", 400);
    if (
      r.checksumSHA256 !== undefined &&
      r.checksumSHA256 !== createHash("sha256").update(body).digest("base64")
    )
      throw s3Error("BadDigest", 400);
    if (r.ifNoneMatch === "*" && this.objects.has(r.key)) throw s3Error("PreconditionFailed", 412);
    const etag = quoted(md5(body).toString("hex"));
    const metadata = Object.fromEntries(Object.entries(r.metadata).map(([k, v]) => [k.toLowerCase(), v]));
    this.objects.set(r.key, { body, etag, metadata, contentType: r.contentType, lastModified: new Date() });
    return { etag, versionId: undefined };
  }

  delete(key: string): Promise<void> {
    this.call("delete", [key]);
    this.objects.delete(key);
    return Promise.resolve();
  }

  createUpload(r: port.CreateUploadRequest): Promise<string> {
    this.call("createUpload", [r]);
    const uploadId = `upload-${this.nextUpload++}`;
    const { key, contentType, metadata } = r;
    this.uploads.set(uploadId, { key, contentType, metadata, initiated: new Date(), parts: new Map() });
    return Promise.resolve(uploadId);
  }

  async uploadPart(r: port.PartRequest): Promise<port.WriteAnswer> {
    this.call("uploadPart", [r]);
    const body = await readBody(r.body);
    const up = this.upload(r.uploadId);
    if (body.length !== r.length) throw s3Error("IncompleteBody", 400);
    const etag = quoted(md5(body).toString("hex"));
    up.parts.set(r.partNumber, { body, etag });
    return { etag, versionId: undefined };
  }

  completeUpload(r: port.CompleteRequest): Promise<port.WriteAnswer> {
    this.call("completeUpload", [r]);
    const up = this.upload(r.uploadId);
    if (r.ifNoneMatch === "*" && this.objects.has(r.key)) throw s3Error("PreconditionFailed", 412);
    const bodies: Buffer[] = [];
    const digests: Buffer[] = [];
    for (const p of r.parts) {
      const stored = up.parts.get(p.partNumber);
      if (!stored || stored.etag !== quoted(p.etag.replace(/"/g, ""))) throw s3Error("InvalidPart", 400);
      bodies.push(stored.body);
      digests.push(Buffer.from(stored.etag.replace(/"/g, ""), "hex"));
    }
    const etag = quoted(`${md5(Buffer.concat(digests)).toString("hex")}-${r.parts.length}`);
    const { contentType, metadata } = up;
    const body = Buffer.concat(bodies);
    this.objects.set(r.key, { body, etag, metadata, contentType, lastModified: new Date() });
    this.uploads.delete(r.uploadId);
    return Promise.resolve({ etag, versionId: undefined });
  }

  abortUpload(key: string, uploadId: string): Promise<"aborted" | "gone"> {
    this.call("abortUpload", [key]);
    return Promise.resolve(this.uploads.delete(uploadId) ? "aborted" : "gone");
  }

  listUploads(prefix: string): Promise<port.Page<port.UploadInProgress, port.UploadMarker>> {
    this.call("listUploads", [prefix]);
    const items = [...this.uploads]
      .filter(([, u]) => u.key.startsWith(prefix))
      .map(([uploadId, u]) => ({ key: u.key, uploadId, initiated: u.initiated }));
    return Promise.resolve({ items, next: undefined });
  }

  listParts(
    key: string,
    uploadId: string,
  ): Promise<port.Page<port.ListedPart, number> | "gone" | "unsupported"> {
    this.call("listParts", [key]);
    const up = this.uploads.get(uploadId);
    if (!up) return Promise.resolve("gone");
    const items = [...up.parts].map(([partNumber, p]) => ({ partNumber, etag: p.etag, size: p.body.length }));
    return Promise.resolve({ items, next: undefined });
  }

  listObjects(prefix: string, from: { startAfter?: string | undefined }): Promise<port.ObjectPage> {
    this.call("listObjects", [prefix]);
    const items = [...this.objects]
      .filter(([k]) => k.startsWith(prefix) && (from.startAfter === undefined || k > from.startAfter))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, o]) => ({ key, size: o.body.length, etag: o.etag }));
    return Promise.resolve({ items, next: undefined, truncated: false });
  }

  getTags(key: string): Promise<[string, string][]> {
    this.call("getTags", [key]);
    return Promise.resolve([]);
  }

  putRetention(key: string): Promise<void> {
    this.call("putRetention", [key]);
    return Promise.reject(s3Error("NotImplemented", 501));
  }

  putLegalHold(key: string): Promise<void> {
    this.call("putLegalHold", [key]);
    return Promise.reject(s3Error("NotImplemented", 501));
  }

  putTags(key: string): Promise<void> {
    this.call("putTags", [key]);
    return Promise.reject(s3Error("NotImplemented", 501));
  }

  clockOffsetMs(): number {
    return 0;
  }

  close(): void {}
}
