/**
 * The benchmark's servers, in their own process so that only the archiver and rclone are measured: the Envoy
 * simulator and s3rver. Takes the simulator options as JSON in argv[2]; prints the addresses as one JSON line;
 * runs until stdin closes or SIGTERM.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimulator, type SimulatorOptions } from "../simulator/server.js";
import { startLocalS3 } from "../scripts/local-s3.js";

const opts = JSON.parse(process.argv[2] ?? "{}") as SimulatorOptions & { bucket?: string; dir?: string };
const bucket = opts.bucket ?? "bench";
const sim = await startSimulator(opts);
const s3 = await startLocalS3({
  buckets: [bucket],
  directory: opts.dir ?? mkdtempSync(join(tmpdir(), "bench-s3-")),
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
process.stdin.on("end", () => void stop());
process.stdin.resume();
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
