/** The audit trail: every command that touches the archive is a row in `runs` (who, when, what, outcome). */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { configFingerprint, type Config } from "../base/config.js";
import type { Window } from "../base/dates.js";
import { PACKAGE_VERSION } from "../base/paths.js";
import type { StateDb } from "./db.js";

/** Sortable, unique run ids: `20261124T120000Z-a1b2c3` for runs, `verify-20261124T…` for other commands. */
export function newRunId(command: string, d: Date = new Date()): string {
  const t = d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${command === "run" ? "" : `${command}-`}${t}-${randomBytes(3).toString("hex")}`;
}

/** Record the start of a command in the audit trail; returns its run id. */
export function startCommandRun(
  state: StateDb,
  config: Config,
  command: string,
  window: Partial<Window> | undefined,
  opts: { id?: string; mode?: string; dryRun?: boolean } = {},
): string {
  const id = opts.id ?? newRunId(command);
  state.startRun({
    id,
    command,
    mode: opts.mode ?? (window?.startDate || window?.endDate ? "window" : "all"),
    windowStart: window?.startDate ?? null,
    windowEnd: window?.endDate ?? null,
    dryRun: opts.dryRun ?? false,
    version: PACKAGE_VERSION,
    configFingerprint: configFingerprint(config),
    host: hostname(),
  });
  return id;
}
