/**
 * If a server ignores a header, the user hears it. With ARCHIVER_CHECKSUM_ALGORITHM=CRC32C or SHA256, S3 checks
 * the x-amz-checksum-* of each body it is sent and answers it back (PutObject, UploadPart). A server that answers
 * without it did not confirm it: Ceph RGW 16.2 accepts a wrong one and keeps none. The user is told once per process;
 * each write is then proven by its ETag against the MD5 of the bytes sent, or by reading it back (write-proof.ts).
 */
import type { Logger } from "pino";
import { warnOnce } from "../base/say-once.js";
import type { SinkSettings } from "./types.js";

/** The checksum fields of a PutObject or UploadPart answer. */
export interface ChecksumAnswer {
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
}

export class ChecksumEcho {
  constructor(
    private readonly alg: SinkSettings["checksum"],
    private readonly logger: Logger,
  ) {}

  /** Warn (once) when `what` ("PutObject key") was sent an SDK checksum that its answer does not carry back. */
  check(what: string, out: ChecksumAnswer): void {
    const echoed =
      this.alg === "CRC32C" ? out.checksumCRC32C : this.alg === "SHA256" ? out.checksumSHA256 : "n/a";
    if (echoed) return;
    const header = `x-amz-checksum-${this.alg!.toLowerCase()}`;
    warnOnce(
      this.logger,
      `checksum-not-echoed:${header}`,
      { what, checksum: this.alg },
      `ARCHIVER_CHECKSUM_ALGORITHM=${this.alg}: the server answered ${what} without ${header}, so it did not confirm checking it (some S3-compatible servers accept any value and keep none). Each write is proven instead by its ETag against the MD5 of the bytes sent (or, where the ETag is no MD5, by reading the object back); the run summary's write_proof says which. Said once per process.`,
    );
  }
}

/** The two kinds of write whose answers may differ in what they prove. */
export type WriteKind = "PutObject" | "UploadPart";

/**
 * What this server's answers prove, learned once per run from the first answer of each kind and said once in the
 * log: a write whose answer echoes a checksum the server verified needs no MD5 of its bytes (write-proof.ts), so
 * once a kind's answers are known to echo one, its bodies are sent without computing it. An answer of that kind
 * without the echo later on is proven by reading the object back, and the MD5 is computed again from then on.
 */
export class ServerProof {
  private readonly echoes: Record<WriteKind, boolean | undefined> = {
    PutObject: undefined,
    UploadPart: undefined,
  };

  constructor(private readonly logger: Logger) {}

  learn(kind: WriteKind, proof: string): void {
    const echoed = proof === "checksum";
    if (this.echoes[kind] === undefined)
      this.logger.info(
        { write: kind, proof },
        echoed
          ? `write proof: ${kind} answers echo the checksum the server verified; that is each write's proof (no MD5 computed)`
          : `write proof: ${kind} answers echo no verified checksum; each write is proven by ${proof === "etag" ? "its ETag against the MD5 of the bytes sent" : "reading the object back"}`,
      );
    if (this.echoes[kind] !== false) this.echoes[kind] = echoed;
  }

  /** Whether bodies of this kind need their MD5 computed (nothing else is known to prove them). */
  needsMd5(kind: WriteKind): boolean {
    return this.echoes[kind] !== true;
  }
}
