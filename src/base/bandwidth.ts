/**
 * A bandwidth limit shared by every transfer of a run (rclone's --bwlimit): a rate in bytes per second, or a
 * timetable of rates by the local time of day (`"08:00,5M 19:00,off"`: 5 MiB/s from 08:00, no limit from 19:00,
 * and so on round the clock). Each chunk of media waits its turn (`take`) before it is passed on, so the sockets'
 * own back-pressure holds the network to the rate. Pure apart from the clock and the timers.
 */
import { Transform, pipeline, type Readable } from "node:stream";
import { parseSize } from "./units.js";

/** One entry of the timetable: from `minute` of the day (local time), `rate` bytes/s (null: no limit). */
export interface BwSlot {
  minute: number;
  rate: number | null;
}

/** `20M`, `off`, or a timetable `HH:MM,rate HH:MM,rate …`; null when it is none of them. */
export function parseBwLimit(text: string): BwSlot[] | null {
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "off") return [{ minute: 0, rate: null }];
  if (!t.includes(",")) {
    const rate = parseSize(t);
    return rate && rate > 0 ? [{ minute: 0, rate }] : null;
  }
  const slots: BwSlot[] = [];
  for (const entry of t.split(/\s+/)) {
    const m = /^([01]?\d|2[0-3]):([0-5]\d),(.+)$/.exec(entry);
    if (!m) return null;
    const rate = m[3]!.toLowerCase() === "off" ? null : parseSize(m[3]!);
    if (rate === 0 || (m[3]!.toLowerCase() !== "off" && rate === null)) return null;
    slots.push({ minute: Number(m[1]) * 60 + Number(m[2]), rate });
  }
  return slots.sort((a, b) => a.minute - b.minute);
}

/** The rate in force at `now` (local time): the last slot started today, else yesterday's last one. */
export function rateAt(slots: readonly BwSlot[], now: Date): number | null {
  const minute = now.getHours() * 60 + now.getMinutes();
  let current = slots[slots.length - 1]!;
  for (const s of slots) if (s.minute <= minute) current = s;
  return current.rate;
}

/** How much may go at once above the rate (a tenth of a second's worth, at least one 64 KiB chunk). */
const BURST_S = 0.1;

export class Bandwidth {
  /** When the bytes taken so far have all been paid for (ms since the epoch). */
  private paidUntil = 0;

  constructor(
    private readonly slots: readonly BwSlot[],
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether any slot limits the rate at all. */
  get limited(): boolean {
    return this.slots.some((s) => s.rate !== null);
  }

  /** Wait until `n` more bytes may pass. */
  take(n: number): Promise<void> {
    const rate = rateAt(this.slots, new Date(this.now()));
    if (rate === null) return Promise.resolve();
    const now = this.now();
    const burstMs = Math.max(BURST_S * 1000, (65_536 / rate) * 1000);
    this.paidUntil = Math.max(this.paidUntil, now - burstMs) + (n / rate) * 1000;
    const wait = this.paidUntil - burstMs - now;
    return wait > 0 ? new Promise((r) => setTimeout(r, wait)) : Promise.resolve();
  }

  /** `body`, each chunk passed on once the limit allows it; destroying either end destroys both. */
  throttle(body: Readable): Readable {
    if (!this.limited) return body;
    const gate = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.take(chunk.length).then(() => done(null, chunk), done);
      },
    });
    return pipeline(body, gate, () => {});
  }
}
