/**
 * The direct PutObject/UploadPart path (src/sink/s3-direct.ts) against its oracle, the AWS SDK: the same
 * request, header for header, for every option the archiver sends, on path-style and virtual-host endpoints;
 * and over HTTP against the local S3 server, which checks every SigV4 signature.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { HttpRequest } from "@smithy/types";
import pino from "pino";
import { createS3Client, openSink, presetPayloadHash } from "../../src/s3/s3.js";
import { DirectS3, encodeKey, markProbe, sdkRequest, type DirectPutInput } from "../../src/s3/s3-direct.js";
import { classify } from "../../src/base/errors.js";
import { DEFAULT_RETRY_POLICY } from "../../src/base/retry.js";
import { startTestS3, type TestS3 } from "../helpers/backends.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
process.env.AWS_ACCESS_KEY_ID = "S3RVER";
process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
delete process.env.AWS_ENDPOINT_URL_S3;
delete process.env.AWS_ENDPOINT_URL;
delete process.env.AWS_PROFILE;

/** Headers that legitimately differ: the SDK's agent strings, the signature time, and its 100-continue. */
const VARYING = new Set(["authorization", "x-amz-date", "user-agent", "x-amz-user-agent", "expect"]);

/** What S3 sees of a request, minus what may differ; SignedHeaders and the scope (without its date) kept. */
function semantic(r: HttpRequest) {
  const headers = Object.fromEntries(
    Object.entries(r.headers)
      .map(([k, v]) => [k.toLowerCase(), v] as const)
      .filter(([k]) => !VARYING.has(k))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  const auth = r.headers.authorization ?? r.headers.Authorization ?? "";
  const m = /^(\S+) Credential=([^/]+)\/\d{8}\/([^,]+), ?SignedHeaders=([^,]+),/.exec(auth);
  const signed = (m?.[4] ?? "")
    .split(";")
    .filter((h) => !VARYING.has(h))
    .join(";");
  return {
    method: r.method,
    protocol: r.protocol,
    hostname: r.hostname,
    port: r.port,
    path: r.path,
    query: r.query,
    headers,
    signing: [m?.[1], m?.[2], m?.[3], signed],
  };
}

const POLICY = { ...DEFAULT_RETRY_POLICY, retries: 0 };
const lockDate = new Date("2027-11-20T08:30:00Z");
const md5 = (b: Buffer) => createHash("md5").update(b).digest("base64");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const KEYS = [
  "2026/11/25/call_0b6f2c8e-8a5e-4f3e-9f60-1d2c3b4a5e6f.mp3",
  "odd keys/ü+é (copy)!*'~;=&$@,.json",
  "a//b/",
];

function putCases(key: string): DirectPutInput[] {
  const body = Buffer.from(`body of ${key}`);
  return [
    { Key: key, Body: body, ContentLength: body.length },
    {
      Key: key,
      Body: body,
      ContentLength: body.length,
      ContentType: "audio/mpeg",
      ContentMD5: md5(body),
      Metadata: { sha256: sha(body), "Call-Id": "call_x", direction: "inbound" },
      IfNoneMatch: "*",
      ServerSideEncryption: "aws:kms",
      SSEKMSKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abc",
      StorageClass: "STANDARD_IA",
      ObjectLockMode: "COMPLIANCE",
      ObjectLockRetainUntilDate: lockDate,
      ObjectLockLegalHoldStatus: "ON",
      Tagging: "team=ops%20%26%20sales&retention=1y",
    },
    {
      Key: key,
      Body: body,
      ContentLength: body.length,
      ServerSideEncryption: "AES256",
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: new Date("2027-01-02T03:04:05.678Z"),
    },
  ];
}

describe("direct S3 requests are the SDK's requests", () => {
  const endpoints: [string, Parameters<typeof createS3Client>[0]][] = [
    [
      "path style, custom endpoint",
      { forcePathStyle: true, maxSockets: 4, region: "us-east-1", endpoint: "http://127.0.0.1:9000" },
    ],
    ["virtual host, AWS", { forcePathStyle: false, maxSockets: 4, region: "eu-west-1" }],
    [
      "path style, endpoint with a path",
      { forcePathStyle: true, maxSockets: 4, region: "auto", endpoint: "https://gw.example.com/s3" },
    ],
  ];
  for (const [name, settings] of endpoints) {
    test(name, async () => {
      const client = createS3Client(settings);
      const direct = await DirectS3.open(client, "my-bucket");
      assert.ok(direct, "the direct path serves this endpoint");
      for (const key of KEYS) {
        for (const input of putCases(key)) {
          const body = markProbe(input.Body as Buffer);
          const hash = sha(body);
          const sdk = await sdkRequest(
            client,
            presetPayloadHash(
              new PutObjectCommand({ Bucket: "my-bucket", ...input, Body: body }),
              "NONE",
              hash,
            ),
          );
          const ours = await direct.sign(direct.putRequest(input, hash));
          assert.deepEqual(semantic(ours), semantic(sdk), `PutObject ${key}`);
          assert.equal(ours.body, body);
        }
        const part = markProbe(Buffer.from("part"));
        for (const withMd5 of [false, true]) {
          const input = {
            Key: key,
            UploadId: "2~abc/def+ghi=",
            PartNumber: 7,
            Body: part,
            ContentLength: part.length,
            ...(withMd5 ? { ContentMD5: md5(part) } : {}),
          };
          const sdk = await sdkRequest(
            client,
            presetPayloadHash(
              new UploadPartCommand({ Bucket: "my-bucket", ...input }),
              "NONE",
              "UNSIGNED-PAYLOAD",
            ),
          );
          const ours = await direct.sign(direct.partRequest(input));
          assert.deepEqual(semantic(ours), semantic(sdk), `UploadPart ${key}`);
        }
      }
    });
  }

  test("session credentials are signed in (x-amz-security-token)", async () => {
    process.env.AWS_SESSION_TOKEN = "token/with+chars=";
    try {
      const client = createS3Client({
        forcePathStyle: true,
        maxSockets: 4,
        region: "us-east-1",
        endpoint: "http://127.0.0.1:9000",
      });
      const direct = (await DirectS3.open(client, "b"))!;
      const body = markProbe(Buffer.from("x"));
      const input = { Key: "k", Body: body, ContentLength: 1 };
      const sdk = await sdkRequest(
        client,
        presetPayloadHash(new PutObjectCommand({ Bucket: "b", ...input }), "NONE", sha(body)),
      );
      const ours = await direct.sign(direct.putRequest(input, sha(body)));
      assert.equal(ours.headers["x-amz-security-token"], "token/with+chars=");
      assert.deepEqual(semantic(ours), semantic(sdk));
    } finally {
      delete process.env.AWS_SESSION_TOKEN;
    }
  });

  test("keys are encoded segment by segment", () => {
    assert.equal(encodeKey("a b/c+d/ü(1)!*'~"), "a%20b/c%2Bd/%C3%BC%281%29%21%2A%27~");
    assert.equal(encodeKey("a//b/"), "a//b/");
  });
});

describe("direct S3 requests over HTTP (the server checks SigV4)", () => {
  let s3: TestS3;
  let bkt: string;
  const seen: { ua: string; method: string; path: string }[] = [];
  let client: S3Client;
  before(async () => {
    s3 = await startTestS3({
      bucket: "bkt",
      onRequest: (r) => seen.push({ ua: String(r.headers["user-agent"]), method: r.method, path: r.path }),
    });
    bkt = s3.bucket;
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    client = createS3Client({
      forcePathStyle: true,
      maxSockets: 4,
      region: "us-east-1",
      endpoint: s3.endpoint,
    });
  });
  after(async () => {
    client.destroy();
    await s3.close();
  });

  test("the sink writes through the direct path; S3 stores what was sent", async (t) => {
    const logger = pino({ level: "silent" });
    process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint; // openSink takes its endpoint from the environment
    t.after(() => delete process.env.AWS_ENDPOINT_URL_S3);
    const sink = openSink(
      {
        concurrency: 2,
        s3: {
          bucket: bkt,
          forcePathStyle: true,
          partSize: 5 * 1024 ** 2,
          queueSize: 1,
          region: "us-east-1",
          spoolDir: "memory",
        },
        storage: { checksum: "MD5" },
      },
      POLICY,
      logger,
    );
    const before = seen.length;
    await sink.putJson("odd keys/ü (1)!.json", { a: 1 }, { Tagging: "k=v" }, { "Call-Id": "call_1" });
    const direct = seen.slice(before).filter((r) => r.ua.includes("direct S3 requests"));
    assert.equal(direct.length, 1, "one direct PUT");
    const got = await client.send(new GetObjectCommand({ Bucket: bkt, Key: "odd keys/ü (1)!.json" }));
    assert.equal(await got.Body!.transformToString(), '{\n  "a": 1\n}\n');
    assert.equal(got.ContentType, "application/json");
    assert.deepEqual(got.Metadata, { "call-id": "call_1" });
  });

  test("errors are the SDK's errors, classified alike", async () => {
    const direct = (await DirectS3.open(client, bkt))!;
    const body = Buffer.from("first");
    await direct.putObject({ Key: "exists", Body: body, ContentLength: body.length }, sha(body));
    const conditional = { Key: "exists", Body: body, ContentLength: body.length, IfNoneMatch: "*" };
    const ours = await failure(direct.putObject(conditional, sha(body)), "overwrote");
    const sdk = await failure(
      client.send(new PutObjectCommand({ Bucket: bkt, ...conditional })),
      "overwrote",
    );
    assert.deepEqual(errorShape(ours), errorShape(sdk));
    assert.equal(classify(ours).status, 412);

    const part = {
      Key: "exists",
      UploadId: "no-such-upload",
      PartNumber: 1,
      Body: body,
      ContentLength: body.length,
    };
    const ourPart = await failure(direct.uploadPart(part), "stored a part of no upload");
    const sdkPart = await failure(
      client.send(new UploadPartCommand({ Bucket: bkt, ...part })),
      "stored a part of no upload",
    );
    assert.deepEqual(errorShape(ourPart), errorShape(sdkPart));
    assert.equal(classify(ourPart).code, "NoSuchUpload");
  });

  test("a part goes up and completes an upload", async () => {
    const direct = (await DirectS3.open(client, bkt))!;
    const up = await client.send(new CreateMultipartUploadCommand({ Bucket: bkt, Key: "mp" }));
    const body = Buffer.alloc(1000, 7);
    const out = await direct.uploadPart({
      Key: "mp",
      UploadId: up.UploadId!,
      PartNumber: 1,
      Body: body,
      ContentLength: body.length,
      ContentMD5: md5(body),
    });
    assert.equal(out.ETag, `"${createHash("md5").update(body).digest("hex")}"`);
  });

  test("a wrong secret is refused as S3 refuses it (the server really checks signatures)", async () => {
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    const bad = createS3Client({
      forcePathStyle: true,
      maxSockets: 1,
      region: "us-east-1",
      endpoint: s3.endpoint,
    });
    const direct = (await DirectS3.open(bad, bkt))!;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    const body = Buffer.from("x");
    const viaDirect = await failure(
      direct.putObject({ Key: "nope", Body: body, ContentLength: 1 }, sha(body)),
      "accepted a bad signature",
    );
    const viaSdk = await failure(
      bad.send(new PutObjectCommand({ Bucket: bkt, Key: "nope", Body: body })),
      "accepted a bad signature",
    );
    assert.equal(errorShape(viaDirect).name, "SignatureDoesNotMatch");
    assert.deepEqual(errorShape(viaDirect), errorShape(viaSdk));
    assert.equal(classify(viaDirect).kind, "fatal");
    bad.destroy();
  });
});

/** The error a request must fail with; a success fails the test with `what`. */
function failure(p: Promise<unknown>, what: string): Promise<unknown> {
  return p.then(
    () => assert.fail(what),
    (e: unknown) => e,
  );
}

function errorShape(e: unknown) {
  const x = e as { name: string; $fault?: string; $metadata?: { httpStatusCode?: number } };
  return { name: x.name, fault: x.$fault, status: x.$metadata?.httpStatusCode };
}
