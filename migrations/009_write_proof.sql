-- How an archived recording's bytes in the bucket were proven to be the source's when it was stored or adopted
-- (src/s3/write-proof.ts): 'checksum' (the server echoed the checksum it verified), 'etag' (the ETag of the PUT,
-- or of each part and of the completed object, against the MD5 of the bytes sent) or 'read-back' (the object
-- read back and hashed). NULL: archived before this column, adopted from the bucket by reconcile, or an original
-- kept after its source changed; nothing proven by this archiver's write.
ALTER TABLE calls ADD COLUMN write_proof TEXT;
