/** Reading stored objects back: a small JSON document (sidecars), or the SHA-256 of every byte of a version. */
import { createHash } from "node:crypto";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { classify } from "../base/errors.js";
import type { S3Sink } from "./s3.js";

/** A JSON object stored at `key`; null when there is none or it is not JSON. */
export async function readJson(sink: S3Sink, key: string): Promise<Record<string, unknown> | null> {
  try {
    const out = await sink.s3(`GetObject ${key}`, () =>
      sink.client.send(new GetObjectCommand({ Bucket: sink.settings.bucket, Key: key })),
    );
    return JSON.parse(await out.Body!.transformToString()) as Record<string, unknown>;
  } catch (err) {
    const c = classify(err);
    if (c.status === 404 || c.code === "NoSuchKey" || err instanceof SyntaxError) return null;
    throw c;
  }
}

/** SHA-256 (hex) of the object's bytes as stored, read in full (streamed). */
export function hashObject(sink: S3Sink, key: string, versionId?: string | null): Promise<string> {
  return sink.s3(`GetObject ${key}`, async () => {
    const out = await sink.client.send(
      new GetObjectCommand({
        Bucket: sink.settings.bucket,
        Key: key,
        ...(versionId ? { VersionId: versionId } : {}),
      }),
    );
    const h = createHash("sha256");
    for await (const chunk of out.Body as Readable) h.update(chunk as Buffer);
    return h.digest("hex");
  });
}
