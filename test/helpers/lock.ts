/** Reading an object's retention, legal hold and tags back with the SDK's own Get* calls, for assertions. */
import {
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { CapturedRequest } from "../../scripts/s3-faults.js";

export interface Shown {
  mode: string | null;
  until: string | null;
  hold: string | null;
  tags: string;
}

const absent = (err: unknown) => {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 404) return null;
  throw err;
};

export async function protectionOf(
  client: S3Client,
  bucket: string,
  key: string,
  versionId?: string | null,
): Promise<Shown> {
  const at = { Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) };
  const [retention, hold, tagging] = await Promise.all([
    client.send(new GetObjectRetentionCommand(at)).catch(absent),
    client.send(new GetObjectLegalHoldCommand(at)).catch(absent),
    client.send(new GetObjectTaggingCommand(at)),
  ]);
  return {
    mode: retention?.Retention?.Mode ?? null,
    until: retention?.Retention?.RetainUntilDate?.toISOString() ?? null,
    hold: hold?.LegalHold?.Status ?? null,
    tags: (tagging.TagSet ?? []).map((t) => `${t.Key}=${t.Value}`).join("&"),
  };
}

/** Requests the archiver sent for one object key, by kind (HEAD, PutObject, GetObjectTagging, PutObjectRetention…). */
export function requestsFor(requests: readonly CapturedRequest[], bucket: string, key: string): string[] {
  const path = `/${bucket}/${key}`;
  return requests
    .filter((q) => decodeURIComponent(q.path) === path)
    .map((q) => {
      const sub = ["retention", "legal-hold", "tagging", "uploads", "partNumber", "uploadId"].find(
        (s) => s in q.query,
      );
      return `${q.method}${sub ? ` ?${sub}` : ""}${"x-amz-copy-source" in q.headers ? " copy" : ""}`;
    });
}
