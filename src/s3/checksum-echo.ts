/**
 * If a server ignores a header, the user hears it. With ARCHIVER_CHECKSUM_ALGORITHM=CRC32C or SHA256, S3 checks
 * the x-amz-checksum-* of each body it is sent and answers it back (PutObject, UploadPart). A server that answers
 * without it did not confirm it: Ceph RGW 16.2 accepts a wrong one and keeps none. The user is told once per run;
 * each write is then proven by its ETag against the MD5 of the bytes sent, or by reading it back (write-proof.ts).
 */
import type { Logger } from "pino";
import type { SinkSettings } from "./types.js";

/** The checksum fields of a PutObject or UploadPart answer. */
export interface ChecksumAnswer {
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
}

export class ChecksumEcho {
  private warned = false;

  constructor(
    private readonly alg: SinkSettings["checksum"],
    private readonly logger: Logger,
  ) {}

  /** Warn (once) when `what` ("PutObject key") was sent an SDK checksum that its answer does not carry back. */
  check(what: string, out: ChecksumAnswer): void {
    if (this.warned) return;
    const echoed =
      this.alg === "CRC32C" ? out.checksumCRC32C : this.alg === "SHA256" ? out.checksumSHA256 : "n/a";
    if (echoed) return;
    this.warned = true;
    const header = `x-amz-checksum-${this.alg!.toLowerCase()}`;
    this.logger.warn(
      { what, checksum: this.alg },
      `ARCHIVER_CHECKSUM_ALGORITHM=${this.alg}: the server answered ${what} without ${header}, so it did not confirm checking it (some S3-compatible servers accept any value and keep none). Each write is proven instead by its ETag against the MD5 of the bytes sent (or, where the ETag is no MD5, by reading the object back); the run summary's write_proof says which. Logged once per run.`,
    );
  }
}
