/**
 * What the store answers and the state DB records, as one shape for both: a stored part of a multipart upload,
 * and what the bucket showed of a stored object. Kept here (below both layers) so that neither imports the other.
 */

/** A part of a multipart upload as S3 confirmed it, and where it sits in the recording. */
export interface StoredPart {
  partNumber: number;
  /** Byte range [start, end) of the recording. */
  start: number;
  end: number;
  etag: string;
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
  /** SHA-256 of the recording's bytes [0, end): checked when the prefix is re-read to resume. */
  prefixSha256: string;
}

/** One stored object as the bucket showed it after it was written (read back, never what was asked). */
export interface StoredEvidence {
  etag: string | null;
  versionId: string | null;
  /** Retention as read back; null when it has none, or when nothing was read. */
  lockMode: string | null;
  retainUntil: string | null;
  legalHold: boolean;
  /** Tags as read back (x-amz-tagging form); null when no tags were asked. */
  tags: string | null;
}
