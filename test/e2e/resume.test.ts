/**
 * Resuming a large recording's multipart upload after the run that started it was stopped or killed: only the
 * bytes after the last stored part are uploaded again, the SHA-256 is rebuilt from the source and checked against
 * the digests recorded with each part, and anything untrustworthy (source changed, upload gone, settings changed)
 * falls back to starting from byte 0. The sink is driven in-process against s3rver over HTTP; the last test kills
 * the real CLI with SIGKILL.
 */
import { after, before } from "node:test";
import { describe, test } from "../helpers/backends.js";
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import { pino, type Logger } from "pino";
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { CapturedRequest } from "../../scripts/s3-faults.js";
import { startTestS3, type TestS3 } from "../helpers/backends.js";
import { type ResumableUpload, type StoredPart, type TransferInput } from "../../src/s3/s3.js";
import { DEFAULT_RETRY_POLICY } from "../../src/base/retry.js";
import { StopRequested } from "../../src/base/errors.js";
import { collect, logsOf, sha256, startRig, summaryOf } from "../helpers/env.js";
import { expectedSha256 } from "../../simulator/data.js";
import { testSink } from "../helpers/sink.js";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** A deterministic recording (not repetitive, so a changed byte changes every digest after it). */
function recording(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size + 3);
  let x = seed;
  for (let i = 0; i < size; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.writeUInt32LE(x, i);
  }
  return out.subarray(0, size);
}

describe("resuming an interrupted multipart upload (sink, in-process)", () => {
  let s3: TestS3;
  let client: S3Client;
  let requests: CapturedRequest[] = [];
  let logLines: string[] = [];
  let logger: Logger;

  before(async () => {
    s3 = await startTestS3({
      bucket: "resume",
      onRequest: (r) => requests.push(r),
    });
    Object.assign(process.env, s3.env, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" });
    client = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString());
          cb();
        },
      }),
    );
  });
  after(async () => {
    client.destroy();
    await s3.close();
  });

  const sinkFor = (signal?: AbortSignal) =>
    testSink(s3.bucket, {
      partSize: PART,
      policy: { ...DEFAULT_RETRY_POLICY, retries: 2, minDelayMs: 10, maxDelayMs: 50 },
      logger,
      signal,
    });

  /** A source serving `data` from any offset, counting what it sends; `onSent` can interrupt it. */
  function source(data: Buffer, onSent?: (sent: number, body: Readable) => void) {
    const stats = { opened: [] as number[], sent: 0 };
    const open: TransferInput["open"] = async (offset) => {
      stats.opened.push(offset);
      let pos = offset;
      const body = new Readable({
        read() {
          if (pos >= data.length) return void this.push(null);
          const chunk = data.subarray(pos, pos + 256 * 1024);
          pos += chunk.length;
          stats.sent += chunk.length;
          this.push(chunk);
          onSent?.(stats.sent, body);
        },
      });
      return { body, skip: 0, totalBytes: data.length, contentType: "video/mp4" };
    };
    return { open, stats };
  }

  function input(key: string, open: TransferInput["open"], data: Buffer, extra: Partial<TransferInput> = {}) {
    const tracked: { uploadId?: string; fingerprint?: string; parts: StoredPart[]; ended: string[] } = {
      parts: [],
      ended: [],
    };
    const inp: TransferInput = {
      key,
      contentType: "video/mp4",
      metadata: { "call-id": key },
      objectParams: {},
      open,
      expectedBytes: data.length,
      onUploadStarted: (uploadId, fingerprint) => Object.assign(tracked, { uploadId, fingerprint }),
      onPartStored: (_id, p) => tracked.parts.push(p),
      onUploadEnded: (id) => tracked.ended.push(id),
      ...extra,
    };
    return { inp, tracked };
  }

  /** Run a transfer that is stopped (as by SIGTERM) once `stopAfter` bytes were read; returns what it left. */
  async function interrupted(key: string, data: Buffer, stopAfter: number): Promise<ResumableUpload> {
    const ac = new AbortController();
    const src = source(data, (sent, body) => {
      if (sent >= stopAfter && !ac.signal.aborted) {
        ac.abort();
        body.destroy(new Error("connection reset"));
      }
    });
    const { inp, tracked } = input(key, src.open, data, { signal: ac.signal });
    await assert.rejects(sinkFor(ac.signal).transfer(inp), StopRequested);
    assert.ok(tracked.uploadId, "a multipart upload was started");
    assert.deepEqual(tracked.ended, [], "the stopped upload is kept, not aborted");
    return {
      uploadId: tracked.uploadId,
      key,
      fingerprint: tracked.fingerprint ?? null,
      parts: tracked.parts,
    };
  }

  /** Transfer `data` taking over what `left` stored, with fresh request and log captures. */
  async function resumeWith(key: string, data: Buffer, left: ResumableUpload) {
    requests = [];
    logLines = [];
    const src = source(data);
    const { inp } = input(key, src.open, data, { resume: left });
    const result = await sinkFor().transfer(inp);
    return { result, src, want: createHash("sha256").update(data).digest("hex") };
  }

  const uploadedParts = () =>
    requests.filter((r) => r.method === "PUT" && r.query.partNumber !== undefined && r.query.uploadId);
  const openUploads = async () =>
    (await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads?.length ?? 0;
  const stored = async (key: string) => {
    const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return {
      body: Buffer.from(await out.Body!.transformToByteArray()),
      sha256: out.Metadata?.sha256,
    };
  };

  test("continues after the last stored part: the stored prefix is re-read and checked, not uploaded", async () => {
    const data = recording(23 * MiB + 12345);
    const key = "recordings/a.mp4";
    const left = await interrupted(key, data, 12 * MiB);
    assert.ok(left.parts.length >= 2, `parts stored before the stop: ${left.parts.length}`);
    const storedBytes = left.parts.at(-1)!.end;

    const { result, src, want } = await resumeWith(key, data, left);
    assert.equal(result.sha256, want);
    assert.equal(result.bytes, data.length);
    assert.equal(result.resumedBytes, storedBytes);
    const parts = uploadedParts().map((r) => Number(r.query.partNumber));
    assert.ok(parts.length > 0 && Math.min(...parts) === left.parts.length + 1, `parts sent: ${parts}`);
    const sent = uploadedParts().reduce((n, r) => n + Number(r.headers["content-length"]), 0);
    assert.equal(sent, data.length - storedBytes, "only the bytes after the stored parts were uploaded");
    assert.deepEqual(src.stats.opened, [0], "one pass over the source");
    const obj = await stored(key);
    assert.equal(sha256(obj.body), want, "object byte-exact");
    assert.equal(obj.sha256, undefined, "written once: no CopyObject onto itself to attach sha256 metadata");
    assert.equal(await openUploads(), 0);
    assert.match(logLines.join(""), /resuming the interrupted upload after part/);
  });

  test("a source that changed since the parts were stored is archived from byte 0", async () => {
    const data = recording(17 * MiB, 7);
    const key = "recordings/b.mp4";
    const left = await interrupted(key, data, 11 * MiB);
    assert.ok(left.parts.length >= 1);
    const changed = Buffer.from(data);
    changed[1000] = changed[1000]! ^ 0xff; // inside part 1

    const { result, want } = await resumeWith(key, changed, left);
    assert.equal(result.sha256, want);
    assert.equal(result.resumedBytes, undefined);
    assert.equal(Math.min(...uploadedParts().map((r) => Number(r.query.partNumber))), 1);
    assert.equal(sha256((await stored(key)).body), want, "the new bytes, not a mix of old and new");
    assert.match(logLines.join(""), /differs from what the interrupted run stored/);
    assert.equal(await openUploads(), 0, "the old upload was aborted");
  });

  test("an upload that is gone from S3, or was made with other settings, is started afresh", async () => {
    const data = recording(12 * MiB, 3);
    const gone = await interrupted("recordings/c.mp4", data, 11 * MiB);
    const sink = sinkFor();
    assert.ok(await sink.abortUpload(gone.key, gone.uploadId));
    const a = input(gone.key, source(data).open, data, { resume: gone });
    const r1 = await sink.transfer(a.inp);
    assert.equal(r1.resumedBytes, undefined);
    assert.deepEqual(a.tracked.ended.slice(0, 1), [gone.uploadId], "the gone upload is untracked");
    assert.equal(sha256((await stored(gone.key)).body), sha256(data));

    const other = await interrupted("recordings/d.mp4", data, 11 * MiB);
    const b = input(other.key, source(data).open, data, {
      resume: other,
      metadata: { "call-id": other.key, "duration-seconds": "99" },
    });
    const r2 = await sinkFor().transfer(b.inp);
    assert.equal(r2.resumedBytes, undefined);
    assert.match(logLines.join(""), /object settings changed/);
    assert.equal(await openUploads(), 0);
  });
  test("an upload that vanishes mid-transfer is started again from byte 0 with a new upload", async () => {
    const data = recording(18 * MiB, 11);
    const key = "recordings/e.mp4";
    let first: string | undefined;
    // Once a part is stored, the upload disappears (a lifecycle rule, an operator).
    const src = source(data, (sent) => {
      if (sent >= 12 * MiB && first === undefined && tracked.uploadId) {
        first = tracked.uploadId;
        void client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: first }));
      }
    });
    const { inp, tracked } = input(key, src.open, data);
    const result = await sinkFor().transfer(inp);
    assert.ok(first, "the upload was aborted under the transfer");
    assert.notEqual(tracked.uploadId, first, "a new upload was started");
    assert.ok(tracked.ended.includes(first), "the vanished upload is untracked");
    const want = createHash("sha256").update(data).digest("hex");
    assert.equal(result.sha256, want);
    assert.equal(sha256((await stored(key)).body), want);
    assert.equal(await openUploads(), 0);
  });
});

describe("resuming after SIGKILL (CLI)", () => {
  test("a killed run's large recording continues from its last part in the next run", async () => {
    const parts: { n: number; bytes: number }[] = [];
    let capturing = false;
    const rig = await startRig(
      { calls: { count: 1, seed: 21, days: 1, sizeBytes: 31 * MiB } },
      {
        onRequest: (r) => {
          if (capturing && r.method === "PUT" && r.query.partNumber !== undefined)
            parts.push({ n: Number(r.query.partNumber), bytes: Number(r.headers["content-length"]) });
        },
      },
    );
    try {
      const env = { ARCHIVER_PART_SIZE_MB: "5", ARCHIVER_PART_QUEUE: "1" };
      rig.sim.setFaults({ mediaSlowBytesPerSec: 8 * MiB });
      const child = rig.spawn(["run", "--json"], env);
      const result = collect(child);
      // Kill once at least two parts are recorded as stored (the state DB is read while the run writes it).
      const deadline = Date.now() + 60_000;
      let recorded = 0;
      while (recorded < 2 && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          const db = new Database(rig.dbPath, { readonly: true, fileMustExist: true });
          recorded = db.prepare("SELECT COUNT(*) FROM upload_parts").pluck().get() as number;
          db.close();
        } catch {
          // not created yet
        }
      }
      assert.ok(recorded >= 2, "two parts stored before the kill");
      child.kill("SIGKILL");
      await result;

      const db = new Database(rig.dbPath, { readonly: true });
      const kept = db
        .prepare("SELECT part_number, end_offset FROM upload_parts ORDER BY part_number")
        .all() as {
        part_number: number;
        end_offset: number;
      }[];
      db.close();
      let contiguous = 0;
      while (kept[contiguous]?.part_number === contiguous + 1) contiguous++;
      const storedBytes = kept[contiguous - 1]!.end_offset;

      rig.sim.setFaults({});
      capturing = true;
      const r = await rig.run(["run", "--json"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summaryOf(r).archived, 1);
      assert.ok(
        parts.every((p) => p.n > contiguous),
        `parts uploaded again: ${parts.map((p) => p.n)}`,
      );
      assert.equal(
        parts.reduce((n, p) => n + p.bytes, 0),
        31 * MiB - storedBytes,
        "only the bytes after the stored parts were uploaded",
      );
      const resumed = logsOf(r).find((l) => l.msg === "resumed an interrupted upload");
      assert.equal(resumed?.resumed_bytes, storedBytes);

      const call = rig.sim.calls[0]!;
      const key = (await rig.listKeys("recordings/")).find((k) => !k.endsWith(".json"))!;
      const obj = await rig.getObject(key);
      const want = await expectedSha256(call);
      assert.equal(sha256(obj.body), want, "byte-exact");
      const side = JSON.parse((await rig.getObject(`${key}.json`)).body.toString()) as {
        archive: { sha256: string };
      };
      assert.equal(side.archive.sha256, want, "the SHA-256 is in the sidecar");
      assert.equal(await rig.multipartUploads(), 0, "no multipart upload left open");
      const after = new Database(rig.dbPath, { readonly: true });
      assert.equal(after.prepare("SELECT COUNT(*) FROM uploads").pluck().get(), 0);
      assert.equal(after.prepare("SELECT COUNT(*) FROM upload_parts").pluck().get(), 0);
      after.close();

      // Killed between S3 creating an upload and the state DB recording it: the next run still aborts it (its
      // call is in this state DB), and leaves alone a fresh one for a call it does not know (another shard's).
      const create = (k: string) =>
        rig.client.send(new CreateMultipartUploadCommand({ Bucket: rig.bucket, Key: k }));
      await create(key);
      const foreign = "recordings/2026/01/01/call_00000000-0000-4000-8000-00000000abcd.m4a";
      await create(foreign);
      const again = await rig.run(["run", "--json"], env);
      assert.equal(again.code, 0, again.stderr);
      const open = await rig.client.send(new ListMultipartUploadsCommand({ Bucket: rig.bucket }));
      assert.deepEqual(
        (open.Uploads ?? []).map((u) => u.Key),
        [foreign],
      );
    } finally {
      await rig.close();
    }
  });
});
