-- S3 tagging (issue 8): object tags (a cache of attr.json's `tags`), the tags given at
-- CreateMultipartUpload (applied at completion), and bucket tags (also kept in element.json).
-- JSON objects as text, like custom_attributes; a bucket without a tag set has NULL.
ALTER TABLE objects ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE multipart_uploads ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE storage_elements ADD COLUMN tags TEXT;
