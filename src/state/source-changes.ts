/** The `source_changes` table (migrations/008): sources that changed after their recording was archived. */
import type { Window } from "../base/dates.js";
import type { StateDb } from "./db.js";
import { IN_WINDOW, type ArchivedRow } from "./scans.js";

export interface SourceChange {
  call_id: string;
  run_id: string;
  detected_at: string;
  key: string;
  archived_sha256: string;
  archived_bytes: number;
  source_sha256: string;
  source_bytes: number;
  new_key: string | null;
  new_etag: string | null;
  new_version_id: string | null;
}

/** Record a change (the same change seen again keeps its first record, gaining where the new bytes went). */
export function recordSourceChange(state: StateDb, c: Omit<SourceChange, "detected_at">): void {
  state.db
    .prepare(
      `INSERT INTO source_changes (call_id, run_id, detected_at, key, archived_sha256, archived_bytes,
         source_sha256, source_bytes, new_key, new_etag, new_version_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (call_id, archived_sha256, source_sha256) DO UPDATE SET
         new_key = COALESCE(source_changes.new_key, excluded.new_key),
         new_etag = COALESCE(source_changes.new_etag, excluded.new_etag),
         new_version_id = COALESCE(source_changes.new_version_id, excluded.new_version_id)`,
    )
    .run(
      c.call_id,
      c.run_id,
      new Date().toISOString(),
      c.key,
      c.archived_sha256,
      c.archived_bytes,
      c.source_sha256,
      c.source_bytes,
      c.new_key,
      c.new_etag,
      c.new_version_id,
    );
}

export function countSourceChanges(state: StateDb): number {
  return Number(state.db.prepare("SELECT COUNT(*) FROM source_changes").pluck().get());
}

export function recentSourceChanges(state: StateDb, limit: number): SourceChange[] {
  return state.db
    .prepare("SELECT * FROM source_changes ORDER BY detected_at DESC, id DESC LIMIT ?")
    .all(limit) as SourceChange[];
}

/** Where a call's changed sources were archived ({call_id}.v2.m4a …), oldest first. */
export function versionedKeys(state: StateDb, callId: string): string[] {
  return state.db
    .prepare("SELECT new_key FROM source_changes WHERE call_id = ? AND new_key IS NOT NULL ORDER BY id")
    .pluck()
    .all(callId) as string[];
}

/**
 * The later copies of changed sources ({call_id}.v2.m4a …) whose call is in the window, as manifest and verify
 * read archived recordings: their key, size, SHA-256, ETag and version as stored. Their protection was not
 * recorded (null). Read whole: sources that change are few.
 */
export function laterCopies(state: StateDb, window: Partial<Window> = {}): ArchivedRow[] {
  return state.db
    .prepare(
      `SELECT sc.call_id, sc.new_key AS key, sc.source_bytes AS bytes, sc.source_sha256 AS sha256, c.content_type,
         c.recording_start_time, NULL AS duration_seconds, sc.detected_at AS archived_at, sc.new_etag AS etag,
         sc.new_version_id AS version_id, NULL AS lock_mode, NULL AS retain_until, 0 AS legal_hold,
         NULL AS storage_class, NULL AS sse, NULL AS tags, NULL AS sidecar_version_id, NULL AS sidecar_etag,
         NULL AS sidecar_lock_mode, NULL AS sidecar_retain_until, 0 AS sidecar_legal_hold
       FROM source_changes sc JOIN calls c ON c.call_id = sc.call_id
       WHERE sc.new_key IS NOT NULL AND ${IN_WINDOW.replace(/recording_start_time|call_time/g, (m) => `c.${m}`)}
       ORDER BY sc.new_key`,
    )
    .all({ since: window.startDate ?? null, until: window.endDate ?? null }) as ArchivedRow[];
}
