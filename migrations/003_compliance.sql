-- What protection each archived object was given (for manifests an auditor reads).
ALTER TABLE calls ADD COLUMN lock_mode TEXT;
ALTER TABLE calls ADD COLUMN retain_until TEXT;
ALTER TABLE calls ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN storage_class TEXT;
ALTER TABLE calls ADD COLUMN sse TEXT;
CREATE INDEX calls_archived_at ON calls (archived_at);

-- Audit trail: who ran each command, and what it found (JSON: verify counts, manifest key and sha256, ...).
ALTER TABLE runs ADD COLUMN actor TEXT;
ALTER TABLE runs ADD COLUMN details TEXT;
