/**
 * Run the Envoy simulator on its own:
 *   node dist/simulator/main.js [--host 127.0.0.1] [--port 4010] [--calls 50] [--seed 1] [--size-bytes N] [--rps N]
 * Prints the API URL and key, serves until SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { startSimulator } from "./server.js";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "4010" },
    calls: { type: "string", default: "50" },
    seed: { type: "string", default: "1" },
    days: { type: "string", default: "30" },
    "size-bytes": { type: "string" },
    rps: { type: "string" },
    "public-url": { type: "string" },
  },
});

const sim = await startSimulator({
  host: values.host,
  port: Number(values.port),
  calls: {
    count: Number(values.calls),
    seed: Number(values.seed),
    days: Number(values.days),
    ...(values["size-bytes"] ? { sizeBytes: Number(values["size-bytes"]) } : {}),
  },
  ...(values.rps ? { rateLimit: { rps: Number(values.rps) } } : {}),
  ...(values["public-url"] ? { publicBaseUrl: values["public-url"] } : {}),
});
process.stdout.write(
  `Envoy simulator: ENVOY_API_URL=${sim.apiUrl} ENVOY_API_KEY=${sim.apiKey} (${sim.calls.length} calls)\n`,
);
const stop = () => void sim.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
