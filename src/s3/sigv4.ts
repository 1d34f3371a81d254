/**
 * AWS Signature Version 4 for the direct S3 requests (s3-direct.ts), header-signed, S3 flavour: the path is
 * signed as sent (not encoded a second time), the payload hash is whatever x-amz-content-sha256 says.
 *
 * Why not the SDK's signer: it allocated more per request than anything else in a run of small recordings
 * (request clones, sorted copies, hex conversions, an HMAC of the credentials on every call to find its cached
 * key). This one derives the signing key once per day and scope. It is held to the SDK's SignatureV4 byte for
 * byte and to AWS's published test vector (test/unit/sigv4.test.ts), and the local S3 server checks every
 * signature with a verifier written separately from the specification (scripts/local-s3.ts).
 */
import { createHash, createHmac } from "node:crypto";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SignableRequest {
  method: string;
  /** Already percent-encoded, as sent. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names. Gains x-amz-date, x-amz-security-token (with session credentials) and authorization. */
  headers: Record<string, string>;
}

/** Headers that proxies may change, never signed (the SDK's list). */
const UNSIGNABLE = new Set([
  "authorization",
  "cache-control",
  "connection",
  "expect",
  "from",
  "keep-alive",
  "max-forwards",
  "pragma",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "x-amzn-trace-id",
]);

/** RFC 3986 percent-encoding (SigV4 encodes query names and values with it). */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** 20150830T123600Z */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data, "utf8").digest();

export class SigV4Signer {
  private cached: { scope: string; secret: string; key: Buffer } | undefined;

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  /** `payloadHash`: x-amz-content-sha256 unless given (S3 requires that header on every request). */
  sign(
    req: SignableRequest,
    creds: Credentials,
    date: Date,
    payloadHash = req.headers["x-amz-content-sha256"],
  ): void {
    const stamp = amzDate(date);
    const day = stamp.slice(0, 8);
    const h = req.headers;
    h["x-amz-date"] = stamp;
    if (creds.sessionToken) h["x-amz-security-token"] = creds.sessionToken;
    const names = Object.keys(h)
      .filter((n) => !UNSIGNABLE.has(n))
      .sort();
    const signedHeaders = names.join(";");
    let canonicalHeaders = "";
    for (const n of names)
      canonicalHeaders += `${n}:${h[n]!.replace(/[\r\n]/g, " ")
        .replace(/[ \t]+/g, " ")
        .trim()}\n`;
    const query = Object.keys(req.query)
      .map((k) => [uriEncode(k), uriEncode(req.query[k]!)] as const)
      .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    if (!payloadHash) throw new Error("x-amz-content-sha256 must be set before signing");
    const canonical = `${req.method}\n${req.path}\n${query}\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${createHash("sha256").update(canonical, "utf8").digest("hex")}`;
    const signature = createHmac("sha256", this.signingKey(scope, day, creds.secretAccessKey))
      .update(toSign, "utf8")
      .digest("hex");
    h.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  }

  /** Derived once per day and scope (and again if the secret rotates). */
  private signingKey(scope: string, day: string, secret: string): Buffer {
    const c = this.cached;
    if (c && c.scope === scope && c.secret === secret) return c.key;
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), this.region), this.service), "aws4_request");
    this.cached = { scope, secret, key };
    return key;
  }
}
