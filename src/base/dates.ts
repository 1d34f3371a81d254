/** Date windows for GET /calls (start_date/end_date: YYYY-MM-DD, UTC, inclusive). Pure. */

export interface Window {
  /** Absent: from the beginning. */
  startDate?: string;
  endDate: string;
}

export function formatDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** Strict YYYY-MM-DD that is a real calendar date. */
export function parseDay(s: string, flag = "date"): string {
  const v = s.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const d = new Date(`${v}T00:00:00Z`);
    if (!Number.isNaN(d.getTime()) && formatDay(d) === v) return v;
  }
  throw new Error(`${flag} must be a date like 2026-01-31 (UTC), got "${s}"`);
}

export function addDays(day: string, n: number): string {
  const d = new Date(`${parseDay(day)}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return formatDay(d);
}

export function dayOf(iso: string): string | null {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : formatDay(new Date(ms));
}

export function backfillWindow(since: string | undefined, until: string | undefined, now: Date): Window {
  const endDate = until === undefined ? formatDay(now) : parseDay(until, "--until");
  if (since === undefined) return { endDate };
  const startDate = parseDay(since, "--since");
  if (startDate > endDate) throw new Error(`--since ${startDate} is after --until ${endDate}`);
  return { startDate, endDate };
}

/** From the watermark's day minus the overlap to today; everything when there is no watermark yet. */
export function incrementalWindow(watermark: string | null, overlapDays: number, now: Date): Window {
  const endDate = formatDay(now);
  const day = watermark ? dayOf(watermark) : null;
  if (!day) return { endDate };
  const startDate = addDays(day, -overlapDays);
  return { startDate: startDate > endDate ? endDate : startDate, endDate };
}

export function inWindow(day: string, w: Window): boolean {
  return (w.startDate === undefined || day >= w.startDate) && day <= w.endDate;
}
