/**
 * The local S3 server stands in for S3 in the quick suite: where s3rver differs from S3 in a way the archiver can
 * see, it must answer as S3 does. Here: a PUT whose client is killed mid-body leaves no object (s3rver kept the
 * bytes that had arrived, and a SIGKILL trial's next run found a truncated object under the recording's key).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { startLocalS3 } from "../../scripts/local-s3.js";
import { s3ClientFor } from "../helpers/s3-client.js";

const DYING_PUT = fileURLToPath(new URL("../helpers/dying-put.js", import.meta.url));

async function headOf(client: S3Client, key: string): Promise<number | string> {
  try {
    const h = await client.send(new HeadObjectCommand({ Bucket: "b", Key: key }));
    return `stored, ${h.ContentLength} bytes`;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? String(err);
  }
}

test("a new object whose client is killed mid-body is not stored, and the key takes a whole one after", async () => {
  const s3 = await startLocalS3({ buckets: ["b"] });
  const client = s3ClientFor(s3.env);
  try {
    const child = spawn(process.execPath, [DYING_PUT], {
      env: { ...process.env, ...s3.env, PUT_KEY: "k" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await once(child.stdout, "data");
    // Long enough for s3rver to have written what arrived into the object's file.
    await sleep(500);
    child.kill("SIGKILL");
    await once(child, "exit");
    assert.equal(await headOf(client, "k"), 404);
    await client.send(
      new PutObjectCommand({ Bucket: "b", Key: "k", Body: Buffer.alloc(1000, 1), IfNoneMatch: "*" }),
    );
    assert.equal(await headOf(client, "k"), "stored, 1000 bytes");
  } finally {
    client.destroy();
    await s3.close();
  }
});
