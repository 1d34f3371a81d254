-- A million rows: every query over calls pages by key along an index in the order it reads, selecting only the
-- columns it uses, so no query sorts the table or re-reads what an earlier page read (src/state/scans.ts; the
-- plans are checked in test/unit/scans.test.ts).

-- Counts and bytes per status (`status`) from the index alone, without reading the table.
DROP INDEX IF EXISTS calls_status;
CREATE INDEX calls_status_bytes ON calls (status, bytes);

-- Archived recordings in key order: verify and reconcile merge them with a bucket listing, which is in key order.
CREATE INDEX calls_archived_key ON calls (key) WHERE status = 'archived';

-- Calls still waiting (not ready, pending, failed), newest first, for the leftovers every run works through.
-- call_time may be NULL: '' sorts those last, and keeps the keyset (call_time, call_id) comparable.
DROP INDEX IF EXISTS calls_call_time;
CREATE INDEX calls_waiting ON calls (IFNULL(call_time, ''), call_id)
  WHERE status IN ('pending', 'not_ready', 'failed');

-- Never read by any query; every archived row paid for it.
DROP INDEX IF EXISTS calls_archived_at;

-- Commands still marked running: after an unclean shutdown, the next command finds them without a scan.
CREATE INDEX runs_running ON runs (host) WHERE outcome = 'running';
