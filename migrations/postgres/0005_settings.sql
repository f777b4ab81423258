-- Facts about the deployment as a whole, shared by every node that uses this index.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
-- Names this deployment's keys in shared services (Redis), so deployments sharing one Redis
-- never count each other's requests.
INSERT INTO settings (name, value) VALUES ('deployment_id', replace(gen_random_uuid()::text, '-', ''));
