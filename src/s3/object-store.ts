/**
 * The port: every request the archiver makes of an object store, one method a request, in the archiver's words.
 * The S3 adapter (sdk-store.ts) implements it with the AWS SDK; the tests run the transfer on an in-memory one
 * (test/helpers/memory-store.ts). A method sends one request and does not retry (the store, s3.ts, applies the
 * retry policy around it). "Not there" is a value (`null`, or "gone" for an upload), never an error to catch;
 * every other failure is thrown as the SDK's error or an ArchiverError, which errors.ts classifies.
 */
import type { Readable } from "node:stream";
import type { ObjectParams } from "./types.js";

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

/** Checksums a server may compute itself (sent as x-amz-checksum-*). */
export type ServerChecksum = "CRC32C" | "SHA256";

/** How a request body is checked on its way: Content-MD5 computed here, or a checksum the SDK computes. */
export interface BodyCheck {
  contentMD5?: string | undefined;
  checksumAlgorithm?: ServerChecksum | undefined;
  /** The body's SHA-256 (base64) when known before sending: S3 checks the body against it. */
  checksumSHA256?: string | undefined;
}

export interface PutRequest extends BodyCheck {
  key: string;
  body: Buffer | Readable;
  length: number;
  contentType: string;
  metadata: Record<string, string>;
  params: ObjectParams;
  /** "*": only when the key holds no object (a 412 otherwise). */
  ifNoneMatch?: "*" | undefined;
}

/** What a write answered. Checksums: those the server answered back (x-amz-checksum-*). */
export interface WriteAnswer {
  etag: string | undefined;
  versionId: string | undefined;
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
}

export interface CreateUploadRequest {
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  params: ObjectParams;
  checksumAlgorithm?: ServerChecksum | undefined;
}

export interface PartRequest extends BodyCheck {
  key: string;
  uploadId: string;
  partNumber: number;
  body: Buffer | Readable;
  length: number;
}

/** A part named in a completion, as the server confirmed it. */
export interface CompletedPartRef {
  partNumber: number;
  etag: string;
  checksumCRC32C?: string | undefined;
  checksumSHA256?: string | undefined;
}

export interface CompleteRequest {
  key: string;
  uploadId: string;
  parts: CompletedPartRef[];
  ifNoneMatch?: "*" | undefined;
}

/** One page of a listing; `next` is the marker of the following page, undefined on the last. */
export interface Page<T, M = string> {
  items: T[];
  next: M | undefined;
}

export interface UploadInProgress {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

export interface ListedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface ListedObject {
  key: string;
  size: number;
  /** As the server lists it, quotes included (see sameEtag). */
  etag: string;
}

/** The page of a bucket listing, with the server's own truncation flag (checked by listing.ts). */
export interface ObjectPage extends Page<ListedObject> {
  truncated: boolean;
}

export type VersioningStatus = "Enabled" | "Suspended" | undefined;

export interface ObjectStore {
  /** The bucket (named in messages). */
  readonly bucket: string;

  headBucket(): Promise<void>;
  /** A listing of one object: asked only to name why a HeadBucket was refused (its error has a body). */
  probeList(): Promise<void>;
  /** The bucket's Object Lock configuration: "enabled", or "not-configured" (ObjectLockConfigurationNotFound). */
  objectLock(): Promise<"enabled" | "not-configured" | "disabled">;
  versioning(): Promise<VersioningStatus>;

  head(key: string, versionId?: string | null): Promise<ObjectHead | null>;
  /** The object's bytes; null when there is no such object (or version). */
  get(key: string, versionId?: string | null): Promise<Readable | null>;
  put(req: PutRequest): Promise<WriteAnswer>;
  /** DeleteObject of the key's current version (a versioned bucket adds a delete marker; versions stay). */
  delete(key: string): Promise<void>;

  createUpload(req: CreateUploadRequest): Promise<string>;
  uploadPart(req: PartRequest): Promise<WriteAnswer>;
  completeUpload(req: CompleteRequest): Promise<WriteAnswer>;
  /** "gone": there was no such upload (aborted already, or completed). */
  abortUpload(key: string, uploadId: string): Promise<"aborted" | "gone">;
  listUploads(prefix: string, marker?: UploadMarker): Promise<Page<UploadInProgress, UploadMarker>>;
  /** "gone": the upload does not exist; "unsupported": the endpoint cannot list parts. */
  listParts(
    key: string,
    uploadId: string,
    marker?: number,
  ): Promise<Page<ListedPart, number> | "gone" | "unsupported">;
  listObjects(
    prefix: string,
    from: { token?: string | undefined; startAfter?: string | undefined },
  ): Promise<ObjectPage>;

  getTags(key: string, versionId: string | null): Promise<[string, string][]>;
  putRetention(key: string, versionId: string | null, mode: string, until: Date): Promise<void>;
  putLegalHold(key: string, versionId: string | null): Promise<void>;
  putTags(key: string, versionId: string | null, tags: [string, string][]): Promise<void>;

  /** The server's time minus this machine's (ms), as learned from its answers. */
  clockOffsetMs(): number;
  close(): void;
}

export interface UploadMarker {
  key: string | undefined;
  uploadId: string | undefined;
}
