-- ArtStore index (SQLite). Timestamps are milliseconds since the Unix epoch (UTC).
-- Keys compare with BINARY collation: UTF-8 byte order, the order S3 lists in.

CREATE TABLE storage_elements (
    name            TEXT PRIMARY KEY NOT NULL,
    mode            TEXT NOT NULL,
    backend         TEXT NOT NULL,
    capacity_bytes  BIGINT,
    used_bytes      BIGINT NOT NULL DEFAULT 0,
    object_count    BIGINT NOT NULL DEFAULT 0,
    description     TEXT,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    mode_changed_ms BIGINT
);

CREATE TABLE mode_changes (
    id          TEXT PRIMARY KEY NOT NULL,
    element     TEXT NOT NULL,
    from_mode   TEXT NOT NULL,
    to_mode     TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    reason      TEXT,
    changed_ms  BIGINT NOT NULL
);
CREATE INDEX mode_changes_element ON mode_changes (element, changed_ms);

CREATE TABLE objects (
    bucket            TEXT NOT NULL,
    key               TEXT NOT NULL,
    file_id           TEXT NOT NULL,
    storage_path      TEXT NOT NULL,
    size              BIGINT NOT NULL,
    etag              TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    http_headers      TEXT NOT NULL,
    checksums         TEXT NOT NULL,
    custom_attributes TEXT NOT NULL,
    owner_id          TEXT NOT NULL,
    owner_name        TEXT NOT NULL,
    parts_count       BIGINT,
    created_ms        BIGINT NOT NULL,
    updated_ms        BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);

CREATE TABLE multipart_uploads (
    upload_id          TEXT PRIMARY KEY NOT NULL,
    bucket             TEXT NOT NULL,
    key                TEXT NOT NULL,
    owner_id           TEXT NOT NULL,
    owner_name         TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    http_headers       TEXT NOT NULL,
    custom_attributes  TEXT NOT NULL,
    checksum_algorithm TEXT,
    created_ms         BIGINT NOT NULL
);
CREATE INDEX multipart_uploads_key ON multipart_uploads (bucket, key, upload_id);

CREATE TABLE multipart_parts (
    upload_id   TEXT NOT NULL,
    part_number BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    etag        TEXT NOT NULL,
    checksums   TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE service_accounts (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    description       TEXT,
    client_id         TEXT NOT NULL UNIQUE,
    secret_enc        TEXT NOT NULL,
    role              TEXT NOT NULL,
    status            TEXT NOT NULL,
    rate_limit        BIGINT,
    secret_expires_ms BIGINT,
    is_system         BIGINT NOT NULL DEFAULT 0,
    created_ms        BIGINT NOT NULL,
    updated_ms        BIGINT NOT NULL
);

CREATE TABLE bucket_grants (
    account_id TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    access     TEXT NOT NULL,
    PRIMARY KEY (account_id, bucket)
);
