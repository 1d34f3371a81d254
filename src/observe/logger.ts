/** pino JSON on stderr (pretty on a TTY) with every secret redacted, in messages, fields and errors alike. */
import { pino, type Logger } from "pino";
import { createRequire } from "node:module";
import { REDACT_PATHS, redactError, redactText } from "../base/redact.js";

export function createLogger(opts: {
  level?: string;
  pretty?: boolean;
  secrets?: readonly string[];
  destination?: NodeJS.WritableStream | number;
}): Logger {
  const secrets = opts.secrets ?? [];
  const scrub = (v: unknown, depth = 0): unknown => {
    if (typeof v === "string") return redactText(v, secrets);
    if (depth > 3 || v === null || typeof v !== "object" || v instanceof Error) return v;
    if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrub(x, depth + 1)]));
  };
  const options: pino.LoggerOptions = {
    level: opts.level ?? "info",
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    serializers: { err: (e: unknown) => redactError(e, secrets) },
    formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === "string" ? redactText(a, secrets) : a)) as Parameters<typeof method>,
        );
      },
    },
  };
  const dest = opts.destination ?? 2;
  if (opts.pretty) {
    // Loaded only for a terminal: cron and containers never pay for it.
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
    return pino(options, pretty({ destination: dest as number, sync: true }));
  }
  return pino(options, typeof dest === "number" ? pino.destination({ fd: dest, sync: true }) : dest);
}
