-- Archive restores (issue 4): the state of an object's last RestoreObject, a cache of the
-- `restore` record in its attr.json. restore_status NULL = never restored; timestamps in ms.
ALTER TABLE objects ADD COLUMN restore_status TEXT;
ALTER TABLE objects ADD COLUMN restore_days BIGINT;
ALTER TABLE objects ADD COLUMN restore_requested_ms BIGINT;
ALTER TABLE objects ADD COLUMN restore_requested_by TEXT;
ALTER TABLE objects ADD COLUMN restore_completed_ms BIGINT;
ALTER TABLE objects ADD COLUMN restore_expires_ms BIGINT;
-- Start-up resumes the ongoing restores: find them without scanning every object.
CREATE INDEX objects_restore_ongoing ON objects (bucket, key) WHERE restore_status = 'ongoing';
