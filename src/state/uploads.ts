/**
 * The `uploads` and `upload_parts` tables: multipart uploads in flight and the parts S3 confirmed for them, so a
 * run that dies can be resumed after its last stored part, and an upload nobody will finish can be aborted.
 */
import { isoNow, type Sql } from "./sql.js";
import type { PartRecord, TrackedUploadRow, UploadRecord } from "./types.js";

/** An upload_parts row. */
interface PartRow {
  part_number: number;
  start_offset: number;
  end_offset: number;
  etag: string;
  checksum_crc32c: string | null;
  checksum_sha256: string | null;
  prefix_sha256: string;
}

export function trackUpload(
  sql: Sql,
  u: { uploadId: string; key: string; callId: string; runId: string; fingerprint?: string | null },
): void {
  sql
    .st(
      "INSERT OR REPLACE INTO uploads (upload_id, key, call_id, run_id, started_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .run(u.uploadId, u.key, u.callId, u.runId, isoNow(), u.fingerprint ?? null);
}

/** Forget an upload (completed or aborted), its parts with it. */
export function untrackUpload(sql: Sql, uploadId: string): void {
  sql.st("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
}

/** A part S3 confirmed, so that a run that dies can be resumed after it (ignored for an untracked upload). */
export function recordPart(sql: Sql, uploadId: string, p: PartRecord): void {
  sql
    .st(
      `INSERT OR REPLACE INTO upload_parts
         (upload_id, part_number, start_offset, end_offset, etag, checksum_crc32c, checksum_sha256, prefix_sha256)
       SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?)`,
    )
    .run(
      uploadId,
      p.partNumber,
      p.start,
      p.end,
      p.etag,
      p.checksumCRC32C ?? null,
      p.checksumSHA256 ?? null,
      p.prefixSha256,
      uploadId,
    );
}

function partOf(p: PartRow): PartRecord {
  return {
    partNumber: p.part_number,
    start: p.start_offset,
    end: p.end_offset,
    etag: p.etag,
    checksumCRC32C: p.checksum_crc32c ?? undefined,
    checksumSHA256: p.checksum_sha256 ?? undefined,
    prefixSha256: p.prefix_sha256,
  };
}

/** The uploads tracked for a call, with their recorded parts in order (most parts first). */
export function uploadsFor(sql: Sql, callId: string): UploadRecord[] {
  const ups = sql
    .st("SELECT upload_id, key, fingerprint FROM uploads WHERE call_id = ? ORDER BY started_at DESC")
    .all(callId) as { upload_id: string; key: string; fingerprint: string | null }[];
  const parts = sql.st(
    `SELECT part_number, start_offset, end_offset, etag, checksum_crc32c, checksum_sha256, prefix_sha256
       FROM upload_parts WHERE upload_id = ? ORDER BY part_number`,
  );
  return ups
    .map((u) => ({
      uploadId: u.upload_id,
      key: u.key,
      fingerprint: u.fingerprint,
      parts: (parts.all(u.upload_id) as PartRow[]).map(partOf),
    }))
    .sort((a, b) => b.parts.length - a.parts.length);
}

export function trackedUploads(sql: Sql): TrackedUploadRow[] {
  return sql.st("SELECT upload_id, key, call_id, run_id FROM uploads").all() as TrackedUploadRow[];
}
