-- Background scrub (issue 10, item 8; gateway/src/scrub.rs, metadata/src/scrub.rs).

-- What the scrub found wrong with the object's data file (size, checksum, missing file,
-- unreadable sidecar); NULL when nothing. Kept by rewrites of the same file (tags, a rebuild
-- that repairs the row), cleared by an overwrite (a new file) and by a scrub that finds the
-- file sound again (restored from a backup).
ALTER TABLE objects ADD COLUMN damage TEXT;

-- Where the scrub of the whole index stands, shared by every node on this index: each node
-- claims the next keys in (bucket, key) order by moving this one row in its own transaction,
-- so nodes scrub disjoint batches and a restart continues where the last batch began.
CREATE TABLE scrub_cursor (
    id         INTEGER PRIMARY KEY,
    bucket     TEXT NOT NULL,
    key        TEXT NOT NULL,
    pass       BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
INSERT INTO scrub_cursor (id, bucket, key, pass, updated_ms) VALUES (1, '', '', 0, 0);
