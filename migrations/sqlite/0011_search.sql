-- Search (issue 9). Written by the transaction that writes the objects row
-- (metadata/src/search/sqlite.rs). ArtStore tokenises the text itself (lower-cased words), so
-- both databases index the same words.

-- A stable integer id per object for the FTS5 rowid (objects' own rowid may change on VACUUM).
CREATE TABLE search_docs (
    id     INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    key    TEXT NOT NULL,
    UNIQUE (bucket, key)
);

-- Contentless: the words are only indexed, not stored twice. No diacritics folding, so
-- Cyrillic й stays distinct from и, as on PostgreSQL's `simple` configuration.
CREATE VIRTUAL TABLE search_fts USING fts5(
    doc,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- attr.<name> and tag.<key> filters: kind 'a' = custom attribute, 't' = tag. num_value is set
-- when the value reads as a decimal number, for numeric .gte/.lte.
CREATE TABLE search_attrs (
    bucket    TEXT NOT NULL,
    key       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    num_value REAL,
    PRIMARY KEY (bucket, key, kind, name)
) WITHOUT ROWID;
CREATE INDEX search_attrs_value ON search_attrs (kind, name, value);
CREATE INDEX search_attrs_num ON search_attrs (kind, name, num_value) WHERE num_value IS NOT NULL;

-- Sorts by created time and size within a bucket (key order is the primary key).
CREATE INDEX objects_bucket_created ON objects (bucket, created_ms, key);
CREATE INDEX objects_bucket_size ON objects (bucket, size, key);

-- Existing objects are indexed by Store::migrate right after this migration.
INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending');
