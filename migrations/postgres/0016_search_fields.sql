-- Search relevance (issue 9), PostgreSQL. The document's tsvector is now written by ArtStore as
-- a literal whose words carry their field as a weight (A file name, B folders, D the rest:
-- metadata/src/search/postgres.rs), so relevance is where a word matches, the same on both
-- databases, and a page of the best matches is found without ranking every match. Every
-- search row is written again from the objects rows by Store::migrate right after this
-- migration.
INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending')
    ON CONFLICT (name) DO NOTHING;
