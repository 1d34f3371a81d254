/**
 * Where an eDiscovery export goes, and how each copy is proven: an S3 prefix (a server-side CopyObject of the
 * archived version, then a HEAD of the copy: its size, and its ETag equal to the archived one's or, when the
 * server gives the copy another, its bytes read back and hashed) or a local directory (the archived version
 * streamed to a file while hashing it; files 0600, directories 0700). Either way the copy's SHA-256 is compared
 * with the one recorded when the recording was archived.
 */
import { statSync } from "node:fs";
import { mkdirPrivate, openPrivateWriteStream, type Readers } from "../base/private-fs.js";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../base/config.js";
import { ConfigError } from "../base/config.js";
import { normalizePrefix } from "../base/keys.js";
import { DEFAULT_RETRY_POLICY } from "../base/retry.js";
import { sameEtag } from "../s3/listing.js";
import { hashObject } from "../s3/read-back.js";
import { openSink, type S3Sink } from "../s3/s3.js";
import { storeFile } from "./compliance/manifest.js";

/** One archived object (a recorded version) to export. */
export interface ExportObject {
  callId: string;
  key: string;
  versionId: string | null;
  /** What was recorded when it was archived (a sidecar's SHA-256 is not recorded: it is read from the source). */
  bytes: number | null;
  sha256: string | null;
  etag: string | null;
}

/** A line of the export's manifest: one copy, and how it was checked. */
export interface ExportedFile {
  call_id: string;
  source_key: string;
  source_version_id: string | null;
  to: string;
  bytes: number;
  sha256: string;
  /** "etag": the copy's ETag is the archived object's; "sha256": its bytes were hashed. */
  checked: "etag" | "sha256";
}

export interface ExportTarget {
  readonly where: string;
  /** Copy one object and check the copy; a copy that does not match throws CopyMismatch. */
  copy(o: ExportObject): Promise<ExportedFile>;
  /** Store the export's manifest (a local file) beside the copies; where it went. */
  storeManifest(path: string, bytes: number, sha256: string, logger: Logger): Promise<string>;
  close(): void;
}

export class CopyMismatch extends Error {
  override readonly name = "CopyMismatch";
}

export const MANIFEST_NAME = "export-manifest.jsonl";

/** `--to`: s3://bucket/prefix/ or a directory. */
export function parseTarget(to: string): { bucket: string; prefix: string } | { dir: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to);
  if (!m) return { dir: resolve(to) };
  try {
    return { bucket: m[1]!, prefix: normalizePrefix(m[2]) };
  } catch (err) {
    throw new ConfigError(`--to ${to}: ${(err as Error).message}`);
  }
}

/** The key under the archive's prefix, which is kept below the target's (recordings/yyyy/mm/dd/…). */
function relativeKey(config: Config, key: string): string {
  return key.startsWith(config.s3.prefix) ? key.slice(config.s3.prefix.length) : key;
}

function mismatch(o: ExportObject, to: string, what: string): CopyMismatch {
  return new CopyMismatch(`${to}: ${what} (copy of ${o.key}${o.versionId ? ` version ${o.versionId}` : ""})`);
}

export function openTarget(config: Config, to: string, source: S3Sink, logger: Logger): ExportTarget {
  const t = parseTarget(to);
  return "dir" in t ? dirTarget(config, t.dir, source) : s3Target(config, t, source, logger);
}

function dirTarget(config: Config, dir: string, source: S3Sink): ExportTarget {
  const place = (rel: string): string => {
    const path = resolve(dir, rel);
    const inside = relative(dir, path);
    if (inside === "" || inside.startsWith("..") || isAbsolute(inside) || inside.split(sep).includes(".."))
      throw new Error(`refusing to write ${rel} outside ${dir}`);
    mkdirPrivate(dirname(path), config.outputReaders);
    return path;
  };
  return {
    where: dir,
    async copy(o) {
      const path = place(relativeKey(config, o.key));
      const sha256 = await hashObject(source, o.key, o.versionId, () =>
        openPrivateWriteStream(path, config.outputReaders),
      );
      const bytes = statSync(path).size;
      if (o.bytes !== null && bytes !== o.bytes)
        throw mismatch(o, path, `${bytes} bytes, archived ${o.bytes}`);
      if (o.sha256 !== null && sha256 !== o.sha256)
        throw mismatch(o, path, `hashes to ${sha256}, archived as ${o.sha256}`);
      return fileLine(o, path, bytes, sha256, "sha256");
    },
    storeManifest(path) {
      return Promise.resolve(path);
    },
    close() {},
  };
}

function fileLine(
  o: ExportObject,
  to: string,
  bytes: number,
  sha256: string,
  checked: ExportedFile["checked"],
): ExportedFile {
  return { call_id: o.callId, source_key: o.key, source_version_id: o.versionId, to, bytes, sha256, checked };
}

function s3Target(
  config: Config,
  t: { bucket: string; prefix: string },
  source: S3Sink,
  logger: Logger,
): ExportTarget {
  const targetConfig = { ...config, s3: { ...config.s3, bucket: t.bucket, prefix: t.prefix } };
  const sink = openSink(targetConfig, DEFAULT_RETRY_POLICY, logger, source.signal);
  const from = config.s3.bucket ?? "";
  return {
    where: `s3://${t.bucket}/${t.prefix}`,
    async copy(o) {
      const key = `${t.prefix}${relativeKey(config, o.key)}`;
      const url = `s3://${t.bucket}/${key}`;
      // A sidecar's SHA-256 was not recorded: the archived version is read to learn it.
      const want = o.sha256 ?? (await hashObject(source, o.key, o.versionId));
      const src = { bucket: from, key: o.key, versionId: o.versionId };
      const written = await sink.s3(`CopyObject ${key}`, () => sink.store.copy(key, src));
      const head = await sink.headObject(key, written.versionId);
      if (!head) throw mismatch(o, url, "not in the bucket after the copy");
      if (o.bytes !== null && head.size !== o.bytes)
        throw mismatch(o, url, `${head.size} bytes, archived ${o.bytes}`);
      if (o.etag && sameEtag(head.etag, o.etag)) return fileLine(o, url, head.size, want, "etag");
      const actual = await hashObject(sink, key, head.versionId);
      if (actual !== want) throw mismatch(o, url, `hashes to ${actual}, archived as ${want}`);
      return fileLine(o, url, head.size, actual, "sha256");
    },
    async storeManifest(path, bytes, sha256) {
      const key = `${t.prefix}${MANIFEST_NAME}`;
      const file = { key, path, contentType: "application/x-ndjson", metadata: {}, bytes, sha256 };
      await storeFile(targetConfig, file, logger);
      return `s3://${t.bucket}/${key}`;
    },
    close() {
      sink.close();
    },
  };
}

/** Where the manifest is written first: in the directory itself, or beside nothing (a temp dir) for S3. */
export function manifestPlace(to: string, tmp: () => string, readers: Readers): string {
  const t = parseTarget(to);
  if (!("dir" in t)) return join(tmp(), MANIFEST_NAME);
  mkdirPrivate(t.dir, readers);
  return join(t.dir, MANIFEST_NAME);
}
