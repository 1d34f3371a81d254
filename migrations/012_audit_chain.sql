-- The audit trail made tamper-evident: each finished command's row in `runs` is a link of a hash chain. chain_seq
-- numbers the links 1, 2, 3… in the order the commands finished; chain_prev is the SHA-256 of the link before (64
-- zeros for the first); chain_sha256 is the SHA-256 of the canonical JSON of the row's fields and chain_prev
-- (src/state/audit-chain.ts). Editing or deleting a row breaks the chain at that row; the head of the chain is
-- also written to the bucket after every command ({prefix}_audit/heads/), so a rewritten or older state DB does
-- not match what the bucket holds. Rows from before this migration are not links (chain_seq NULL).
ALTER TABLE runs ADD COLUMN chain_seq INTEGER;
ALTER TABLE runs ADD COLUMN chain_prev TEXT;
ALTER TABLE runs ADD COLUMN chain_sha256 TEXT;
CREATE UNIQUE INDEX runs_chain_seq ON runs (chain_seq) WHERE chain_seq IS NOT NULL;

-- Archived recordings by their UTC day, then key: a window of `verify`, `manifest` and the report reads only its
-- own days' rows (src/state/scans.ts), in key order within the window (the order a bucket listing has).
CREATE INDEX calls_archived_day ON calls (date(COALESCE(recording_start_time, call_time)), key)
  WHERE status = 'archived';

-- Recordings on legal hold (as read back), counted by `status` and the report without reading every row.
CREATE INDEX calls_on_hold ON calls (call_id) WHERE status = 'archived' AND legal_hold = 1;
