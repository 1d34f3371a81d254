/**
 * Which archived recordings an auditor's command (export, hold) works on: a window of recording days, call ids, a
 * phone number, a direction. Chosen from the state DB alone (the call as it was listed, or as its sidecar gave it
 * to reconcile), never by asking the source again.
 */
import { ConfigError } from "../base/config.js";
import type { Window } from "../base/dates.js";
import { isValidCallId } from "../base/keys.js";
import type { StateDb } from "../state/db.js";
import { archivedWithCall, type ArchivedRow } from "../state/scans.js";

export interface Selection {
  window: Partial<Window>;
  callIds: readonly string[];
  /** Digits (and a leading +) of a number the call was from or to. */
  phone: string | undefined;
  direction: "inbound" | "outbound" | undefined;
}

/** A phone number as compared: a leading + and the digits ("+1 (415) 555-0123" is "+14155550123"). */
export function normalizePhone(raw: string): string {
  const digits = raw.replace(/\D/g, "");
  return raw.trim().startsWith("+") ? `+${digits}` : digits;
}

/** Checks the filters a user typed; a usage error (exit 2) names what is wrong. */
export function selectionFrom(flags: {
  window: Partial<Window>;
  callId?: string[] | undefined;
  phone?: string | undefined;
  direction?: string | undefined;
}): Selection {
  const callIds = flags.callId ?? [];
  const bad = callIds.filter((id) => !isValidCallId(id));
  if (bad.length > 0) throw new ConfigError(`--call-id ${bad.join(", ").slice(0, 200)}: not a call_<uuid>`);
  const phone = flags.phone === undefined ? undefined : normalizePhone(flags.phone);
  if (phone !== undefined && phone.replace("+", "").length < 3)
    throw new ConfigError(`--phone ${flags.phone}: not a phone number`);
  const d = flags.direction;
  if (d !== undefined && d !== "inbound" && d !== "outbound")
    throw new ConfigError(`--direction ${d}: inbound or outbound`);
  return { window: flags.window, callIds, phone, direction: d };
}

/** What a selection is, in words (messages and the audit record). */
export function describeSelection(s: Selection): Record<string, unknown> {
  return {
    since: s.window.startDate ?? null,
    until: s.window.endDate ?? null,
    call_ids: s.callIds.length > 0 ? s.callIds : null,
    phone: s.phone ?? null,
    direction: s.direction ?? null,
  };
}

function callFields(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    return v && typeof v === "object" ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function matches(s: Selection, call: Record<string, unknown>): boolean {
  if (s.direction && call.call_direction !== s.direction) return false;
  if (s.phone) {
    const numbers = [call.phone_number, call.from_number, call.to_number]
      .filter((v): v is string => typeof v === "string")
      .map(normalizePhone);
    if (!numbers.includes(s.phone)) return false;
  }
  return true;
}

/** The archived recordings a selection names, in call-id order (a window: by day, then key), a page at a time. */
export function* selectArchived(state: StateDb, s: Selection): Generator<ArchivedRow> {
  const ids = new Set(s.callIds);
  for (const row of archivedWithCall(state, s.window)) {
    if (ids.size > 0 && !ids.has(row.call_id)) continue;
    const { call_json, ...archived } = row;
    if (matches(s, callFields(call_json))) yield archived;
  }
}
