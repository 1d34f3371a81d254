/**
 * Clocks that are not ours. A machine whose clock is off (a VM after suspend, a container without NTP) signs S3
 * requests with the wrong time — S3 and Ceph refuse a request more than 15 minutes off — and misjudges when a
 * media URL expires. The fix is the same for both servers: learn their time from the `Date` header of their
 * answers and use it. S3: the AWS SDK learns it (`systemClockOffset`; s3/sdk-client.ts). The Envoy API: a
 * `ServerClock` fed by every answer. What an S3 error says about the clock is judged here (clockSkewFailure).
 */

/** The AWS SDK's threshold: a request signed this far off the server's time may be refused for it. */
export const SKEW_THRESHOLD_MS = 240_000;

/** A Date header has one-second resolution: offsets below this are noise, not a wrong clock. */
const NOISE_MS = 2_000;

/** server time − local time (ms) from a Date header received at `receivedAt`; undefined when absent or bad. */
export function offsetFrom(date: string | undefined, receivedAt: number = Date.now()): number | undefined {
  if (!date) return undefined;
  const server = Date.parse(date);
  return Number.isNaN(server) ? undefined : server - receivedAt;
}

/**
 * "20 min ahead of", "3 min 4 s behind", "in step with": how this machine's clock stands against a server's. A
 * Date header is good to the second, so from 10 minutes on the offset is given to the minute.
 */
export function describeOffset(serverMinusLocalMs: number): string {
  const secs = Math.abs(serverMinusLocalMs) / 1000;
  const abs = secs >= 600 ? Math.round(secs / 60) * 60 : Math.round(secs);
  if (abs === 0) return "in step with";
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  const text = [h ? `${h} h` : "", m ? `${m} min` : "", s ? `${s} s` : ""].filter(Boolean).join(" ");
  // The server is ahead of us: our clock is behind it.
  return `${text} ${serverMinusLocalMs > 0 ? "behind" : "ahead of"}`;
}

/** An offset worth telling the operator about (and moving by this much is worth telling again). */
const NOTABLE_MS = 60_000;

/** A server's time as learned from the Date headers of its answers (cached answers, with Age, are ignored). */
export class ServerClock {
  offsetMs = 0;
  private told = 0;

  /** `onNotable`: the offset reached a minute or more (or moved by as much since last told). */
  constructor(private readonly onNotable?: (offsetMs: number) => void) {}

  observe(date: string | undefined, age?: string | undefined): void {
    if (age !== undefined) return;
    const offset = offsetFrom(date);
    if (offset === undefined) return;
    this.offsetMs = Math.abs(offset) < NOISE_MS ? 0 : offset;
    if (Math.abs(this.offsetMs - this.told) >= NOTABLE_MS) {
      this.told = this.offsetMs;
      this.onNotable?.(this.offsetMs);
    }
  }

  /** The server's time now, in ms since the epoch. */
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

/** What an S3 error says about the clock, for errors.ts. */
interface SkewEvidence {
  name: string;
  status: number | undefined;
  clockSkewCorrected?: boolean | undefined;
  /** The error response's Date header. */
  date: string | undefined;
}

const SKEW_CODES = new Set(["RequestTimeTooSkewed", "RequestExpired"]);
/** Error names of answers without an error document (HEAD requests have no body). */
const NO_CODE = new Set(["Unknown", "UnknownError", "Forbidden", "403"]);

/**
 * A clock-related S3 failure: retryable when the offset has just been corrected (the next attempt signs with the
 * server's time), fatal with the measured offset when correcting it did not help or it cannot be measured.
 * Undefined when the error is not about the clock.
 */
export function clockSkewFailure(
  e: SkewEvidence,
): { kind: "retryable" | "fatal"; code: string; message: string } | undefined {
  const offset = offsetFrom(e.date);
  const against =
    offset === undefined ? undefined : `this machine's clock is ${describeOffset(offset)} the S3 server's`;
  if (e.clockSkewCorrected)
    return {
      kind: "retryable",
      code: "clock_skew_corrected",
      message: `S3 refused a request signed with this machine's clock (${e.name}, HTTP ${e.status}): ${against ?? "its clock is off"}, so requests are now signed with the server's time (learned from its Date header)`,
    };
  if (SKEW_CODES.has(e.name))
    return {
      kind: "fatal",
      code: "clock_skew",
      message: against
        ? `S3 refused the request time (${e.name}): ${against} (from its Date header), and signing with the server's time did not help. Fix this machine's clock (NTP).`
        : `S3 refused the request time (${e.name}) and sent no usable Date header, so this machine's clock offset cannot be measured or corrected. Fix this machine's clock (NTP).`,
    };
  if (
    e.status === 403 &&
    NO_CODE.has(e.name) &&
    offset !== undefined &&
    Math.abs(offset) >= SKEW_THRESHOLD_MS
  )
    return {
      kind: "fatal",
      code: "clock_skew",
      message: `S3 answered HTTP 403 without an error code, and ${against} (from its Date header). A clock that far off makes S3 refuse requests; signing with the server's time did not help. Fix this machine's clock (NTP); if it is right, check that the credentials may use the bucket.`,
    };
  return undefined;
}
