/**
 * The store's requests over HTTP, as the server sees them: every one through the AWS SDK (`client.send`). What a
 * request carries (its payload hash, a single PUT's SHA-256), what S3 stores from it, and how S3's error documents
 * come back classified.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { describe, startTestS3, test, type TestS3 } from "../helpers/backends.js";
import { classify } from "../../src/base/errors.js";
import { DEFAULT_RETRY_POLICY } from "../../src/base/retry.js";
import { createS3Client, type S3Sink } from "../../src/s3/s3.js";
import { S3ObjectStore } from "../../src/s3/sdk-store.js";
import type { CapturedRequest } from "../../scripts/local-s3.js";
import { testSink } from "../helpers/sink.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const POLICY = { ...DEFAULT_RETRY_POLICY, retries: 0 };
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
const sha = (b: Buffer) => createHash("sha256").update(b);

/** The error a request must fail with; a success fails the test with `what`. */
function failure(p: Promise<unknown>, what: string): Promise<unknown> {
  return p.then(
    () => assert.fail(what),
    (e: unknown) => e,
  );
}

describe("S3 requests through the SDK", () => {
  let s3: TestS3;
  let client: S3Client;
  let sink: S3Sink;
  const seen: CapturedRequest[] = [];
  const header = (r: CapturedRequest, name: string) => r.headers[name] as string | undefined;

  before(async () => {
    s3 = await startTestS3({ onRequest: (r) => seen.push(r) });
    Object.assign(process.env, s3.env);
    client = createS3Client({
      forcePathStyle: true,
      maxSockets: 4,
      region: "us-east-1",
      endpoint: s3.endpoint,
    });
    sink = testSink(s3.bucket, { concurrency: 2, checksum: "NONE", policy: POLICY });
  });
  after(async () => {
    sink.close();
    client.destroy();
    await s3.close();
  });

  test("a sidecar under an odd key: S3 stores its bytes, content type and metadata", async () => {
    const key = "odd keys/ü (1)!*'~.json";
    await sink.putJson(key, { a: 1 }, {}, { "Call-Id": "call_1" });
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.equal(await got.Body!.transformToString(), '{\n  "a": 1\n}\n');
    assert.equal(got.ContentType, "application/json");
    assert.deepEqual(got.Metadata, { "call-id": "call_1" });
  });

  test("a recording's single PUT carries its SHA-256 (x-amz-checksum-sha256), its body streamed unsigned; a part is unsigned too", async () => {
    const small = Buffer.alloc(100_000, 3);
    const before = seen.length;
    const r = await sink.transfer({
      key: "rec/small.mp3",
      contentType: "audio/mpeg",
      metadata: {},
      objectParams: {},
      expectedBytes: small.length,
      open: () => Promise.resolve({ body: Readable.from([small]), skip: 0, totalBytes: small.length }),
    });
    assert.equal(r.sha256, sha(small).digest("hex"));
    const put = seen.slice(before).find((q) => q.method === "PUT" && q.path.endsWith("/rec/small.mp3"))!;
    assert.ok(put, "the PUT was seen");
    assert.equal(header(put, "x-amz-checksum-sha256"), sha(small).digest("base64"));
    assert.equal(header(put, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert.equal(header(put, "x-amz-meta-sha256"), r.sha256);

    const up = await sink.store.createUpload({
      key: "rec/mp",
      contentType: "audio/mpeg",
      metadata: {},
      params: {},
    });
    const part = Buffer.alloc(1000, 7);
    const mark = seen.length;
    const out = await sink.uploadPart({
      key: "rec/mp",
      uploadId: up,
      partNumber: 1,
      body: Readable.from([part]),
      length: part.length,
    });
    assert.equal(out.etag?.replace(/"/g, ""), md5(part), "the part's ETag is its MD5");
    const sent = seen.slice(mark).find((q) => q.method === "PUT")!;
    assert.equal(header(sent, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert.equal(await sink.store.abortUpload("rec/mp", up), "aborted");
  });

  test("S3's error documents come back classified: a taken key (412), no such upload, no such key as a value", async () => {
    const store = sink.store;
    const body = Buffer.from("first");
    const put = {
      key: "exists",
      body,
      length: body.length,
      contentType: "text/plain",
      metadata: {},
      params: {},
    };
    await store.put(put);
    const taken = await failure(store.put({ ...put, ifNoneMatch: "*" }), "overwrote");
    assert.equal(classify(taken).status, 412);
    const part = { key: "exists", uploadId: "no-such-upload", partNumber: 1, body, length: body.length };
    const noUpload = await failure(store.uploadPart(part), "stored a part of no upload");
    assert.equal(classify(noUpload).code, "NoSuchUpload");
    assert.equal(await store.head("no/such/key"), null);
    assert.equal(await store.get("no/such/key"), null);
    assert.equal(await store.abortUpload("exists", "no-such-upload"), "gone");
    assert.equal(await store.listParts("exists", "no-such-upload"), "gone");
  });

  test("a wrong secret is refused as S3 refuses it (the server checks the SDK's signatures): fatal", async () => {
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    const bad = createS3Client({
      forcePathStyle: true,
      maxSockets: 1,
      region: "us-east-1",
      endpoint: s3.endpoint,
    });
    const store = new S3ObjectStore(bad, s3.bucket);
    const body = Buffer.from("x");
    // The SDK reads the credentials from the environment at its first request.
    const err = await failure(
      store.put({ key: "nope", body, length: 1, contentType: "text/plain", metadata: {}, params: {} }),
      "accepted a bad signature",
    ).finally(() => (process.env.AWS_SECRET_ACCESS_KEY = saved));
    assert.equal((err as { name: string }).name, "SignatureDoesNotMatch");
    assert.equal(classify(err).kind, "fatal");
    store.close();
  });
});
