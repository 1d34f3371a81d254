/**
 * `npm run local-s3`: the local S3 server (s3rver, scripts/local-s3.ts) on its own, for trying the archiver by hand
 * next to `npm run simulator`. Prints the settings that point the archiver at it; Ctrl-C stops it.
 *
 *   npm run local-s3 -- [--port 4568] [--bucket recordings] [--dir .local-s3]
 */
import { parseArgs } from "node:util";
import { startLocalS3 } from "./local-s3.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "4568" },
    bucket: { type: "string", default: "recordings" },
    dir: { type: "string", default: ".local-s3" },
  },
});
const s3 = await startLocalS3({ buckets: [values.bucket], port: Number(values.port), directory: values.dir });
const settings = { ...s3.env, ARCHIVER_S3_BUCKET: values.bucket };
process.stdout.write(
  `local S3 on ${s3.endpoint}, files in ${values.dir}/ (any access key is accepted). For the archiver:\n` +
    Object.entries(settings)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(""),
);
const stop = () => void s3.close({ keepFiles: true }).then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
