-- Search (issue 9). A side table written by the transaction that writes the objects row
-- (metadata/src/search/postgres.rs), rather than generated columns: the document text is
-- tokenised by ArtStore (lower-cased words, so both databases index the same words whatever
-- the database locale) and will include tags, which live outside the objects row.
CREATE TABLE search_docs (
    bucket    TEXT NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    -- Custom attributes as strings; attr_nums holds those that read as decimal numbers.
    attrs     JSONB NOT NULL,
    attr_nums JSONB NOT NULL,
    tags      JSONB NOT NULL,
    doc       TSVECTOR NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX search_docs_doc ON search_docs USING GIN (doc);
-- jsonb_ops (not jsonb_path_ops): serves both `@>` (attr = value) and `?` (attr exists).
CREATE INDEX search_docs_attrs ON search_docs USING GIN (attrs);
CREATE INDEX search_docs_tags ON search_docs USING GIN (tags jsonb_path_ops);

-- Sorts by created time and size within a bucket (key order is the primary key).
CREATE INDEX objects_bucket_created ON objects (bucket, created_ms, key);
CREATE INDEX objects_bucket_size ON objects (bucket, size, key);

-- Existing objects are indexed by Store::migrate right after this migration.
INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending');
