-- Files of deleted objects not yet removed from disk. Written in the same transaction that
-- removes the object's row, cleared once the files are gone; start-up recovery finishes what a
-- crash left here, so a deleted object's sidecar is never rolled forward again.
CREATE TABLE pending_deletes (
    bucket       TEXT NOT NULL,
    storage_path TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (bucket, storage_path)
);
