/**
 * The S3 servers the end-to-end suite runs against, and what each cannot run and why, in one place (as rclone's
 * backend test matrix lists them).
 *
 *   ARCHIVER_TEST_S3 unset or "s3rver"  s3rver on loopback (scripts/local-s3.ts), one server per rig.
 *   ARCHIVER_TEST_S3=rgw                Ceph RGW (`scripts/ceph-rgw.sh start`) at ARCHIVER_TEST_S3_ENDPOINT
 *                                      (default http://127.0.0.1:7480), a uniquely named bucket per rig, keys
 *                                      ARCHIVER_TEST_S3_ACCESS_KEY / ARCHIVER_TEST_S3_SECRET_KEY (archiver /
 *                                      archiver-secret). Tests that capture requests or inject S3 faults get a
 *                                      pass-through proxy in front of it (scripts/s3-proxy.ts).
 */
import { describe as nodeDescribe, test as nodeTest, type TestContext } from "node:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectLegalHoldCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startLocalS3, type LocalS3 } from "../../scripts/local-s3.js";
import { startS3Proxy, type S3Proxy } from "../../scripts/s3-proxy.js";
import type { CapturedRequest, CorruptionPlan, S3Faults } from "../../scripts/s3-faults.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export type Backend = "s3rver" | "rgw";

export const BACKEND: Backend = backendOf(process.env.ARCHIVER_TEST_S3);

function backendOf(v: string | undefined): Backend {
  if (v === undefined || v === "" || v === "s3rver") return "s3rver";
  if (v === "rgw") return "rgw";
  throw new Error(`ARCHIVER_TEST_S3=${v}: expected "s3rver" or "rgw"`);
}

const CLOCK =
  "moves the S3 server's clock (local S3 emulation); against RGW, rgw-faults.test.ts moves this machine's instead (faketime)";
const NO_CONDITIONAL_COMPLETE =
  "RGW 16.2 ignores If-None-Match on CompleteMultipartUpload, so a rival stored after the archiver's check of the key is written over; rgw-faults.test.ts runs two real writers, whom the check of each other's uploads keeps to one version";

/** Tests (by name) that a backend cannot run, with the reason shown in the test report. */
const UNSUPPORTED: Record<Backend, Record<string, string>> = {
  s3rver: {
    ...Object.fromEntries(
      [
        "Ceph RGW, GOVERNANCE Object Lock bucket: lock evidence read back",
        "Ceph RGW, COMPLIANCE Object Lock bucket: lock evidence read back",
        "Ceph RGW, versioned bucket without lock settings: version id and ETag as stored, one version each",
      ].map((name) => [
        name,
        "s3rver keeps no versions (one object per key): these tests count each key's versions and read each version's lock",
      ]),
    ),
    "Ceph RGW, GOVERNANCE Object Lock bucket: legal hold by selection":
      "s3rver has no Object Lock and keeps no versions: a legal hold can be neither set on each version nor read back",
    "a storage class the server does not have: operation, key, status and code, for a single PUT and a multipart upload":
      "s3rver accepts any storage class",
    "tags in any script (ü, Prüfung) are stored on recordings and sidecars and read back":
      "s3rver does not store x-amz-tagging sent with PutObject (GetObjectTagging answers an empty set)",
  },
  rgw: {
    "S3 and Envoy 20 min ahead of this machine: everything archived, by their clocks": CLOCK,
    "S3 and Envoy 20 min behind this machine: everything archived, by their clocks": CLOCK,
    "the clock jumps 20 min mid-run (a VM resumed): the PUTs learn the server's time again": CLOCK,
    "a skew that cannot be corrected (no Date header) fails at once, naming the clock, not 'access denied'":
      "needs a server that refuses the request time and sends no Date header (local S3 emulation); RGW sends one",
    "the completion is refused (If-None-Match); the loser adopts the same bytes": NO_CONDITIONAL_COMPLETE,
    "the completion is refused (If-None-Match); the loser fails naming both runs": NO_CONDITIONAL_COMPLETE,
    "a server that answers the Put* calls but holds nothing: those recordings fail, never recorded as locked":
      "needs a server that answers PutObjectRetention/LegalHold/Tagging with success and stores nothing (local S3 emulation)",
    "an endpoint that cannot answer the lock question (s3rver: 501) and shows versioning off: exit 1 before any download":
      "tests s3rver's 501 to GetObjectLockConfiguration; RGW answers it",
    "worker: a server that cannot list multipart uploads is named once per process, not on every tick":
      "needs a server that answers ListMultipartUploads with 501 (local S3 emulation); RGW lists them",
    "verify: bytes changed where they are stored, without a write, are found by --deep alone":
      "changes an object's bytes in s3rver's files, behind the server",
  },
};

/** Settings a test sends that differ by backend, and why. */
export const BACKEND_PARAMS: { storageClass: string; sse: string | undefined } =
  BACKEND === "rgw"
    ? {
        // RGW's default placement has only STANDARD: STANDARD_IA is refused (400 InvalidArgument).
        storageClass: "STANDARD",
        // RGW 16.2 refuses SSE over plain HTTP (400 InvalidRequest); with rgw_crypt_require_ssl off it accepts
        // AES256, but no HEAD shows the object encrypted.
        sse: undefined,
      }
    : { storageClass: "STANDARD_IA", sse: "AES256" };

/**
 * Facts of the server that decide which requests the archiver needs, so that tests pinning request sequences
 * expect each backend's own (s3rver's are those of its local emulation, see scripts/local-s3-lock.ts).
 */
export const SERVER_FACTS: {
  /** Retention, legal hold and tags sent with CreateMultipartUpload are stored ("kept") or dropped ("ignored"). */
  lockOnMultipart: "kept" | "ignored";
  /** HeadObject of an object without tags says x-amz-tagging-count: 0 ("zero") or nothing ("absent", as AWS). */
  tagCountWhenNone: "zero" | "absent";
  /** CompleteMultipartUpload answers with the object's ETag ("returned") or an empty one ("empty"). */
  completeEtag: "returned" | "empty";
  /**
   * PutObject and UploadPart answer back the x-amz-checksum-crc32c they were sent ("echoed", as AWS), or not
   * ("absent": s3rver does not check it; RGW 16.2 accepts a wrong one and keeps none).
   */
  checksumAnswer: "echoed" | "absent";
} =
  BACKEND === "rgw"
    ? // Ceph RGW 16.2 drops lock and tag headers on CreateMultipartUpload (the archiver applies them after the
      // write); HEAD of such an object says x-amz-tagging-count: 0; CompleteMultipartUpload's ETag is "".
      {
        lockOnMultipart: "ignored",
        tagCountWhenNone: "zero",
        completeEtag: "empty",
        checksumAnswer: "absent",
      }
    : {
        lockOnMultipart: "kept",
        tagCountWhenNone: "absent",
        completeEtag: "returned",
        checksumAnswer: "absent",
      };

/** Why `name` is skipped on this backend, or false. */
export function skipOn(name: string): string | false {
  const reason = UNSUPPORTED[BACKEND][name];
  return reason === undefined ? false : `not on ${BACKEND}: ${reason}`;
}

/** node:test's `test`, skipped (with its reason) where the backend matrix says so. */
export function test(name: string, fn: (t: TestContext) => void | Promise<void>): void {
  void nodeTest(name, { skip: skipOn(name) }, fn);
}

/** node:test's `describe`, skipped (with its reason) where the backend matrix says so. */
export function describe(name: string, fn: () => void): void {
  void nodeDescribe(name, { skip: skipOn(name) }, fn);
}

export interface TestS3Options {
  /** The bucket's name on s3rver; RGW buckets are named uniquely (`ea-…`). */
  bucket?: string;
  /** s3rver's files; a temp directory if not given. */
  directory?: string;
  /** Called with every request's method, path, query and headers (tests assert on what was sent). */
  onRequest?: (req: CapturedRequest) => void;
  /** Called with every request and the status the server gave it (given even when the answer is then lost). */
  onResponse?: (req: CapturedRequest, status: number) => void;
  /** Create the bucket with Object Lock ("enabled") or without; s3rver imitates the answer (see local-s3). */
  objectLock?: "enabled" | "disabled";
  /** RGW only: turn versioning on (an Object Lock bucket has it anyway); s3rver keeps no versions. */
  versioning?: "enabled";
  /** The test injects S3 faults or outages (RGW: through the proxy). */
  faults?: boolean;
  /** Bodies corrupted on their way (setCorruption): the recording proxy in front, on every backend. */
  corrupting?: boolean;
  /** s3rver only: ignore lock/hold/tag headers on CreateMultipartUpload, as Ceph RGW 16.2 does. */
  lockOnMultipart?: "honour" | "ignore";
  /** s3rver only: answer PutObjectRetention/LegalHold/Tagging with success but store nothing. */
  lockCalls?: "apply" | "ignore";
  /** s3rver only: ListMultipartUploads answers 501 NotImplemented. */
  listUploads?: "unsupported";
}

export interface TestS3 {
  backend: Backend;
  /** What the archiver and the tests' clients talk to (the proxy, where one is in front of RGW). */
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Environment for the CLI (and for in-process SDK clients): endpoint, region, keys, path style. */
  env: Record<string, string>;
  /** Inject failures into object writes (PutObject, UploadPart). */
  setFaults(faults: S3Faults): void;
  /** Flip a bit in the bodies of the writes the plan selects (the rig needs { corrupting: true }). */
  setCorruption(plan: CorruptionPlan | undefined): { corrupted: readonly string[] };
  /** S3 unreachable (connections refused) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Remove the server (s3rver) or empty and remove the bucket (RGW, every version). */
  close(): Promise<void>;
}

export async function startTestS3(opts: TestS3Options = {}): Promise<TestS3> {
  return BACKEND === "rgw" ? startRgwBucket(opts) : startS3rver(opts);
}

function envFor(endpoint: string, credentials: TestS3["credentials"]): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    ARCHIVER_S3_FORCE_PATH_STYLE: "true",
  };
}

async function startS3rver(opts: TestS3Options): Promise<TestS3> {
  if (opts.versioning) throw new Error("s3rver keeps no versions: list the test in UNSUPPORTED.s3rver");
  const bucket = opts.bucket ?? "recordings";
  const directory = opts.directory ?? mkdtempSync(join(tmpdir(), "envoy-archiver-s3-"));
  const serverOpts = {
    buckets: [bucket],
    directory,
    onRequest: opts.onRequest,
    onResponse: opts.onResponse,
    objectLock: opts.objectLock,
    lockOnMultipart: opts.lockOnMultipart,
    lockCalls: opts.lockCalls,
    listUploads: opts.listUploads,
  };
  let local: LocalS3 | undefined = await startLocalS3(serverOpts);
  const port = Number(new URL(local.endpoint).port);
  const proxy = opts.corrupting ? await startS3Proxy(local.endpoint) : undefined;
  const endpoint = proxy?.endpoint ?? local.endpoint;
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  return {
    backend: "s3rver",
    endpoint,
    bucket,
    credentials,
    env: envFor(endpoint, credentials),
    setFaults: (f) => local?.setFaults(f),
    setCorruption: (plan) => corruptingProxy(proxy).setCorruption(plan),
    async stop() {
      await local?.close({ keepFiles: true });
      local = undefined;
    },
    async start() {
      local ??= await startLocalS3({ ...serverOpts, port });
    },
    async close() {
      await proxy?.close();
      await local?.close({ keepFiles: opts.directory !== undefined });
      local = undefined;
    },
  };
}

async function startRgwBucket(opts: TestS3Options): Promise<TestS3> {
  const target = process.env.ARCHIVER_TEST_S3_ENDPOINT || "http://127.0.0.1:7480";
  const credentials = {
    accessKeyId: process.env.ARCHIVER_TEST_S3_ACCESS_KEY || "archiver",
    secretAccessKey: process.env.ARCHIVER_TEST_S3_SECRET_KEY || "archiver-secret",
  };
  const bucket = `ea-${Date.now().toString(36)}-${randomBytes(5).toString("hex")}`;
  const admin = new S3Client({ endpoint: target, region: "us-east-1", forcePathStyle: true, credentials });
  try {
    await admin.send(
      new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: opts.objectLock === "enabled" }),
    );
    if (opts.versioning)
      await admin.send(
        new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }),
      );
  } catch (err) {
    admin.destroy();
    throw new Error(
      `cannot create a bucket on ${target} (is it up? scripts/ceph-rgw.sh start): ${String(err)}`,
    );
  }
  const proxy: S3Proxy | undefined =
    opts.onRequest || opts.onResponse || opts.faults || opts.corrupting
      ? await startS3Proxy(target, { onRequest: opts.onRequest, onResponse: opts.onResponse })
      : undefined;
  const endpoint = proxy?.endpoint ?? target;
  const needProxy = (what: string) => {
    if (!proxy) throw new Error(`${what} on RGW needs the rig started with { faults: true }`);
    return proxy;
  };
  return {
    backend: "rgw",
    endpoint,
    bucket,
    credentials,
    env: envFor(endpoint, credentials),
    setFaults: (f) => needProxy("setFaults").setFaults(f),
    setCorruption: (plan) => corruptingProxy(proxy).setCorruption(plan),
    stop: () => needProxy("stop").stop(),
    start: () => needProxy("start").start(),
    async close() {
      await proxy?.close();
      try {
        await removeBucket(admin, bucket, opts.objectLock === "enabled");
      } finally {
        admin.destroy();
      }
    },
  };
}

function corruptingProxy(proxy: S3Proxy | undefined): S3Proxy {
  if (!proxy) throw new Error("setCorruption needs the rig started with { corrupting: true }");
  return proxy;
}

/**
 * Empties (every version, every delete marker, every open multipart upload) and removes a test bucket. In an
 * Object Lock bucket legal holds are lifted and GOVERNANCE retention bypassed; versions under COMPLIANCE retention
 * cannot be deleted by anyone, so such a bucket stays (RGW's state is a throw-away memstore).
 */
async function removeBucket(client: S3Client, bucket: string, locked: boolean): Promise<void> {
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? [])
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  let undeletable = 0;
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const out = await client.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        KeyMarker: keyMarker,
        VersionIdMarker: versionIdMarker,
      }),
    );
    for (const v of [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])]) {
      const target = { Bucket: bucket, Key: v.Key, VersionId: v.VersionId };
      try {
        if (locked)
          await client.send(new PutObjectLegalHoldCommand({ ...target, LegalHold: { Status: "OFF" } }));
        await client.send(new DeleteObjectCommand({ ...target, BypassGovernanceRetention: locked }));
      } catch (err) {
        if (!locked) throw err;
        undeletable++;
      }
    }
    if (!out.IsTruncated) break;
    keyMarker = out.NextKeyMarker;
    versionIdMarker = out.NextVersionIdMarker;
  }
  if (undeletable === 0) await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}
