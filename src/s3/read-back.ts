/** Reading stored objects back: a small JSON document (sidecars), or the SHA-256 of every byte of a version. */
import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { ArchiverError } from "../base/errors.js";
import { atVersion, type Requests } from "./requests.js";

async function readAll(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A JSON object stored at `key`; null when there is none or it is not JSON. */
export async function readJson(sink: Requests, key: string): Promise<Record<string, unknown> | null> {
  const text = await sink.s3(`GetObject ${key}`, async () => {
    const body = await sink.store.get(key);
    return body && (await readAll(body));
  });
  if (text === null) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
}

/**
 * SHA-256 (hex) of the object's bytes as stored, read in full (streamed). With `to`, every byte is also written
 * to the stream it opens (once an attempt: a retried read starts a new one), which is ended before this resolves.
 */
export function hashObject(
  sink: Requests,
  key: string,
  versionId?: string | null,
  to?: () => Writable,
): Promise<string> {
  return sink.s3(`GetObject ${atVersion(key, versionId)}`, async () => {
    const body = await sink.store.get(key, versionId);
    if (!body)
      throw new ArchiverError(
        "permanent",
        "NoSuchKey",
        `S3 GetObject ${key}: HTTP 404 NoSuchKey (no such object)`,
        {
          status: 404,
        },
      );
    const h = createHash("sha256");
    const out = to?.();
    for await (const chunk of body) {
      h.update(chunk as Buffer);
      if (out && !out.write(chunk)) await once(out, "drain");
    }
    if (out) await finished(out.end());
    return h.digest("hex");
  });
}
