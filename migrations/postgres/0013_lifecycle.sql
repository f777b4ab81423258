-- Abandoned multipart uploads expire (issue 10): a bucket's lifecycle rules as JSON (also kept
-- in element.json; NULL = no configuration), and an index for the sweep's oldest-first scan.
ALTER TABLE storage_elements ADD COLUMN lifecycle TEXT;
CREATE INDEX multipart_uploads_age ON multipart_uploads (created_ms, upload_id);
