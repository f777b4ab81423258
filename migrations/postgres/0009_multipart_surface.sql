-- Completed multipart uploads, kept for a day so that a retried CompleteMultipartUpload
-- (SDKs retry on time-outs) finds the object it made.
CREATE TABLE completed_uploads (
    upload_id    TEXT PRIMARY KEY NOT NULL,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    file_id      TEXT NOT NULL,
    etag         TEXT NOT NULL,
    completed_ms BIGINT NOT NULL
);
CREATE INDEX completed_uploads_age ON completed_uploads (completed_ms);

-- Part sizes of a multipart object as runs [[size, count], ...] (partNumber reads,
-- GetObjectAttributes); NULL for single-part objects.
ALTER TABLE objects ADD COLUMN part_sizes TEXT;

-- COMPOSITE or FULL_OBJECT, as CreateMultipartUpload chose it (NULL: no checksum).
ALTER TABLE multipart_uploads ADD COLUMN checksum_type TEXT;
