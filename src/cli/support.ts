/** Small pieces of the command line: usage checks reported together, the exit. */
import { ConfigError } from "../base/config.js";

/**
 * Run every check and return their results; when any fails with a ConfigError, throw one ConfigError listing
 * every problem (bad flags and bad settings are reported together, not one per attempt).
 */
export function together<T extends unknown[]>(...checks: { [K in keyof T]: () => T[K] }): T {
  const problems: string[] = [];
  const results = checks.map((check) => {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(
        ...err.message
          .replace(/^invalid configuration:\n/, "")
          .split("\n")
          .map((l) => l.trim()),
      );
      return undefined;
    }
  });
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  return results as T;
}

/**
 * Exit with `code` once stdout and stderr have taken what was written: the work is done, and nothing left armed
 * (a timer in a library, an idle keep-alive socket) may keep the process alive after its summary.
 */
export function exitWhenFlushed(code: number): void {
  const exit = () => process.exit(code);
  setTimeout(exit, 2000);
  process.stdout.write("", () => process.stderr.write("", exit));
}
