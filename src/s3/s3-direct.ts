/**
 * The hot path of an archive run, PutObject and UploadPart, sent without the AWS SDK's per-request stack.
 *
 * The SDK spends more CPU on each small request (middleware, endpoint rules, schema serialization) than on moving
 * its bytes: 2,000 PUTs of 100 KB measured 2.5–2.7 s CPU through `client.send` and 0.9–1.1 s here. Nothing is
 * guessed: the endpoint, host and signing scope are those the SDK itself resolved for this bucket (one probe
 * request, built and signed by the SDK but never sent); requests are signed with the client's credentials and
 * clock offset (sigv4.ts, held byte for byte to the SDK's signer) and sent through the client's own HTTP
 * handler (same agent, sockets and timeouts). Errors come back as the SDK's S3ServiceException with the S3 error
 * code and HTTP status, so errors.ts classifies them exactly as it does the SDK's.
 *
 * Only requests whose checksum the archiver computes (none or Content-MD5) come here; CRC32C and SHA-256
 * checksums are the SDK's to compute, and an endpoint the SDK signs with anything but SigV4 (SigV4a, S3 Express
 * sessions) keeps the SDK path. `test/e2e/s3-direct.test.ts` holds this module to the SDK's requests
 * header for header; the local S3 server checks every request's SigV4 signature.
 */
import { PutObjectCommand, S3ServiceException, type S3Client } from "@aws-sdk/client-s3";
import { HttpRequest } from "@smithy/core/protocols";
import type { HttpResponse } from "@smithy/types";
import type { Readable } from "node:stream";
import type { ObjectParams } from "./s3.js";
import { SigV4Signer, uriEncode, type Credentials } from "./sigv4.js";
import { learnS3Offset } from "../base/clock.js";

export interface DirectPutInput extends ObjectParams {
  Key: string;
  Body: Buffer | Readable;
  ContentLength: number;
  ContentType?: string | undefined;
  ContentMD5?: string | undefined;
  Metadata?: Record<string, string> | undefined;
  IfNoneMatch?: string | undefined;
}

export interface DirectPartInput {
  Key: string;
  UploadId: string;
  PartNumber: number;
  Body: Buffer | Readable;
  ContentLength: number;
  ContentMD5?: string | undefined;
}

/** Where and how the SDK sends requests for one bucket's objects. */
interface ObjectEndpoint {
  protocol: string;
  hostname: string;
  port: number | undefined;
  host: string;
  /** The path before the object key: "/bucket" (path style), "" (virtual host), with any endpoint prefix. */
  basePath: string;
  region: string;
  service: string;
}

const PROBE_KEY = "probe";
/** Request bodies marking the probe: the capture middleware stops those requests before they are sent. */
const probes = new WeakSet<object>();

class ProbeCaptured extends Error {
  constructor(readonly request: HttpRequest) {
    super("probe request captured");
  }
}

/**
 * A client middleware (deserialize step, innermost: it sees the request exactly as the SDK would send it,
 * endpoint resolved and signed) that stops probe requests and hands them back. Added by createS3Client.
 */
export function captureProbes(next: (args: { request: unknown; input: object }) => Promise<unknown>) {
  return (args: { request: unknown; input: object }) => {
    const body = (args.input as { Body?: unknown }).Body;
    if (typeof body === "object" && body !== null && probes.has(body))
      return Promise.reject(new ProbeCaptured(args.request as HttpRequest));
    return next(args);
  };
}

/**
 * The request the SDK would send for `command` (signed, not sent): for a body marked with `markProbe`.
 * Used to learn the endpoint, and by the tests to compare this module with the SDK.
 */
export async function sdkRequest(client: S3Client, command: object): Promise<HttpRequest> {
  try {
    await client.send(command as never);
  } catch (err) {
    if (err instanceof ProbeCaptured) return err.request;
    throw err;
  }
  throw new Error("the probe request was sent: captureProbes is not installed on this client");
}

export function markProbe<T extends object>(body: T): T {
  probes.add(body);
  return body;
}

const SIGV4 = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request,/;

/** The endpoint the SDK resolved for a bucket's objects; undefined when it does not sign with plain SigV4. */
async function resolveObjectEndpoint(client: S3Client, bucket: string): Promise<ObjectEndpoint | undefined> {
  const probe = new PutObjectCommand({ Bucket: bucket, Key: PROBE_KEY, Body: markProbe(Buffer.alloc(0)) });
  const req = await sdkRequest(client, probe);
  const scope = SIGV4.exec(req.headers.authorization ?? "");
  const suffix = `/${PROBE_KEY}`;
  if (!scope || !req.path.endsWith(suffix) || req.headers["x-amz-s3session-token"] !== undefined)
    return undefined;
  return {
    protocol: req.protocol,
    hostname: req.hostname,
    port: req.port,
    host: req.headers.host ?? (req.port ? `${req.hostname}:${req.port}` : req.hostname),
    basePath: req.path.slice(0, -suffix.length),
    region: scope[1]!,
    service: scope[2]!,
  };
}

/** An object key as S3 expects it in the path: each segment percent-encoded (RFC 3986), slashes kept. */
export function encodeKey(key: string): string {
  return key.split("/").map(uriEncode).join("/");
}

/** S3's timestamp format for headers: ISO 8601 without milliseconds when they are zero (as the SDK sends it). */
function isoDate(d: Date): string {
  return d.toISOString().replace(".000Z", "Z");
}

function objectHeaders(p: ObjectParams): Record<string, string> {
  const h: Record<string, string> = {};
  if (p.ServerSideEncryption) h["x-amz-server-side-encryption"] = p.ServerSideEncryption;
  if (p.SSEKMSKeyId) h["x-amz-server-side-encryption-aws-kms-key-id"] = p.SSEKMSKeyId;
  if (p.StorageClass) h["x-amz-storage-class"] = p.StorageClass;
  if (p.ObjectLockMode) h["x-amz-object-lock-mode"] = p.ObjectLockMode;
  if (p.ObjectLockRetainUntilDate)
    h["x-amz-object-lock-retain-until-date"] = isoDate(p.ObjectLockRetainUntilDate);
  if (p.ObjectLockLegalHoldStatus) h["x-amz-object-lock-legal-hold"] = p.ObjectLockLegalHoldStatus;
  if (p.Tagging) h["x-amz-tagging"] = p.Tagging;
  return h;
}

export class DirectS3 {
  private constructor(
    private readonly client: S3Client,
    private readonly endpoint: ObjectEndpoint,
    private readonly signer: SigV4Signer,
  ) {}

  /** Learn the bucket's endpoint from the SDK; undefined when this path cannot serve it (then use the SDK). */
  static async open(client: S3Client, bucket: string): Promise<DirectS3 | undefined> {
    const endpoint = await resolveObjectEndpoint(client, bucket);
    if (!endpoint) return undefined;
    return new DirectS3(client, endpoint, new SigV4Signer(endpoint.region, endpoint.service));
  }

  /** The unsigned PutObject request. `payloadHash` is the body's SHA-256 (hex) or UNSIGNED-PAYLOAD. */
  putRequest(input: DirectPutInput, payloadHash: string): HttpRequest {
    const headers: Record<string, string> = {
      ...objectHeaders(input),
      "content-length": String(input.ContentLength),
    };
    // The SDK's default for a blob payload without a content type.
    headers["content-type"] = input.ContentType ?? "application/octet-stream";
    if (input.ContentMD5 !== undefined) headers["content-md5"] = input.ContentMD5;
    if (input.IfNoneMatch !== undefined) headers["if-none-match"] = input.IfNoneMatch;
    for (const [k, v] of Object.entries(input.Metadata ?? {})) headers[`x-amz-meta-${k.toLowerCase()}`] = v;
    return this.request(input.Key, { "x-id": "PutObject" }, headers, input.Body, payloadHash);
  }

  /** The unsigned UploadPart request (UNSIGNED-PAYLOAD: parts are covered by the object's SHA-256). */
  partRequest(input: DirectPartInput): HttpRequest {
    const headers: Record<string, string> = {
      "content-length": String(input.ContentLength),
      "content-type": "application/octet-stream",
    };
    if (input.ContentMD5 !== undefined) headers["content-md5"] = input.ContentMD5;
    return this.request(
      input.Key,
      { "x-id": "UploadPart", partNumber: String(input.PartNumber), uploadId: input.UploadId },
      headers,
      input.Body,
      "UNSIGNED-PAYLOAD",
    );
  }

  async putObject(
    input: DirectPutInput,
    payloadHash: string,
  ): Promise<{ ETag: string | undefined; VersionId: string | undefined }> {
    const res = await this.send(this.putRequest(input, payloadHash));
    return { ETag: res.headers.etag, VersionId: res.headers["x-amz-version-id"] };
  }

  async uploadPart(input: DirectPartInput): Promise<{ ETag: string | undefined }> {
    const res = await this.send(this.partRequest(input));
    return { ETag: res.headers.etag };
  }

  private request(
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    body: Buffer | Readable,
    payloadHash: string,
  ): HttpRequest {
    const e = this.endpoint;
    return new HttpRequest({
      method: "PUT",
      protocol: e.protocol,
      hostname: e.hostname,
      ...(e.port !== undefined ? { port: e.port } : {}),
      path: `${e.basePath}/${encodeKey(key)}`,
      query,
      headers: { ...headers, host: e.host, "x-amz-content-sha256": payloadHash, "user-agent": USER_AGENT },
      body,
    });
  }

  /** Sign (in place) with the client's credentials, at the client's clock offset (corrected on skew errors). */
  async sign(request: HttpRequest): Promise<HttpRequest> {
    const creds = (await this.client.config.credentials()) as Credentials;
    const offset = this.client.config.systemClockOffset ?? 0;
    this.signer.sign(
      request as HttpRequest & { query: Record<string, string>; headers: Record<string, string> },
      creds,
      new Date(Date.now() + offset),
    );
    return request;
  }

  /** Sign and send; a non-2xx answer becomes the S3ServiceException the SDK would have thrown. */
  private async send(request: HttpRequest): Promise<HttpResponse> {
    const signedWithOffset = this.client.config.systemClockOffset ?? 0;
    const signed = await this.sign(request);
    const handler = this.client.config.requestHandler as {
      handle(request: HttpRequest): Promise<{ response: HttpResponse }>;
    };
    const { response } = await handler.handle(signed);
    // The server's time, as the SDK learns it from its own answers (clock.ts): a wrong local clock is corrected.
    const skewed = learnS3Offset(this.client.config, response.headers.date, signedWithOffset);
    const body = response.body as Readable | undefined;
    if (response.statusCode >= 200 && response.statusCode < 300) {
      // Nothing to read in a success: let the (empty) body drain so the socket goes back to the pool.
      body?.on("error", () => {}).resume();
      return response;
    }
    throw serviceError(response, await readCapped(body, 64 * 1024), skewed);
  }
}

const USER_AGENT = "envoy-archiver (direct S3 requests)";

/** Read an error body, keeping at most `cap` bytes (the rest is drained so the socket can be reused). */
async function readCapped(body: Readable | undefined, cap: number): Promise<string> {
  if (!body) return "";
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    if (kept < cap) {
      chunks.push(b.subarray(0, cap - kept));
      kept += Math.min(b.length, cap - kept);
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function xmlField(xml: string, name: string): string | undefined {
  const raw = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  return raw?.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e]!);
}

/**
 * The S3 error document as the SDK reports it: the error code as `name`, the status in `$metadata` (with
 * `clockSkewCorrected` when the request was signed far off the server's time), the response in `$response`.
 */
function serviceError(response: HttpResponse, body: string, skewed: boolean): S3ServiceException {
  const status = response.statusCode;
  const name = xmlField(body, "Code") ?? (status === 404 ? "NotFound" : "UnknownError");
  // As the SDK: an empty or missing Message is "UnknownError" (errors.ts says so in words).
  const message = xmlField(body, "Message") || "UnknownError";
  const err = new S3ServiceException({
    name,
    message,
    $fault: status >= 500 ? "server" : "client",
    $metadata: {
      httpStatusCode: status,
      requestId: response.headers["x-amz-request-id"] ?? xmlField(body, "RequestId"),
      extendedRequestId: response.headers["x-amz-id-2"],
      ...(skewed ? { clockSkewCorrected: true } : {}),
    } as S3ServiceException["$metadata"],
  });
  err.$response = response;
  return err;
}
