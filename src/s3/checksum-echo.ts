/**
 * If a server ignores a header, the user hears it. With ARCHIVER_CHECKSUM_ALGORITHM=CRC32C or SHA256, S3 checks
 * the x-amz-checksum-* of each body it is sent and answers it back (PutObject, UploadPart). A server that answers
 * without it did not confirm it: Ceph RGW 16.2 accepts a wrong one and keeps none. The user is told once per process;
 * the bytes are still checked end to end with SHA-256, and Content-MD5 (MD5) is the checksum every S3 server checks.
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
      `ARCHIVER_CHECKSUM_ALGORITHM=${this.alg}: the server answered ${what} without ${header}, so it did not confirm checking it (some S3-compatible servers accept any value and keep none). Bytes are still verified end to end with SHA-256; ARCHIVER_CHECKSUM_ALGORITHM=MD5 (Content-MD5) is checked by every S3 server.`,
    );
  }
}
