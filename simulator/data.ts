/**
 * Deterministic fake data for the Envoy simulator: calls, recording metadata, and media bytes generated on the
 * fly (never held whole in memory), all derived from a seed so tests can recompute what the archive must hold.
 */
import { createHash } from "node:crypto";

export interface GenerateOptions {
  count: number;
  seed?: number;
  /** Calls are spread over the N days before `now`. */
  days?: number;
  now?: Date;
  /** Fixed media size, a range, or one size per call (call i gets `sizeBytes[i % length]`). Default 20 KB..400 KB. */
  sizeBytes?: number | { min: number; max: number } | readonly number[];
  notReadyEvery?: number;
  noRecordingEvery?: number;
  videoEvery?: number;
  nullSizeEvery?: number;
  organizationId?: string;
}

export interface SimRecording {
  hasRecording: boolean;
  ready: boolean;
  content_type: "audio/mp4" | "video/mp4";
  size: number;
  /** Reported as file_size_bytes (null for some calls, to exercise the Content-Length-only path). */
  reportedSize: number | null;
  duration_seconds: number;
  recording_start_time: string | null;
  /** Seed of the media bytes. */
  mediaSeed: number;
}

export interface SimCall {
  id: string;
  status: string;
  call_time: string;
  created_at: string;
  updated_at: string;
  call_direction: "inbound" | "outbound";
  phone_number: string;
  to_number: string;
  from_number: string;
  call_start_time: string;
  call_end_time: string;
  call_type: string;
  load_id: string | null;
  organization_id: string;
  created_by_id: string | null;
  recording_status: string;
  load_number: string | null;
  recording: SimRecording;
}

/** xorshift32: tiny, fast, deterministic. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function uuid(next: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${"89ab"[Math.floor(next() * 4)]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

const isSizeList = (spec: GenerateOptions["sizeBytes"]): spec is readonly number[] => Array.isArray(spec);

/** Call i's media size: fixed, drawn from a range (one draw of `next`), or from a per-call list (cycled). */
function sizeOf(spec: GenerateOptions["sizeBytes"], i: number, next: () => number): number {
  if (typeof spec === "number") return spec;
  if (isSizeList(spec)) {
    const size = spec[i % spec.length];
    if (size === undefined || !Number.isSafeInteger(size) || size < 0)
      throw new Error(`sizeBytes[${i % spec.length}] is not a byte count: ${String(size)}`);
    return size;
  }
  const min = spec?.min ?? 20_000;
  const max = spec?.max ?? 400_000;
  return Math.floor(min + next() * (max - min));
}

/** Generate calls `from`..`from+count-1` of the sequence defined by the options (so more can be added later). */
export function generateCalls(opts: GenerateOptions, from = 0): SimCall[] {
  const seed = opts.seed ?? 1;
  const days = opts.days ?? 30;
  const now = (opts.now ?? new Date()).getTime();
  const org = opts.organizationId ?? "org_00000000-0000-4000-8000-00000000e1a7";
  const out: SimCall[] = [];
  for (let i = from; i < from + opts.count; i++) {
    const next = rng(seed * 1_000_003 + i * 7919 + 1);
    const n = i + 1;
    const every = (k: number | undefined) => k !== undefined && k > 0 && n % k === 0;
    // Newer calls get later times: call i is placed i/count of the way through the period, jittered.
    const callMs =
      now - days * 86_400_000 + ((i + next()) / Math.max(opts.count + from, 1)) * days * 86_400_000 * 0.999;
    const durationS = 20 + Math.floor(next() * 900);
    const size = sizeOf(opts.sizeBytes, i, next);
    const video = every(opts.videoEvery);
    const hasRecording = !every(opts.noRecordingEvery);
    const ready = hasRecording && !every(opts.notReadyEvery);
    const phone = () => `+1${Math.floor(2_000_000_000 + next() * 7_999_999_999)}`;
    const from_number = phone();
    const to_number = phone();
    const inbound = next() < 0.5;
    out.push({
      id: `call_${uuid(next)}`,
      status: "completed",
      call_time: iso(callMs),
      created_at: iso(callMs),
      updated_at: iso(callMs + durationS * 1000 + 5000),
      call_direction: inbound ? "inbound" : "outbound",
      phone_number: inbound ? from_number : to_number,
      to_number,
      from_number,
      call_start_time: iso(callMs),
      call_end_time: iso(callMs + durationS * 1000),
      call_type: video ? "video" : "voice",
      load_id: n % 3 === 0 ? `load_${uuid(next)}` : null,
      organization_id: org,
      created_by_id: n % 4 === 0 ? null : `user_${uuid(next)}`,
      recording_status: !hasRecording ? "NONE" : ready ? "AVAILABLE" : "PROCESSING",
      load_number: n % 3 === 0 ? `LD-${100000 + i}` : null,
      recording: {
        hasRecording,
        ready,
        content_type: video ? "video/mp4" : "audio/mp4",
        size,
        reportedSize: every(opts.nullSizeEvery) ? null : size,
        duration_seconds: durationS,
        recording_start_time: n % 7 === 0 ? null : iso(callMs + 2000),
        mediaSeed: (seed * 2_654_435_761 + i * 40503 + 17) >>> 0,
      },
    });
  }
  return out;
}

/** Media is a 64 KiB per-recording block, stamped with the block number so no two blocks are alike. */
const BLOCK = 64 * 1024;
const baseBlocks = new Map<number, Buffer>();

function baseBlock(seed: number): Buffer {
  let b = baseBlocks.get(seed);
  if (!b) {
    b = Buffer.allocUnsafe(BLOCK);
    let x = seed || 1;
    for (let i = 0; i < BLOCK; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeInt32LE(x | 0, i);
    }
    if (baseBlocks.size > 256) baseBlocks.clear();
    baseBlocks.set(seed, b);
  }
  return b;
}

/** Every recording starts like the MP4 file it claims to be: an `ftyp` box (the archiver checks). */
const FTYP = Buffer.from("00000018667479704d344120000000004d34412069736f6d", "hex");

function block(seed: number, index: number): Buffer {
  const b = Buffer.from(baseBlock(seed));
  for (let off = 0; off < BLOCK; off += 4096) b.writeUInt32LE((index * 2_654_435_761 + off) >>> 0, off);
  if (index === 0) FTYP.copy(b, 0);
  return b;
}

/** Bytes [start, end) of a recording's media, in chunks of at most 64 KiB. */
export function* mediaChunks(
  rec: Pick<SimRecording, "mediaSeed" | "size">,
  start = 0,
  end = rec.size,
): Generator<Buffer> {
  let pos = start;
  while (pos < end) {
    const index = Math.floor(pos / BLOCK);
    const b = block(rec.mediaSeed, index);
    const from = pos - index * BLOCK;
    const to = Math.min(BLOCK, end - index * BLOCK);
    yield b.subarray(from, to);
    pos += to - from;
  }
}

/** The SHA-256 an archived copy of this call's recording must have. */
export async function expectedSha256(call: Pick<SimCall, "recording">): Promise<string> {
  const h = createHash("sha256");
  for (const c of mediaChunks(call.recording)) h.update(c);
  return h.digest("hex");
}
