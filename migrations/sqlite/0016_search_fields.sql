-- Search relevance and size (issue 9), SQLite. The full text gets one FTS5 column per field of
-- the document (file name, folders, the rest: metadata/src/search/text.rs), so relevance is
-- where a word matches, the same on both databases, and a page of the best matches is found
-- without ranking every match. Attribute rows name their object by search_docs.id instead of
-- repeating bucket and key in the row and in its value index (most of the file's size).
DROP TABLE search_fts;
CREATE VIRTUAL TABLE search_fts USING fts5(
    name,
    path,
    rest,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

DROP TABLE search_attrs;
-- kind 'a' = custom attribute, 't' = tag; num_value is set when the value reads as a decimal
-- number, for numeric .gte/.lte.
CREATE TABLE search_attrs (
    doc_id    INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    num_value REAL,
    PRIMARY KEY (doc_id, kind, name)
) WITHOUT ROWID;
CREATE INDEX search_attrs_value ON search_attrs (kind, name, value);
CREATE INDEX search_attrs_num ON search_attrs (kind, name, num_value) WHERE num_value IS NOT NULL;

-- Both are filled again from the objects rows by Store::migrate right after this migration.
INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending')
    ON CONFLICT (name) DO NOTHING;
