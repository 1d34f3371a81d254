/**
 * What a server is (it cannot list multipart uploads, it does not answer checksums back, it ignores lock headers on
 * one kind of write) does not change from one run to the next: the user hears it once per process, at warn, and
 * later at debug (or info). Keyed by the logger, which the CLI makes once per process and the worker hands to every tick.
 */
import type { Logger } from "pino";

const said = new WeakMap<Logger, Set<string>>();

/** Warn `msg` the first time `fact` is noted on this logger; later, log it at `later`. True the first time. */
export function warnOnce(
  logger: Logger,
  fact: string,
  fields: Record<string, unknown>,
  msg: string,
  later: "debug" | "info" = "debug",
): boolean {
  let facts = said.get(logger);
  if (!facts) said.set(logger, (facts = new Set()));
  const first = !facts.has(fact);
  facts.add(fact);
  if (first) logger.warn(fields, `${msg} (said once per process)`);
  else logger[later](fields, msg);
  return first;
}
