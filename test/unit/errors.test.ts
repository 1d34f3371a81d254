import { test } from "node:test";
import assert from "node:assert/strict";
import { ArchiverError, classify, classifyHttp, s3Failure } from "../../src/base/errors.js";
import { parseErrorBody } from "../../src/envoy/envoy-client.js";

test("API statuses map to the taxonomy", () => {
  assert.equal(classifyHttp("api", 429, "rate_limit_exceeded", "x", 2000).kind, "retryable");
  assert.equal(classifyHttp("api", 429, "rate_limit_exceeded", "x", 2000).retryAfterMs, 2000);
  assert.equal(classifyHttp("api", 500, "internal_error", "x").kind, "retryable");
  assert.equal(classifyHttp("api", 503, undefined, "x").kind, "retryable");
  assert.equal(classifyHttp("api", 408, undefined, "x").kind, "retryable");
  assert.equal(classifyHttp("api", 401, "not_authenticated", "x").kind, "fatal");
  assert.equal(classifyHttp("api", 403, "insufficient_permissions", "x").kind, "fatal");
  assert.equal(classifyHttp("api", 400, "invalid_id_format", "x").kind, "permanent");
  assert.equal(classifyHttp("api", 422, "validation_error", "x").kind, "permanent");
  assert.equal(classifyHttp("api", 404, "not_found", "x").kind, "permanent");
});

test("media statuses: expired URLs are refreshed, not failed", () => {
  for (const s of [401, 403, 410]) assert.equal(classifyHttp("media", s, undefined, "x").kind, "refresh-url");
  assert.equal(classifyHttp("media", 404, undefined, "x").kind, "permanent");
  assert.equal(classifyHttp("media", 416, undefined, "x").kind, "permanent");
  assert.equal(classifyHttp("media", 503, undefined, "x").kind, "retryable");
  assert.equal(classifyHttp("media", 429, undefined, "x").kind, "retryable");
});

test("network errors are retryable, wrapped or not", () => {
  for (const code of [
    "ECONNRESET",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EPIPE",
    "ERR_STREAM_PREMATURE_CLOSE",
    "EAI_AGAIN",
  ])
    assert.equal(classify(Object.assign(new Error("boom"), { code })).kind, "retryable", code);
  const wrapped = new TypeError("fetch failed", {
    cause: Object.assign(new Error("reset"), { code: "ECONNRESET" }),
  });
  assert.equal(classify(wrapped).kind, "retryable");
  assert.equal(classify(new Error("something odd")).kind, "permanent");
  assert.equal(classify("a string").kind, "permanent");
});

test("S3 errors: missing bucket and denied access are fatal, throttling and 5xx retryable", () => {
  const s3err = (name: string, status: number) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, $fault: "client" });
  assert.equal(classify(s3err("NoSuchBucket", 404)).kind, "fatal");
  assert.match(classify(s3err("NoSuchBucket", 404)).message, /does not exist/);
  assert.equal(classify(s3err("AccessDenied", 403)).kind, "fatal");
  assert.equal(classify(s3err("InvalidAccessKeyId", 403)).kind, "fatal");
  assert.equal(classify(s3err("SlowDown", 503)).kind, "retryable");
  assert.equal(classify(s3err("InternalError", 500)).kind, "retryable");
  assert.equal(classify(s3err("NoSuchUpload", 404)).kind, "retryable");
  assert.equal(classify(s3err("InvalidArgument", 400)).kind, "permanent");
});

test("state DB corruption is fatal; refused URLs are permanent", () => {
  assert.equal(classify(Object.assign(new Error("x"), { code: "SQLITE_CORRUPT" })).kind, "fatal");
  assert.equal(classify(Object.assign(new Error("x"), { code: "EURLREFUSED" })).kind, "permanent");
});

test("classified errors pass through unchanged", () => {
  const e = new ArchiverError("refresh-url", "x", "y");
  assert.equal(classify(e), e);
});

test("error bodies of every shape parse without throwing", () => {
  assert.deepEqual(
    parseErrorBody('{"error":{"code":"not_found","message":"Call not found","param":"call_id"}}'),
    {
      code: "not_found",
      message: "Call not found",
    },
  );
  assert.deepEqual(parseErrorBody('{"detail":"Not authenticated"}'), { message: "Not authenticated" });
  assert.deepEqual(parseErrorBody('{"detail":[{"loc":["query"],"msg":"bad"}]}'), {
    message: '[{"loc":["query"],"msg":"bad"}]',
  });
  assert.deepEqual(parseErrorBody("Bad Gateway"), { message: "Bad Gateway" });
  assert.deepEqual(parseErrorBody(""), { message: "(empty body)" });
  assert.deepEqual(parseErrorBody('{"error":"nope"}'), { message: "nope" });
  assert.equal(parseErrorBody("x".repeat(1000)).message.length, 301);
});

test("every S3 failure names its operation, key, status, S3 error code and the server's message", () => {
  const s3err = (name: string, status: number, message: string) =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $fault: "client" });
  const withMessage = s3Failure(s3err("InvalidArgument", 400, "Invalid storage class"), "PutObject a/b.m4a");
  assert.equal(withMessage.message, "S3 PutObject a/b.m4a: HTTP 400 InvalidArgument: Invalid storage class");
  assert.deepEqual(
    [withMessage.kind, withMessage.code, withMessage.status],
    ["permanent", "InvalidArgument", 400],
  );
  assert.equal(withMessage.operation, "PutObject a/b.m4a");
  // The SDK's "UnknownError" (and an empty message) stand for "the server said nothing": said in words.
  for (const said of ["UnknownError", "", "InvalidRequest"]) {
    const e = s3Failure(s3err("InvalidRequest", 400, said), "CreateMultipartUpload k");
    assert.equal(
      e.message,
      "S3 CreateMultipartUpload k: HTTP 400 InvalidRequest (the server sent no message)",
    );
  }
  // A HEAD answer has no body: no code either.
  const head = s3Failure(s3err("Unknown", 403, "UnknownError"), "HeadObject k");
  assert.equal(head.kind, "fatal");
  assert.match(head.message, /^S3 HeadObject k: refused: HTTP 403 \(no S3 error code in the answer\)/);
  assert.match(head.message, /wrong secret key/);
  const secret = s3Failure(s3err("SignatureDoesNotMatch", 403, "UnknownError"), "ListObjectsV2");
  assert.match(secret.message, /^S3 ListObjectsV2: .*AWS_SECRET_ACCESS_KEY.*HTTP 403 SignatureDoesNotMatch/);
  assert.equal(secret.kind, "fatal");
  const slow = s3Failure(s3err("SlowDown", 503, "Please reduce your request rate."), "UploadPart 3 k");
  assert.deepEqual([slow.kind, slow.status], ["retryable", 503]);
  assert.equal(slow.message, "S3 UploadPart 3 k: HTTP 503 SlowDown: Please reduce your request rate.");
  const reset = s3Failure(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), "PutObject k");
  assert.deepEqual([reset.kind, reset.message], ["retryable", "S3 PutObject k: read ECONNRESET"]);
  // The archiver's own errors are already named: unchanged.
  const own = new ArchiverError("fatal", "NoSuchBucket", "bucket missing");
  assert.equal(s3Failure(own, "HeadBucket"), own);
});
