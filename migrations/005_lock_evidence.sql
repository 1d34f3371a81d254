-- Protection as read back from the bucket after each object was stored (HeadObject / GetObjectTagging on that
-- version), not as requested. lock_mode, retain_until and legal_hold hold the recording's; these add its tags
-- and what its sidecar (a separate object, written after it) shows.
ALTER TABLE calls ADD COLUMN tags TEXT;                 -- x-amz-tagging form; NULL when no tags were asked
ALTER TABLE calls ADD COLUMN sidecar_version_id TEXT;
ALTER TABLE calls ADD COLUMN sidecar_etag TEXT;
ALTER TABLE calls ADD COLUMN sidecar_lock_mode TEXT;
ALTER TABLE calls ADD COLUMN sidecar_retain_until TEXT;
ALTER TABLE calls ADD COLUMN sidecar_legal_hold INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN sidecar_tags TEXT;
