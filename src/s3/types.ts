/** The store's own types: what a transfer is asked to do and what it answers, and how objects are written. */
import type { StorageClass } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import type { StoredPart } from "../base/stored.js";

/** Extra object parameters applied to every object written (encryption, storage class, lock, tags). */
export type ObjectParams = Partial<{
  ServerSideEncryption: "AES256" | "aws:kms";
  SSEKMSKeyId: string;
  StorageClass: StorageClass;
  ObjectLockMode: "GOVERNANCE" | "COMPLIANCE";
  ObjectLockRetainUntilDate: Date;
  ObjectLockLegalHoldStatus: "ON" | "OFF";
  Tagging: string;
}>;

/** An object (or one of its versions) as a HEAD shows it. */
export interface ObjectHead {
  size: number;
  etag: string | null;
  versionId: string | null;
  lastModified: Date | undefined;
  /** User metadata (x-amz-meta-*), names lower-case. */
  metadata: Record<string, string>;
  lockMode: string | undefined;
  retainUntil: Date | undefined;
  legalHold: boolean;
  /** x-amz-tagging-count: undefined when the server did not say. */
  tagCount: number | undefined;
}

export interface SinkSettings {
  bucket: string;
  partSize: number;
  queueSize: number;
  /** Integrity checksum sent with every body (required by S3 for Object Lock uploads). */
  checksum?: "NONE" | "MD5" | "CRC32C" | "SHA256";
  /** Where bodies above 1 MiB wait for their request (spool.ts); undefined keeps them in memory. */
  spoolDir?: string | undefined;
}

/** A source opened at a byte offset: the store's own view of it (the jobs hand it the Envoy media). */
export interface SourceStream {
  body: Readable;
  /** Bytes at the start of `body` to discard (the server ignored Range and sent the object from byte 0). */
  skip: number;
  /** Total size, when the source said. */
  totalBytes: number | null;
}

export type { StoredPart } from "../base/stored.js";

/** A multipart upload that a stopped or killed run left, with the parts it recorded. */
export interface ResumableUpload {
  uploadId: string;
  key: string;
  fingerprint: string | null;
  parts: StoredPart[];
}

export interface TransferInput {
  key: string;
  contentType: string;
  /** User metadata except sha256, which the store adds to a single PUT once it is known. */
  metadata: Record<string, string>;
  objectParams: ObjectParams;
  /** Open the source at a byte offset (resuming after a reset or a refreshed URL). */
  open: (offset: number) => Promise<SourceStream>;
  /** The size the source promised (file_size_bytes), checked against what arrives. */
  expectedBytes: number | null;
  signal?: AbortSignal | undefined;
  /** Progress: bytes received from the source. */
  onBytes?: (n: number) => void;
  /** A multipart upload was created / finished (completed or aborted): the state DB tracks the ones open. */
  onUploadStarted?: (uploadId: string, fingerprint: string) => void;
  onUploadEnded?: (uploadId: string) => void;
  /** A part was stored: recorded so that the upload can be resumed after it. */
  onPartStored?: (uploadId: string, part: StoredPart) => void;
  /**
   * An upload a stopped or killed run left for this key: if its completion landed, the recording is that object
   * (`completedEarlier`, `onUploadEnded` called); otherwise continued after its last stored part.
   */
  resume?: ResumableUpload | undefined;
  /**
   * "Already in S3?", decided before anything is written (already-stored.ts). Undefined: not asked (the caller
   * writes a key it knows to be new). false: recordings that need a multipart upload are looked for (a
   * recording that fits one PUT is checked by the PUT itself, If-None-Match). true: every recording is looked for
   * (a versioned bucket, where some servers ignore If-None-Match). A key holding the same bytes is adopted;
   * other bytes throw SourceChanged.
   */
  checkBeforeWrite?: boolean | undefined;
  /** About to complete the multipart upload: what was recorded of its parts must be durable now. */
  onCompleting?: (uploadId: string) => void;
  /** The run writing, named when another writer got to the key first. */
  runId?: string | undefined;
}

/**
 * How a write's stored bytes were proven to be the ones sent (write-proof.ts): the checksum the server verified
 * and echoed, the ETag against the MD5 of the bytes sent, or the object read back and hashed.
 */
export type WriteProof = "checksum" | "etag" | "read-back";

export interface TransferResult {
  bytes: number;
  sha256: string;
  etag: string | null;
  versionId: string | null;
  multipart: boolean;
  /**
   * How the bytes in the bucket were proven to be the source's (write-proof.ts); null for an archived original
   * kept after its source changed (its earlier run's record stands).
   */
  proof: WriteProof | null;
  /** The key already held these exact bytes: nothing was written. */
  adopted?: boolean;
  /** Bytes that an interrupted run had stored already (resumed upload): re-read to hash, not uploaded. */
  resumedBytes?: number;
  /**
   * The stored version as a HEAD showed it right after the write, where proving the write needed one (Ceph RGW
   * answers a completion without an ETag): the evidence (lock-evidence.ts) starts from it instead of asking again.
   */
  head?: ObjectHead | undefined;
  /** An interrupted run's completion had landed (lost-answer.ts): nothing was read or written. */
  completedEarlier?: boolean;
}
