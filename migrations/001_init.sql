-- Runs: one row per `run` invocation (window, counts, outcome).
CREATE TABLE runs (
  id                 TEXT PRIMARY KEY,
  command            TEXT NOT NULL DEFAULT 'run',
  mode               TEXT NOT NULL,                 -- incremental | backfill
  window_start       TEXT,                          -- YYYY-MM-DD or NULL (everything)
  window_end         TEXT,
  dry_run            INTEGER NOT NULL DEFAULT 0,
  started_at         TEXT NOT NULL,
  finished_at        TEXT,
  outcome            TEXT NOT NULL DEFAULT 'running', -- running | ok | failures | fatal | interrupted
  error              TEXT,
  listed             INTEGER NOT NULL DEFAULT 0,
  archived           INTEGER NOT NULL DEFAULT 0,
  already_archived   INTEGER NOT NULL DEFAULT 0,
  not_ready          INTEGER NOT NULL DEFAULT 0,
  no_recording       INTEGER NOT NULL DEFAULT 0,
  failed             INTEGER NOT NULL DEFAULT 0,
  bytes              INTEGER NOT NULL DEFAULT 0,
  pid                INTEGER,
  host               TEXT,
  archiver_version   TEXT,
  config_fingerprint TEXT
);

-- Calls: one row per call ever listed, with where its recording stands.
CREATE TABLE calls (
  call_id              TEXT PRIMARY KEY,
  call_time            TEXT,
  call_json            TEXT NOT NULL,
  status               TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'archived', 'not_ready', 'no_recording', 'failed')),
  error_kind           TEXT,           -- for failed: retryable | permanent (permanent ones wait for --retry-failed)
  last_error           TEXT,
  attempts             INTEGER NOT NULL DEFAULT 0,
  key                  TEXT,
  content_type         TEXT,
  recording_start_time TEXT,
  duration_seconds     REAL,
  sha256               TEXT,
  bytes                INTEGER,
  etag                 TEXT,
  version_id           TEXT,
  first_seen_at        TEXT NOT NULL,
  updated_at           TEXT NOT NULL,
  archived_at          TEXT,
  last_run_id          TEXT,
  CHECK (status <> 'archived' OR (key IS NOT NULL AND sha256 IS NOT NULL AND bytes IS NOT NULL))
);
CREATE INDEX calls_status ON calls (status);
CREATE INDEX calls_call_time ON calls (call_time);

-- Small key/value facts: the incremental watermark.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
