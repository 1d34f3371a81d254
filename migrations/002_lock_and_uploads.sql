-- One run per state DB: the holder's identity and a heartbeat, so a lock left by a dead process can be taken over.
CREATE TABLE run_lock (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  run_id       TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  host         TEXT NOT NULL,
  acquired_at  TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);

-- Multipart uploads this tool has started and not yet completed or aborted. Whatever is here when a run starts
-- was left by a run that died: the next run aborts it, so no orphaned parts are billed forever.
CREATE TABLE uploads (
  upload_id  TEXT PRIMARY KEY,
  key        TEXT NOT NULL,
  call_id    TEXT NOT NULL,
  run_id     TEXT NOT NULL,
  started_at TEXT NOT NULL
);
