/**
 * A media body as the source sends it, read under limits: never more bytes than the recording may have (the
 * byte budget), never slower than a minimum rate after a grace period, never past the URL's expiry, never an
 * empty body, and, for MP4 containers, never a body that does not start like one. Whatever trips first ends the
 * read at once (the connection is dropped) with an error that says what happened.
 */
import type { Readable } from "node:stream";
import { ArchiverError } from "../base/errors.js";

export interface BodyLimits {
  /** Where in the recording the body starts (a resumed transfer), after `skip` discarded bytes. */
  offset: number;
  /** Leading bytes the server sent that lie before `offset` (it ignored Range). */
  skip: number;
  /** The recording's size as promised (file_size_bytes); null when unknown. */
  expectedBytes: number | null;
  /** The size the server announced (Content-Length or Content-Range total), when it did. */
  declaredBytes?: number | null;
  /** With no expected size: the most the recording may have, and the setting that says so. */
  maxBytes: number;
  maxBytesSetting: string;
  /** The rate floor: bytes/s required after `graceMs` (0: none). */
  minBytesPerSec: number;
  graceMs: number;
  /** Epoch ms after which the URL is no longer good; reading stops there (retryable, so it is refreshed). */
  expiresAt: number | null;
  /** The body must start with an MP4 box (only checked when it starts at byte 0 of the recording). */
  checkMp4: boolean;
  now?: () => number;
}

/** Box types an MP4/ISO-BMFF/QuickTime file starts with (`ftyp` in every modern one). */
const MP4_FIRST_BOXES = new Set(["ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "pnot"]);
/** Node refuses timers beyond ~24.8 days: longer deadlines are simply not armed (they never come first). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function looksLikeMp4(head: Buffer): boolean {
  return head.length >= 8 && MP4_FIRST_BOXES.has(head.toString("latin1", 4, 8));
}

export function guardBody(source: Readable, limits: BodyLimits): Readable {
  const watch = new BodyWatch(limits, (err) => source.destroy(err));
  watch.arm();
  checkWhileRead(source, watch);
  source.once("close", () => watch.release());
  return source;
}

/** One guarded read: what it has seen so far, and the deadlines that stop it. */
class BodyWatch {
  private readonly now: () => number;
  private readonly t0: number;
  private readonly budget: number;
  /** Bytes read from the socket (skipped ones included: they cost the same) and the recording position. */
  private received = 0;
  private position: number;
  /** The first 8 bytes of the recording while they are being gathered (only when they are to be checked). */
  private head: Buffer | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /**
   * Announced beyond ARCHIVER_MAX_BODY_MB (no file_size_bytes): not a byte of it is worth reading. (One that
   * disagrees with file_size_bytes is the sink's size mismatch, retried before it is final.)
   */
  readonly refused: ArchiverError | undefined;

  constructor(
    private readonly limits: BodyLimits,
    private readonly stop: (err: ArchiverError) => void,
  ) {
    this.now = limits.now ?? Date.now;
    this.t0 = this.now();
    this.budget = limits.expectedBytes ?? limits.maxBytes;
    this.position = limits.offset;
    this.head = limits.checkMp4 && limits.offset === 0 ? Buffer.alloc(0) : undefined;
    this.refused =
      limits.expectedBytes === null && limits.declaredBytes != null && limits.declaredBytes > this.budget
        ? tooLarge(limits, limits.declaredBytes, "announces")
        : undefined;
  }

  /** Arm the rate floor and the URL's expiry. */
  arm(): void {
    if (this.limits.minBytesPerSec > 0) this.armFloor();
    this.armExpiry();
  }

  /** One chunk from the socket: counted, checked against the budget, and (at byte 0) against the MP4 header. */
  check(chunk: Buffer): void {
    this.received += chunk.length;
    const beyondSkip = Math.max(0, this.received - this.limits.skip);
    this.position = this.limits.offset + beyondSkip;
    if (this.position > this.budget) throw tooLarge(this.limits, this.position, "read");
    if (this.head !== undefined && beyondSkip > 0) {
      const fresh = chunk.subarray(Math.max(0, chunk.length - beyondSkip));
      this.head = Buffer.concat([this.head, fresh.subarray(0, 8 - this.head.length)]);
      if (this.head.length >= 8) {
        if (!looksLikeMp4(this.head)) throw notMp4(this.head);
        this.head = undefined;
      }
    }
  }

  /** The body ended: it must have held something, and enough to tell an MP4 by. */
  ended(): void {
    if (this.limits.offset === 0 && this.position === 0)
      throw new ArchiverError(
        "retryable",
        "empty_body",
        "media answered 200 with an empty body (no bytes before its end): not a recording",
      );
    if (this.head !== undefined) throw notMp4(this.head);
  }

  /** No timer outlives the read. */
  release(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private seconds(): number {
    return Math.round((this.now() - this.t0) / 1000);
  }

  /** The rate floor: at time t, at least minRate × (t − grace) bytes. Re-armed when it fires and bytes came. */
  private armFloor(): void {
    const dueAt = () => this.t0 + this.limits.graceMs + (this.received / this.limits.minBytesPerSec) * 1000;
    const due = dueAt() - this.now();
    if (due > MAX_TIMER_MS) return;
    const t = setTimeout(
      () => {
        if (dueAt() <= this.now()) this.stop(this.stalled());
        else this.armFloor();
      },
      Math.max(0, due),
    );
    // Never what keeps the process alive: the socket being read does that while it matters.
    this.timers.push(t.unref());
  }

  private stalled(): ArchiverError {
    const { expectedBytes, minBytesPerSec, graceMs } = this.limits;
    return new ArchiverError(
      "retryable",
      "stalled",
      `stalled: ${this.position} of ${expectedBytes ?? "unknown"} bytes in ${this.seconds()} s (below ${Math.round(minBytesPerSec / 1024)} KiB/s after ${Math.round(graceMs / 1000)} s)`,
    );
  }

  /** Reading stops at the URL's expiry (retryable: it continues with a fresh URL). */
  private armExpiry(): void {
    const { expiresAt } = this.limits;
    if (expiresAt === null || expiresAt - this.now() > MAX_TIMER_MS) return;
    const expired = () =>
      this.stop(
        new ArchiverError(
          "retryable",
          "url_expired",
          `the media URL expired at byte ${this.position} of ${this.limits.expectedBytes ?? "unknown"} (after ${this.seconds()} s): continuing with a fresh one`,
        ),
      );
    this.timers.push(setTimeout(expired, Math.max(0, expiresAt - this.now())).unref());
  }
}

/**
 * The checks run inside the body's own iterator, on the same stream: no second stream, no extra buffering or
 * copying of the bytes. Closed in any way (read to the end, destroyed by its reader or by a limit): no timer left.
 */
function checkWhileRead(source: Readable, watch: BodyWatch): void {
  const iterate = source[Symbol.asyncIterator].bind(source);
  Object.defineProperty(source, Symbol.asyncIterator, {
    configurable: true,
    value: (): AsyncIterableIterator<Buffer> => {
      const it = iterate();
      const fail = (err: unknown): never => {
        watch.release();
        source.destroy();
        throw err;
      };
      return {
        async next() {
          if (watch.refused) fail(watch.refused);
          try {
            const r = await it.next();
            if (r.done) {
              watch.release();
              watch.ended();
            } else watch.check(r.value as Buffer);
            return r as IteratorResult<Buffer>;
          } catch (err) {
            return fail(err);
          }
        },
        async return(value?: unknown) {
          watch.release();
          return ((await it.return?.(value)) ?? { done: true, value }) as IteratorResult<Buffer>;
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  });
}

function tooLarge(limits: BodyLimits, position: number, how: "read" | "announces"): ArchiverError {
  const promised =
    limits.expectedBytes !== null
      ? `file_size_bytes ${limits.expectedBytes}`
      : `${limits.maxBytesSetting} (${limits.maxBytes} bytes; no file_size_bytes given)`;
  return new ArchiverError(
    "permanent",
    "body_too_large",
    how === "read"
      ? `media body is larger than ${promised}: stopped reading at byte ${position}, nothing stored`
      : `media announces ${position} bytes, more than ${promised}: not read, nothing stored`,
  );
}

function notMp4(head: Buffer): ArchiverError {
  const shown = JSON.stringify(head.toString("latin1").replace(/[^\x20-\x7e]/g, "."));
  return new ArchiverError(
    "retryable",
    "not_media",
    `media does not start like an MP4 file (no ftyp box; first bytes ${shown}): not a recording (ARCHIVER_CHECK_MP4=false turns this check off)`,
  );
}
