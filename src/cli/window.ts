/** `--since/--until`, parsed and checked once into the window every command's options are built from. */
import { ConfigError } from "../base/config.js";
import { formatDay, parseDay, type Window } from "../base/dates.js";

export interface WindowFlags {
  since?: string;
  until?: string;
}

/** Inclusive UTC days; an absent end is open (for `run`: today). Both absent: no window was asked for. */
export type DayWindow = Partial<Window>;

/**
 * The window the flags name; a usage error (exit 2) for a date that is not one or a start after the end.
 * `openEndIsToday`: a start without an end runs to today, so a start after today is an error too (`run`).
 */
export function windowFrom(flags: WindowFlags, opts: { openEndIsToday?: boolean } = {}): DayWindow {
  try {
    const w: DayWindow = {};
    if (flags.since !== undefined) w.startDate = parseDay(flags.since, "--since");
    if (flags.until !== undefined) w.endDate = parseDay(flags.until, "--until");
    const end = w.endDate ?? (opts.openEndIsToday ? formatDay(new Date()) : undefined);
    if (w.startDate && end && w.startDate > end)
      throw new Error(`--since ${w.startDate} is after --until ${end}`);
    return w;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
