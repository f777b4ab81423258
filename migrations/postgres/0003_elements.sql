-- Bucket policies set with PutBucketPolicy: the document as given (validated), per element.
-- The element's mode statements are not stored: they follow from storage_elements.mode.
CREATE TABLE bucket_policies (
    bucket     TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
