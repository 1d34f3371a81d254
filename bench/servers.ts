/**
 * The benchmark's servers, in their own process so that only the archiver and rclone are measured: the Envoy
 * simulator and s3rver. Takes the simulator options as JSON in argv[2]; prints the addresses as one JSON line;
 * runs until stdin closes or SIGTERM. A line "stats" on stdin is answered with one JSON line: the S3 requests
 * served since the last "stats", by operation (list, head, get, put, other).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startSimulator, type SimulatorOptions } from "../simulator/server.js";
import { startLocalS3 } from "../scripts/local-s3.js";

const opts = JSON.parse(process.argv[2] ?? "{}") as SimulatorOptions & { bucket?: string; dir?: string };
const bucket = opts.bucket ?? "bench";
const sim = await startSimulator(opts);
let s3Requests: Record<string, number> = {};
const s3 = await startLocalS3({
  buckets: [bucket],
  directory: opts.dir ?? mkdtempSync(join(tmpdir(), "bench-s3-")),
  onRequest: (r) => {
    const onKey = /^\/[^/]+\/./.test(r.path);
    const op =
      r.method === "HEAD"
        ? "head"
        : r.method === "PUT"
          ? "put"
          : r.method === "GET" && !onKey && r.query["list-type"] === "2"
            ? "list"
            : r.method === "GET" && onKey
              ? "get"
              : "other";
    s3Requests[op] = (s3Requests[op] ?? 0) + 1;
  },
});
process.stdout.write(
  JSON.stringify({
    apiUrl: sim.apiUrl,
    apiKey: sim.apiKey,
    baseUrl: sim.baseUrl,
    s3Endpoint: s3.endpoint,
    s3Dir: s3.directory,
    bucket,
    calls: sim.calls.length,
  }) + "\n",
);

let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await sim.close();
  await s3.close({ keepFiles: false });
  process.exit(0);
};
const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (line.trim() !== "stats") return;
  process.stdout.write(JSON.stringify(s3Requests) + "\n");
  s3Requests = {};
});
input.on("close", () => void stop());
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
