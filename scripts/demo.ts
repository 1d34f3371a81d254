/**
 * `npm run demo`: the real CLI against the built-in Envoy simulator and a local S3 server (s3rver), twice — the
 * second run shows that a finished archive has nothing left to do. No credentials, no Docker.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { startLocalS3 } from "./local-s3.js";
import { startSimulator } from "../simulator/server.js";
import { expectedSha256 } from "../simulator/data.js";
import { mkdirPrivate } from "../src/base/private-fs.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const root = resolve(import.meta.dirname, "../..");
const demoDir = join(root, ".demo");
const cli = join(root, "dist/src/cli.js");
const bucket = "envoy-recordings";

rmSync(demoDir, { recursive: true, force: true });
mkdirPrivate(demoDir); // its state DB holds (simulated) call metadata: owner-only, as the archiver makes its own

const sim = await startSimulator({
  calls: { count: 24, seed: 42, days: 7, notReadyEvery: 8, noRecordingEvery: 11 },
});
const s3 = await startLocalS3({ buckets: [bucket], directory: join(demoDir, "s3") });
const env = {
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? demoDir,
  ...s3.env,
  ENVOY_API_URL: sim.apiUrl,
  ENVOY_API_KEY: sim.apiKey,
  ARCHIVER_S3_BUCKET: bucket,
  ARCHIVER_DB_PATH: join(demoDir, "archiver.db"),
  ARCHIVER_ALLOW_INSECURE_URLS: "true", // the simulator serves media over http on loopback
  LOG_LEVEL: "warn",
};

async function step(title: string, args: string[]): Promise<number> {
  process.stdout.write(`\n$ envoy-archiver ${args.join(" ")}    # ${title}\n`);
  // The CLI runs as its own process, exactly as from cron. Asynchronously: the simulator and the S3 server
  // answer it from this process's event loop.
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: "inherit" });
  return new Promise((done) => child.on("close", (status) => done(status ?? 1)));
}

let code = 0;
try {
  process.stdout.write(
    `Envoy simulator: ${sim.apiUrl} (${sim.calls.length} calls)\nS3 (s3rver):     ${s3.endpoint}, bucket "${bucket}"\n`,
  );
  code = await step("first run: archive everything ready", ["run"]);
  if (code !== 0) throw new Error(`first run exited ${code}`);

  // Check what landed in S3, byte for byte, through the S3 API.
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith(".json"));
  let verified = 0;
  for (const key of keys) {
    const id = key
      .split("/")
      .pop()!
      .replace(/\.\w+$/, "");
    const call = sim.calls.find((c) => c.id === id)!;
    const obj = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const got = createHash("sha256")
      .update(await obj.Body!.transformToByteArray())
      .digest("hex");
    if (got !== (await expectedSha256(call)) || got !== obj.Metadata?.sha256)
      throw new Error(`${key}: checksum mismatch`);
    verified++;
  }
  client.destroy();
  process.stdout.write(
    `\nVerified ${verified} recordings in S3 against the source: every SHA-256 matches.\n`,
  );
  process.stdout.write(`Example: s3://${bucket}/${keys[0]} (+ sidecar ${keys[0]}.json)\n`);
  process.stdout.write(
    `Files on disk (s3rver): ${join(demoDir, "s3", bucket)}\nState DB: ${env.ARCHIVER_DB_PATH}\n`,
  );

  code = await step("second run: resumes with nothing to do", ["run"]);
  if (code !== 0) throw new Error(`second run exited ${code}`);
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  code = code || 1;
} finally {
  await sim.close();
  await s3.close({ keepFiles: true });
}
process.exitCode = code;
