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
  const now = limits.now ?? Date.now;
  const t0 = now();
  const budget = limits.expectedBytes ?? limits.maxBytes;
  /** Bytes read from the socket (skipped ones included: they cost the same) and the recording position. */
  let received = 0;
  let position = limits.offset;
  let head: Buffer | undefined = limits.checkMp4 && limits.offset === 0 ? Buffer.alloc(0) : undefined;
  const timers: NodeJS.Timeout[] = [];
  const stop = (err: ArchiverError) => source.destroy(err);
  const seconds = () => Math.round((now() - t0) / 1000);

  const stalled = () =>
    new ArchiverError(
      "retryable",
      "stalled",
      `stalled: ${position} of ${limits.expectedBytes ?? "unknown"} bytes in ${seconds()} s (below ${Math.round(limits.minBytesPerSec / 1024)} KiB/s after ${Math.round(limits.graceMs / 1000)} s)`,
    );
  /** The rate floor: at time t, at least minRate × (t − grace) bytes. Re-armed when it fires and bytes came. */
  const armFloor = () => {
    const due = t0 + limits.graceMs + (received / limits.minBytesPerSec) * 1000 - now();
    if (due > MAX_TIMER_MS) return;
    const t = setTimeout(
      () => {
        const behind = t0 + limits.graceMs + (received / limits.minBytesPerSec) * 1000 <= now();
        if (behind) stop(stalled());
        else armFloor();
      },
      Math.max(0, due),
    );
    // Never what keeps the process alive: the socket being read does that while it matters.
    timers.push(t.unref());
  };
  if (limits.minBytesPerSec > 0) armFloor();
  if (limits.expiresAt !== null && limits.expiresAt - now() <= MAX_TIMER_MS)
    timers.push(
      setTimeout(
        () =>
          stop(
            new ArchiverError(
              "retryable",
              "url_expired",
              `the media URL expired at byte ${position} of ${limits.expectedBytes ?? "unknown"} (after ${seconds()} s): continuing with a fresh one`,
            ),
          ),
        Math.max(0, limits.expiresAt - now()),
      ).unref(),
    );

  /** One chunk from the socket: counted, checked against the budget, and (at byte 0) against the MP4 header. */
  const check = (chunk: Buffer) => {
    received += chunk.length;
    const beyondSkip = Math.max(0, received - limits.skip);
    position = limits.offset + beyondSkip;
    if (position > budget) throw tooLarge(limits, position, "read");
    if (head !== undefined && beyondSkip > 0) {
      const fresh = chunk.subarray(Math.max(0, chunk.length - beyondSkip));
      head = Buffer.concat([head, fresh.subarray(0, 8 - head.length)]);
      if (head.length >= 8) {
        if (!looksLikeMp4(head)) throw notMp4(head);
        head = undefined;
      }
    }
  };
  /** The body ended: it must have held something, and enough to tell an MP4 by. */
  const ended = () => {
    if (limits.offset === 0 && position === 0)
      throw new ArchiverError(
        "retryable",
        "empty_body",
        "media answered 200 with an empty body (no bytes before its end): not a recording",
      );
    if (head !== undefined) throw notMp4(head);
  };
  const release = () => {
    for (const t of timers) clearTimeout(t);
    timers.length = 0;
  };
  // Announced beyond ARCHIVER_MAX_BODY_MB (no file_size_bytes): not a byte of it is worth reading. (One that
  // disagrees with file_size_bytes is the sink's size mismatch, retried before it is final.)
  const refused =
    limits.expectedBytes === null && limits.declaredBytes != null && limits.declaredBytes > budget
      ? tooLarge(limits, limits.declaredBytes, "announces")
      : undefined;

  // The checks run inside the body's own iterator, on the same stream: no second stream, no extra buffering or
  // copying of the bytes. Closed in any way (read to the end, destroyed by its reader or by a limit): no timer left.
  const iterate = source[Symbol.asyncIterator].bind(source);
  Object.defineProperty(source, Symbol.asyncIterator, {
    configurable: true,
    value: (): AsyncIterableIterator<Buffer> => {
      const it = iterate();
      const fail = (err: unknown): never => {
        release();
        source.destroy();
        throw err;
      };
      return {
        async next() {
          if (refused) fail(refused);
          try {
            const r = await it.next();
            if (r.done) {
              release();
              ended();
            } else check(r.value as Buffer);
            return r as IteratorResult<Buffer>;
          } catch (err) {
            return fail(err);
          }
        },
        async return(value?: unknown) {
          release();
          return ((await it.return?.(value)) ?? { done: true, value }) as IteratorResult<Buffer>;
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  });
  source.once("close", release);
  return source;
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
