/**
 * Client CPU of the S3 request path alone: N recordings of one size stored through the store's `transfer` at a
 * given concurrency into s3rver running in another process (bench/servers.ts), so that only the archiver's side
 * is measured. `node dist/bench/s3-cpu.js [count] [bytes] [concurrency] [checksum]` prints one JSON line.
 * Not part of `npm run bench` (W1–W5): a focused measurement of the per-request cost.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import pino from "pino";
import { openSink } from "../src/s3/s3.js";
import { DEFAULT_RETRY_POLICY } from "../src/base/retry.js";
import { BoundedQueue } from "../src/base/concurrency.js";

const [count = 2000, bytes = 100 * 1024, concurrency = 16] = process.argv.slice(2, 5).map(Number);
const checksum = (process.argv[5] ?? "NONE") as "NONE" | "MD5";
const server = spawn(process.execPath, [fileURLToPath(new URL("./servers.js", import.meta.url)), "{}"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: server.stdout! });
const first = await new Promise<string>((resolve) => lines.once("line", resolve));
const { s3Endpoint, bucket } = JSON.parse(first) as { s3Endpoint: string; bucket: string };
Object.assign(process.env, {
  AWS_ENDPOINT_URL_S3: s3Endpoint,
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: "S3RVER",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
});
const sink = openSink(
  {
    concurrency,
    s3: { bucket, forcePathStyle: true, partSize: 8 * 1024 ** 2, queueSize: 2, region: "us-east-1" },
    storage: { checksum },
  },
  DEFAULT_RETRY_POLICY,
  pino({ level: "silent" }),
);
const body = Buffer.alloc(bytes, 7);
const queue = new BoundedQueue(concurrency);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  const key = `cpu/${i}-${Date.now()}.mp3`;
  await queue.add(async () => {
    await sink.transfer({
      key,
      contentType: "audio/mpeg",
      metadata: {},
      objectParams: {},
      expectedBytes: bytes,
      open: () =>
        Promise.resolve({ body: Readable.from([body]), skip: 0, totalBytes: bytes, contentType: null }),
    });
  });
}
await queue.drain();
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
sink.close();
server.stdin!.end();
process.stdout.write(
  JSON.stringify({
    count,
    bytes,
    concurrency,
    checksum,
    cpuS: +((cpu.user + cpu.system) / 1e6).toFixed(2),
    cpuMsPerRequest: +((cpu.user + cpu.system) / 1e3 / count).toFixed(3),
    wallS: +(wallMs / 1000).toFixed(2),
  }) + "\n",
);
