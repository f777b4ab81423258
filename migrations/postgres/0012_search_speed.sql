-- Search speed (issue 9). The search row gets copies of the object's created_ms and size, so
-- a search filters and sorts on search_docs alone and reads objects rows only for the page it
-- returns; written by the same transaction as the objects row (metadata/src/search/postgres.rs).
ALTER TABLE search_docs ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE search_docs ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
UPDATE search_docs d SET created_ms = o.created_ms, size = o.size
FROM objects o WHERE o.bucket = d.bucket AND o.key = d.key;
ALTER TABLE search_docs ALTER COLUMN created_ms DROP DEFAULT;
ALTER TABLE search_docs ALTER COLUMN size DROP DEFAULT;

-- The sorts (bucket and key break ties), across buckets as within one.
CREATE INDEX search_docs_created ON search_docs (created_ms, bucket, key);
CREATE INDEX search_docs_size ON search_docs (size, bucket, key);
CREATE INDEX search_docs_key ON search_docs (key, bucket);

-- Search no longer reads these (0011 added them for it); they only cost writes and space.
DROP INDEX objects_bucket_created;
DROP INDEX objects_bucket_size;
