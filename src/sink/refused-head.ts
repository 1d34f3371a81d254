/**
 * A HEAD answer has no error document: a 403 to it names no reason, and the reason may be the clock (a server
 * that sends no Date header cannot be corrected: clock.ts). Ask the same of the bucket with a GET, whose refusal
 * names its code (RequestTimeTooSkewed, AccessDenied, …), and fail with that.
 */
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { NO_CODE } from "../clock.js";

/** Always throws: the GET's refusal, or the HEAD's when the GET was allowed. */
export async function explainRefusedHead(
  sink: { client: S3Client; settings: { bucket: string } },
  err: unknown,
): Promise<never> {
  const e = err as { status?: number; code?: string };
  if (e.status !== 403 || !NO_CODE.has(e.code ?? "")) throw err;
  await sink.client.send(new ListObjectsV2Command({ Bucket: sink.settings.bucket, MaxKeys: 1 }));
  throw err;
}
