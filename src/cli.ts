#!/usr/bin/env node
/**
 * The executable: parses the command line (the commands are in src/cli/), runs the command and maps what
 * happened to an exit code. Everything the commands do can be called from a test through src/index.ts.
 */
import { CommanderError } from "commander";
import { ConfigError } from "./base/config.js";
import { redactText } from "./base/redact.js";
import { EXIT } from "./cli/exit.js";
import { buildProgram } from "./cli/program.js";
import { exitWhenFlushed } from "./cli/support.js";
// Each command imports what it needs when it runs (the AWS SDK, SQLite, prom-client, croner): `--help` stays
// instant and a run does not evaluate modules it never uses. (The build bundles this file: scripts/bundle.ts.)

// A reader that goes away (`envoy-archiver --help | head -3`) is not our error: stop writing to it and go on.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

// The AWS SDK prints a multi-line deprecation notice on Node 20 at every start; cron would mail it hourly.
// Node 20, 22 and 24 are supported (README): nothing to tell a user on any of them.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export { EXIT, exitCodeFor } from "./cli/exit.js";
export { buildProgram } from "./cli/program.js";

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; unknown flags and bad values have already been printed.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`envoy-archiver: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(
      `envoy-archiver: fatal: ${redactText(err instanceof Error ? err.message : String(err))}\n`,
    );
    return EXIT.fatal;
  }
}

main(process.argv).then(exitWhenFlushed);
