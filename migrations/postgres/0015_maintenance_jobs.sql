-- Maintenance jobs started over the admin API (verify, rebuild, import). They live in the
-- index, not in a node's memory, so every node sharing the database answers for every job.
CREATE TABLE maintenance_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    -- The element the job is about; NULL = every element.
    element      TEXT,
    -- The request as JSON.
    params       TEXT NOT NULL,
    -- queued, running, succeeded, failed.
    status       TEXT NOT NULL,
    -- The node running it (informational).
    node         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    started_ms   BIGINT,
    finished_ms  BIGINT,
    -- Written with the progress about once a second while the job runs; a running job whose
    -- heartbeat stopped belongs to a node that died, and is failed by whoever notices.
    heartbeat_ms BIGINT NOT NULL,
    progress     TEXT,
    report       TEXT,
    error        TEXT
);
CREATE INDEX maintenance_jobs_recent ON maintenance_jobs (created_ms);
CREATE INDEX maintenance_jobs_live ON maintenance_jobs (status, heartbeat_ms);

-- One row per element a rebuild or import is working on: the primary key lets only one such
-- job hold an element. Written in the transaction that creates the job, removed in the one
-- that ends it.
CREATE TABLE maintenance_locks (
    element TEXT PRIMARY KEY NOT NULL,
    job_id  TEXT NOT NULL REFERENCES maintenance_jobs (id)
);
CREATE INDEX maintenance_locks_job ON maintenance_locks (job_id);
