-- A source that changed after its recording was archived (re-encoded or replaced upstream): the archived object is
-- kept as it is; each change is recorded here with both SHA-256s, and where the new bytes were archived, if they
-- were (ARCHIVER_ON_SOURCE_CHANGE=archive: a versioned key such as {call_id}.v2.m4a).
CREATE TABLE source_changes (
  id              INTEGER PRIMARY KEY,
  call_id         TEXT NOT NULL,
  run_id          TEXT NOT NULL,
  detected_at     TEXT NOT NULL,
  key             TEXT NOT NULL,     -- the archived original, untouched
  archived_sha256 TEXT NOT NULL,
  archived_bytes  INTEGER NOT NULL,
  source_sha256   TEXT NOT NULL,     -- what the source holds now
  source_bytes    INTEGER NOT NULL,
  new_key         TEXT,              -- where the new bytes were archived; NULL when only reported
  new_etag        TEXT,
  new_version_id  TEXT,
  UNIQUE (call_id, archived_sha256, source_sha256)
);
CREATE INDEX source_changes_detected_at ON source_changes (detected_at);
