/**
 * `npm run build`, second step: bundle the compiled CLI into one file, in place (dist/src/cli.js).
 *
 * Node spends most of a run's start-up resolving, reading and compiling several hundred small module files (the
 * AWS SDK alone is hundreds); one file cuts a run with nothing to do from ~0.6 to ~0.4 s CPU (bench/RESULTS.md).
 * The library modules under dist/src stay as tsc wrote them, for programs and tests that import them.
 * Native and worker-thread packages stay external, loaded from node_modules as before.
 */
import { build } from "esbuild";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "dist/src/cli.js");

await build({
  entryPoints: [cli],
  outfile: cli,
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // better-sqlite3 loads a native addon; pino starts its transports (pino-pretty) in worker threads by file name.
  external: ["better-sqlite3", "pino", "pino-pretty", "thread-stream"],
  // CommonJS dependencies inside an ES module bundle still need `require` for Node's built-ins.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  sourcemap: true,
  logLevel: "warning",
});
