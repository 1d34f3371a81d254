/**
 * Request bodies under construction: a recording's bytes between the source and S3 (a whole small recording for
 * its single PUT, or one part of a large one). Kept in memory up to SPILL_BYTES, then spilled to a file in the
 * spool directory, so memory per transfer stays bounded whatever the part size and however many transfers run:
 * the page cache holds the bytes, not the heap. Each attempt of a request reads the body again from the start.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ArchiverError } from "../base/errors.js";
import { mkdirPrivate, openPrivate } from "../base/private-fs.js";

/** Bodies up to this size stay in memory (most call recordings, and every sidecar). */
export const SPILL_BYTES = 1024 * 1024;

let counter = 0;

/**
 * Reused SPILL_BYTES buffers for bodies that stay in memory. Copying the received chunks into one (a memcpy)
 * lets the socket's buffers die young; held across a PUT they were promoted, and freed only by a full GC after
 * tens of MiB had piled up outside the heap — what a run of small recordings' peak RSS followed.
 */
const slabs: Buffer[] = [];
const MAX_POOLED_SLABS = 64;
const takeSlab = () => slabs.pop() ?? Buffer.allocUnsafeSlow(SPILL_BYTES);
const releaseSlab = (b: Buffer) => {
  if (slabs.length < MAX_POOLED_SLABS) slabs.push(b);
};

/**
 * A finished body: its length, the MD5 of its bytes (computed as they arrived: what proves the write, see
 * write-proof.ts; undefined when the server is known to prove the write by a checksum it echoes), and a fresh
 * stream of its bytes for every attempt.
 */
export interface SealedBody {
  readonly length: number;
  readonly md5Base64: string | undefined;
  /** The bytes as one Buffer (memory bodies only: SDK-computed checksums need it). */
  buffer(): Buffer;
  stream(): Readable;
  dispose(): Promise<void>;
}

export class SpillBuffer {
  length = 0;
  /** Memory bodies without a spool directory: the chunks as received (up to a whole part). */
  private chunks: Buffer[] = [];
  /** Memory bodies with a spool directory (≤ SPILL_BYTES): copied into a pooled slab. */
  private slab: Buffer | undefined;
  private file: { path: string; handle: FileHandle } | undefined;
  private readonly md5: Hash | undefined;

  /** `dir` undefined: always in memory. */
  constructor(
    private readonly dir: string | undefined,
    withMd5 = true,
  ) {
    this.md5 = withMd5 ? createHash("md5") : undefined;
  }

  /** Add a chunk; returns a promise only when the bytes go to disk. */
  append(chunk: Buffer): Promise<void> | undefined {
    this.md5?.update(chunk);
    const at = this.length;
    this.length += chunk.length;
    if (this.file) return writeAll(this.file.handle, [chunk], this.dir!);
    if (this.dir === undefined) {
      this.chunks.push(chunk);
      return undefined;
    }
    if (this.length <= SPILL_BYTES) {
      chunk.copy((this.slab ??= takeSlab()), at);
      return undefined;
    }
    const slab = this.slab;
    this.slab = undefined;
    return this.spill(slab ? [slab.subarray(0, at), chunk] : [chunk], slab);
  }

  private async spill(chunks: Buffer[], slab: Buffer | undefined): Promise<void> {
    const dir = this.dir!;
    const path = join(dir, `${process.pid}-${++counter}.body`);
    let handle: FileHandle;
    try {
      mkdirPrivate(dir);
      handle = await openPrivate(path, "w+");
    } catch (err) {
      throw spoolError(dir, err);
    }
    this.file = { path, handle };
    await writeAll(handle, chunks, dir);
    if (slab) releaseSlab(slab);
  }

  /** Finish the body. The buffer must not be appended to afterwards. */
  async seal(): Promise<SealedBody> {
    const md5Base64 = this.md5?.digest("base64");
    const length = this.length;
    if (!this.file && this.slab) {
      const slab = this.slab;
      this.slab = undefined;
      const bytes = slab.subarray(0, length);
      let released = false;
      return {
        length,
        md5Base64,
        buffer: () => bytes,
        stream: () => Readable.from([bytes], { objectMode: false }),
        dispose: () => {
          if (!released) releaseSlab(slab);
          released = true;
          return Promise.resolve();
        },
      };
    }
    if (!this.file) {
      const chunks = this.chunks;
      this.chunks = [];
      return {
        length,
        md5Base64,
        buffer: () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)),
        stream: () => Readable.from(chunks, { objectMode: false }),
        dispose: async () => {},
      };
    }
    const { path, handle } = this.file;
    this.file = undefined;
    await handle.close();
    return {
      length,
      md5Base64,
      buffer: () => {
        throw new Error("a spilled body has no buffer");
      },
      stream: () => createReadStream(path, { highWaterMark: 256 * 1024 }),
      dispose: () => rm(path, { force: true }),
    };
  }

  /** Drop the bytes (a failed attempt, an aborted transfer). Never throws. */
  async discard(): Promise<void> {
    this.chunks = [];
    if (this.slab) releaseSlab(this.slab);
    this.slab = undefined;
    const file = this.file;
    this.file = undefined;
    if (!file) return;
    await file.handle.close().catch(() => {});
    await rm(file.path, { force: true }).catch(() => {});
  }
}

/** Remove what a run that died left in the spool directory (the caller holds the state DB's lock). */
export async function clearSpool(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.endsWith(".body")).map((n) => rm(join(dir, n), { force: true })));
}

async function writeAll(handle: FileHandle, chunks: Buffer[], dir: string): Promise<void> {
  try {
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.length) off += (await handle.write(chunk, off)).bytesWritten;
    }
  } catch (err) {
    throw spoolError(dir, err);
  }
}

function spoolError(dir: string, err: unknown): ArchiverError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  return new ArchiverError(
    "fatal",
    "spool_failed",
    `cannot write to the spool directory ${dir} (${code}): point ARCHIVER_SPOOL_DIR at a writable directory with room for ARCHIVER_CONCURRENCY × ARCHIVER_PART_SIZE_MB × (ARCHIVER_PART_QUEUE + 1) MiB, or set it to "memory"`,
    { cause: err },
  );
}
