import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/core/serde";
import { HttpRequest } from "@smithy/core/protocols";
import { amzDate, SigV4Signer, uriEncode, type SignableRequest } from "../../src/s3/sigv4.js";

const AKID = "AKIDEXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const date = new Date("2015-08-30T12:36:00Z");

test("AWS's published SigV4 test vector (get-vanilla)", () => {
  const req: SignableRequest = {
    method: "GET",
    path: "/",
    query: {},
    headers: { host: "example.amazonaws.com" },
  };
  new SigV4Signer("us-east-1", "service").sign(
    req,
    { accessKeyId: AKID, secretAccessKey: SECRET },
    date,
    createHash("sha256").update("").digest("hex"),
  );
  assert.equal(
    req.headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
  assert.equal(req.headers["x-amz-date"], "20150830T123600Z");
});

/** The SDK's own signer, configured as the S3 client configures it. */
async function sdkSign(
  r: SignableRequest,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  region: string,
  at: Date,
) {
  const signer = new SignatureV4({
    credentials: creds,
    region,
    service: "s3",
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: r.method,
      hostname: r.headers.host!,
      path: r.path,
      query: { ...r.query },
      headers: { ...r.headers },
    }),
    { signingDate: at },
  );
  return signed.headers as Record<string, string>;
}

test("byte for byte the SDK's SignatureV4 on S3 requests", async () => {
  const cases: [string, SignableRequest][] = [
    [
      "PutObject with every header the archiver sends",
      {
        method: "PUT",
        path: "/bucket/2026/11/25/odd%20key%21%28%29%2A%27~.mp3",
        query: { "x-id": "PutObject" },
        headers: {
          host: "127.0.0.1:9000",
          "content-length": "12345",
          "content-type": "audio/mpeg",
          "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==",
          "if-none-match": "*",
          "x-amz-meta-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "x-amz-meta-call-id": "call_1  with   spaces ",
          "x-amz-object-lock-mode": "COMPLIANCE",
          "x-amz-object-lock-retain-until-date": "2027-11-20T08:30:00Z",
          "x-amz-tagging": "team=ops%20%26%20sales&retention=1y",
          "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "user-agent": "envoy-archiver",
        },
      },
    ],
    [
      "UploadPart with an upload id that needs encoding",
      {
        method: "PUT",
        path: "/key/with/slashes",
        query: { "x-id": "UploadPart", partNumber: "7", uploadId: "2~abc/def+ghi= jkl" },
        headers: {
          host: "my-bucket.s3.eu-west-1.amazonaws.com",
          "content-length": "5242880",
          "content-type": "application/octet-stream",
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
      },
    ],
  ];
  const at = new Date("2026-11-25T23:59:59.999Z");
  for (const [name, req] of cases) {
    for (const creds of [
      { accessKeyId: AKID, secretAccessKey: SECRET },
      { accessKeyId: "ASIAEXAMPLE", secretAccessKey: SECRET, sessionToken: "token/with+chars=" },
    ]) {
      for (const region of ["us-east-1", "eu-west-1"]) {
        const expected = await sdkSign(req, creds, region, at);
        const ours = { ...req, headers: { ...req.headers } };
        new SigV4Signer(region, "s3").sign(ours, creds, at);
        for (const h of ["authorization", "x-amz-date", "x-amz-security-token"])
          assert.equal(ours.headers[h], expected[h], `${name}, ${region}, ${creds.accessKeyId}: ${h}`);
      }
    }
  }
});

test("the signing key follows the day and the secret", () => {
  const reused = new SigV4Signer("us-east-1", "s3");
  const signWith = (signer: SigV4Signer, secret: string, at: Date) => {
    const r: SignableRequest = {
      method: "PUT",
      path: "/b/k",
      query: {},
      headers: { host: "h", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    };
    signer.sign(r, { accessKeyId: AKID, secretAccessKey: secret }, at);
    return r.headers.authorization;
  };
  const sign = (secret: string, at: Date) => signWith(reused, secret, at);
  const fresh = (secret: string, at: Date) => signWith(new SigV4Signer("us-east-1", "s3"), secret, at);
  const d1 = new Date("2026-11-25T23:00:00Z");
  const d2 = new Date("2026-11-26T01:00:00Z");
  assert.equal(sign(SECRET, d1), fresh(SECRET, d1));
  assert.equal(sign(SECRET, d2), fresh(SECRET, d2), "a new day derives a new key");
  assert.equal(sign("rotated", d2), fresh("rotated", d2), "a rotated secret derives a new key");
  assert.throws(
    () =>
      reused.sign(
        { method: "PUT", path: "/", query: {}, headers: { host: "h" } },
        { accessKeyId: AKID, secretAccessKey: SECRET },
        d1,
      ),
    /x-amz-content-sha256/,
  );
});

test("encodings", () => {
  assert.equal(amzDate(new Date("2026-01-02T03:04:05.678Z")), "20260102T030405Z");
  assert.equal(uriEncode("a b+c/d~e!*'()"), "a%20b%2Bc%2Fd~e%21%2A%27%28%29");
});
