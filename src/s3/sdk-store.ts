/**
 * The S3 adapter: the ObjectStore port (object-store.ts) implemented with the AWS SDK, every request through
 * `client.send`. It translates the archiver's requests to S3's parameters and S3's "not found" answers to values;
 * every other error is the SDK's own, classified by errors.ts.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { classify } from "../base/errors.js";
import type {
  BodyCheck,
  CompleteRequest,
  CreateUploadRequest,
  ObjectHead,
  ObjectPage,
  ObjectStore,
  Page,
  PartRequest,
  PutRequest,
  UploadInProgress,
  UploadMarker,
  VersioningStatus,
  WriteAnswer,
} from "./object-store.js";

/** What a new object is created with, by a PUT or a multipart upload: key, type, metadata, lock, class, tags. */
const newObject = (r: CreateUploadRequest) => ({
  Key: r.key,
  ContentType: r.contentType,
  Metadata: r.metadata,
  ...r.params,
});

const isNotFound = (err: unknown, ...codes: string[]) => {
  const c = classify(err);
  return c.status === 404 || codes.includes(c.code);
};

/** The SDK's checksum parameters for a body. */
const checks = (c: BodyCheck) => ({
  ...(c.contentMD5 !== undefined ? { ContentMD5: c.contentMD5 } : {}),
  ...(c.checksumAlgorithm ? { ChecksumAlgorithm: c.checksumAlgorithm } : {}),
  ...(c.checksumSHA256 !== undefined ? { ChecksumSHA256: c.checksumSHA256 } : {}),
});

const answer = (o: {
  ETag?: string | undefined;
  VersionId?: string | undefined;
  ChecksumCRC32C?: string | undefined;
  ChecksumSHA256?: string | undefined;
}): WriteAnswer => ({
  etag: o.ETag,
  versionId: o.VersionId,
  checksumCRC32C: o.ChecksumCRC32C,
  checksumSHA256: o.ChecksumSHA256,
});

const version = (versionId: string | null | undefined) => (versionId ? { VersionId: versionId } : {});

export class S3ObjectStore implements ObjectStore {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  private get b() {
    return { Bucket: this.bucket };
  }

  async headBucket(): Promise<void> {
    await this.client.send(new HeadBucketCommand(this.b));
  }

  async probeList(): Promise<void> {
    await this.client.send(new ListObjectsV2Command({ ...this.b, MaxKeys: 1 }));
  }

  async objectLock(): Promise<"enabled" | "not-configured" | "disabled"> {
    try {
      const out = await this.client.send(new GetObjectLockConfigurationCommand(this.b));
      return out.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled" ? "enabled" : "disabled";
    } catch (err) {
      if (classify(err).code === "ObjectLockConfigurationNotFoundError") return "not-configured";
      throw err;
    }
  }

  async versioning(): Promise<VersioningStatus> {
    const out = await this.client.send(new GetBucketVersioningCommand(this.b));
    return out.Status === "Enabled" || out.Status === "Suspended" ? out.Status : undefined;
  }

  async head(key: string, versionId?: string | null): Promise<ObjectHead | null> {
    try {
      const o = await this.client.send(new HeadObjectCommand({ ...this.b, Key: key, ...version(versionId) }));
      return {
        size: o.ContentLength ?? -1,
        etag: o.ETag ?? null,
        versionId: o.VersionId ?? null,
        lastModified: o.LastModified,
        metadata: o.Metadata ?? {},
        lockMode: o.ObjectLockMode,
        retainUntil: o.ObjectLockRetainUntilDate,
        legalHold: o.ObjectLockLegalHoldStatus === "ON",
        tagCount: o.TagCount,
      };
    } catch (err) {
      if (isNotFound(err, "NotFound", "NoSuchKey")) return null;
      throw err;
    }
  }

  async get(key: string, versionId?: string | null): Promise<Readable | null> {
    try {
      const o = await this.client.send(new GetObjectCommand({ ...this.b, Key: key, ...version(versionId) }));
      return o.Body as Readable;
    } catch (err) {
      if (isNotFound(err, "NoSuchKey")) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ ...this.b, Key: key }));
  }

  async put(r: PutRequest): Promise<WriteAnswer> {
    const out = await this.client.send(
      new PutObjectCommand({
        ...this.b,
        ...newObject(r),
        Body: r.body,
        ContentLength: r.length,
        ...(r.ifNoneMatch ? { IfNoneMatch: r.ifNoneMatch } : {}),
        ...checks(r),
      }),
    );
    return answer(out);
  }

  async createUpload(r: CreateUploadRequest): Promise<string> {
    const out = await this.client.send(
      new CreateMultipartUploadCommand({
        ...this.b,
        ...newObject(r),
        ...(r.checksumAlgorithm ? { ChecksumAlgorithm: r.checksumAlgorithm } : {}),
      }),
    );
    return out.UploadId ?? "";
  }

  async uploadPart(r: PartRequest): Promise<WriteAnswer> {
    const out = await this.client.send(
      new UploadPartCommand({
        ...this.b,
        Key: r.key,
        UploadId: r.uploadId,
        PartNumber: r.partNumber,
        Body: r.body,
        ContentLength: r.length,
        ...checks(r),
      }),
    );
    return answer(out);
  }

  async completeUpload(r: CompleteRequest): Promise<WriteAnswer> {
    const Parts = r.parts.map((p) => ({
      PartNumber: p.partNumber,
      ETag: p.etag,
      ...(p.checksumCRC32C ? { ChecksumCRC32C: p.checksumCRC32C } : {}),
      ...(p.checksumSHA256 ? { ChecksumSHA256: p.checksumSHA256 } : {}),
    }));
    const out = await this.client.send(
      new CompleteMultipartUploadCommand({
        ...this.b,
        Key: r.key,
        UploadId: r.uploadId,
        MultipartUpload: { Parts },
        ...(r.ifNoneMatch ? { IfNoneMatch: r.ifNoneMatch } : {}),
      }),
    );
    return answer(out);
  }

  async abortUpload(key: string, uploadId: string): Promise<"aborted" | "gone"> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ ...this.b, Key: key, UploadId: uploadId }));
      return "aborted";
    } catch (err) {
      if (isNotFound(err, "NoSuchUpload")) return "gone";
      throw err;
    }
  }

  async listUploads(prefix: string, m?: UploadMarker): Promise<Page<UploadInProgress, UploadMarker>> {
    const page = await this.client.send(
      new ListMultipartUploadsCommand({
        ...this.b,
        Prefix: prefix,
        KeyMarker: m?.key,
        UploadIdMarker: m?.uploadId,
      }),
    );
    const items: UploadInProgress[] = [];
    for (const u of page.Uploads ?? [])
      if (u.Key && u.UploadId) items.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
    const next = page.IsTruncated
      ? { key: page.NextKeyMarker, uploadId: page.NextUploadIdMarker }
      : undefined;
    return { items, next };
  }

  async listParts(key: string, uploadId: string, marker?: number) {
    try {
      const page = await this.client.send(
        new ListPartsCommand({
          ...this.b,
          Key: key,
          UploadId: uploadId,
          ...(marker !== undefined ? { PartNumberMarker: String(marker) } : {}),
        }),
      );
      const items = (page.Parts ?? []).flatMap((p) =>
        p.PartNumber === undefined
          ? []
          : [{ partNumber: p.PartNumber, etag: p.ETag ?? "", size: p.Size ?? -1 }],
      );
      const nextMarker =
        page.NextPartNumberMarker === undefined ? undefined : Number(page.NextPartNumberMarker);
      return { items, next: page.IsTruncated ? nextMarker : undefined };
    } catch (err) {
      if (isNotFound(err, "NoSuchUpload")) return "gone" as const;
      const c = classify(err);
      if (c.status === 501 || c.status === 405 || c.code === "NotImplemented") return "unsupported" as const;
      throw err;
    }
  }

  async listObjects(
    prefix: string,
    from: { token?: string | undefined; startAfter?: string | undefined },
  ): Promise<ObjectPage> {
    const out = await this.client.send(
      new ListObjectsV2Command({
        ...this.b,
        Prefix: prefix,
        ...(from.token
          ? { ContinuationToken: from.token }
          : from.startAfter
            ? { StartAfter: from.startAfter }
            : {}),
      }),
    );
    const items = (out.Contents ?? []).flatMap((o) =>
      o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? -1, etag: o.ETag ?? "" }],
    );
    return {
      items,
      next: out.IsTruncated ? out.NextContinuationToken : undefined,
      truncated: out.IsTruncated === true,
    };
  }

  async getTags(key: string, versionId: string | null): Promise<[string, string][]> {
    const out = await this.client.send(
      new GetObjectTaggingCommand({ ...this.b, Key: key, ...version(versionId) }),
    );
    return (out.TagSet ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]);
  }

  async putRetention(key: string, versionId: string | null, mode: string, until: Date): Promise<void> {
    const Retention = { Mode: mode as "GOVERNANCE" | "COMPLIANCE", RetainUntilDate: until };
    await this.client.send(
      new PutObjectRetentionCommand({ ...this.b, Key: key, ...version(versionId), Retention }),
    );
  }

  async putLegalHold(key: string, versionId: string | null): Promise<void> {
    await this.client.send(
      new PutObjectLegalHoldCommand({
        ...this.b,
        Key: key,
        ...version(versionId),
        LegalHold: { Status: "ON" },
      }),
    );
  }

  async putTags(key: string, versionId: string | null, tags: [string, string][]): Promise<void> {
    const TagSet = tags.map(([Key, Value]) => ({ Key, Value }));
    await this.client.send(
      new PutObjectTaggingCommand({ ...this.b, Key: key, ...version(versionId), Tagging: { TagSet } }),
    );
  }

  clockOffsetMs(): number {
    return this.client.config.systemClockOffset ?? 0;
  }

  close(): void {
    this.client.destroy();
  }
}
