-- Resuming a dead run's multipart upload from its last stored part instead of from byte 0.
-- What the upload was created with (content type, metadata, object parameters, checksum algorithm): a later run
-- continues it only when it would create the same thing.
ALTER TABLE uploads ADD COLUMN fingerprint TEXT;

-- Each part as S3 confirmed it: the ETag and checksums CompleteMultipartUpload needs, the byte range it holds,
-- and the SHA-256 of the recording from byte 0 to the part's end. Node cannot save a SHA-256 state, so a resumed
-- upload re-reads that prefix from the source, checks it against these digests (the source must not have
-- changed), and uploads only what comes after it.
CREATE TABLE upload_parts (
  upload_id       TEXT NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
  part_number     INTEGER NOT NULL,
  start_offset    INTEGER NOT NULL,
  end_offset      INTEGER NOT NULL,
  etag            TEXT NOT NULL,
  checksum_crc32c TEXT,
  checksum_sha256 TEXT,
  prefix_sha256   TEXT NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);
