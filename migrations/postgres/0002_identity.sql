-- Token signing keys and the audit log (issue 3). Timestamps are ms since the Unix epoch.

-- RS256 signing keys. The private key (PKCS#8 PEM) is sealed under the master key; the public
-- modulus and exponent are base64url, as published in the JWKS. Old keys stay for verification.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    alg         TEXT NOT NULL,
    private_enc TEXT NOT NULL,
    n           TEXT NOT NULL,
    e           TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY NOT NULL,
    at_ms       BIGINT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    outcome     TEXT NOT NULL,
    source      TEXT,
    request_id  TEXT,
    detail      TEXT
);
CREATE INDEX audit_events_at ON audit_events (at_ms, id);
