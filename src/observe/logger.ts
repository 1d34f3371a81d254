/**
 * pino JSON on stderr with every secret redacted, in messages, fields and errors alike; ISO times. On a terminal,
 * short human lines (pino-pretty: local clock time, one line a record, no pid/host). An error's stack trace only
 * at debug or trace: otherwise its message (which names the side and the setting) is what a person needs.
 */
import { pino, type Logger } from "pino";
import { createRequire } from "node:module";
import { writeSync } from "node:fs";
import { Writable } from "node:stream";
import { REDACT_PATHS, redactError, redactText, type SafeError } from "../base/redact.js";

export function createLogger(opts: {
  level?: string;
  pretty?: boolean;
  secrets?: readonly string[];
  destination?: NodeJS.WritableStream | number;
}): Logger {
  const secrets = opts.secrets ?? [];
  const stacks = opts.level === "debug" || opts.level === "trace";
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
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: (e: unknown) => withoutStack(redactError(e, secrets), stacks) },
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
    return pino(
      options,
      pretty({
        destination: typeof dest === "number" ? clearingLine(dest) : dest,
        sync: true,
        translateTime: "SYS:HH:MM:ss",
        // An error's message is in the record's message already; its details (and stack) at debug.
        ignore: stacks ? "pid,hostname" : "pid,hostname,err",
        singleLine: true,
      }),
    );
  }
  return pino(options, typeof dest === "number" ? pino.destination({ fd: dest, sync: true }) : dest);
}

/** A terminal's stream on which each record first clears the line: the progress line (progress.ts) is never left. */
function clearingLine(fd: number): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      writeSync(fd, "\r\x1b[2K");
      writeSync(fd, chunk);
      done();
    },
  });
}

/** An error as logged below debug: type, message, code and status (of it and its cause), no stack. */
function withoutStack(e: SafeError, keep: boolean): SafeError {
  if (keep) return e;
  const { stack: _stack, cause, ...rest } = e;
  return cause ? { ...rest, cause: withoutStack(cause, false) } : rest;
}
