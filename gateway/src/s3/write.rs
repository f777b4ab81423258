//! The one write path every new object takes (PutObject, CopyObject, and with a
//! pre-assembled body CompleteMultipartUpload): stage with hashing, verify, commit data and
//! sidecar, then the index row (which records the replaced object's files as obsolete);
//! the replaced object's files go last.

use std::collections::BTreeMap;

use std::sync::Arc;

use artstore_backends::{Backend, Staged, body_stream, storage_name};
use artstore_metadata::{Checked, Identity, MetaError, ObjectRecord, WriteView};
use bytes::Bytes;
use s3s::{S3Result, s3_error};
use uuid::Uuid;

use super::checksum::Declared;
use super::record::{attr_json, precheck_attr_size};
use super::{Gateway, errors};

/// Everything about a new object except its bytes.
pub(crate) struct NewObject {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub http_headers: BTreeMap<String, String>,
    pub custom_attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// What the body's digests and the request decided about a staged object.
pub(crate) struct Finish<'a> {
    pub etag: String,
    pub checksums: BTreeMap<String, String>,
    pub parts_count: Option<i64>,
    /// The multipart upload this object completes, removed in the same transaction.
    pub completes_upload: Option<&'a str>,
}

/// A new object whose data is staged under its final directory.
pub(crate) struct Prepared {
    pub rec: ObjectRecord,
    name: artstore_backends::StorageName,
    /// The element's backend, where the object goes.
    backend: Arc<dyn Backend>,
}

impl Gateway {
    /// Names the object and checks its attr.json will fit, before any byte is stored.
    pub(crate) fn prepare(
        &self,
        new: NewObject,
        who: &Identity,
        algorithms: &[artstore_backends::ChecksumAlgorithm],
        backend: Arc<dyn Backend>,
    ) -> S3Result<Prepared> {
        let now = time::OffsetDateTime::now_utc();
        let file_id = Uuid::now_v7();
        let name = storage_name(&new.key, &who.name, &file_id, now);
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        let rec = ObjectRecord {
            bucket: new.bucket,
            key: new.key,
            file_id: file_id.to_string(),
            storage_path: name.rel_path(),
            content_type: new.content_type,
            http_headers: new.http_headers,
            custom_attributes: new.custom_attributes,
            tags: new.tags,
            owner_id: who.account_id.clone(),
            owner_name: who.name.clone(),
            created_ms: now_ms,
            updated_ms: now_ms,
            ..Default::default()
        };
        precheck_attr_size(&rec, algorithms)?;
        Ok(Prepared { rec, name, backend })
    }

    /// Streams a body into a staged file under the prepared object's directory.
    pub(crate) async fn stage<S, E>(
        &self,
        p: &Prepared,
        body: S,
        declared: &Declared,
    ) -> S3Result<Staged>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        p.backend
            .stage(&p.name, body_stream(body), &declared.algorithms)
            .await
            .map_err(errors::backend)
    }

    /// Where the prepared object goes: its backend and final name (multipart assembly).
    pub(crate) fn target(p: &Prepared) -> (&Arc<dyn Backend>, &artstore_backends::StorageName) {
        (&p.backend, &p.name)
    }

    /// Makes a staged object durable and visible. `rule` decides inside the index transaction
    /// that commits, against the key and element as they are then, whether the write may
    /// happen (mode, conditional headers); the quota is enforced in the same transaction.
    pub(crate) async fn commit(
        &self,
        mut p: Prepared,
        staged: Staged,
        fin: Finish<'_>,
        rule: impl FnOnce(WriteView<'_>) -> S3Result<()> + Send,
    ) -> S3Result<ObjectRecord> {
        let d = &staged.digests;
        p.rec.size = i64::try_from(d.size).unwrap_or(i64::MAX);
        p.rec.etag = fin.etag;
        p.rec.sha256 = d.sha256_hex();
        p.rec.checksums = fin.checksums;
        p.rec.parts_count = fin.parts_count;
        let completes_upload = fin.completes_upload;
        let attr = attr_json(&p.rec);
        p.backend
            .commit(staged, &p.name, &attr)
            .await
            .map_err(errors::backend)?;
        // A completed upload disappears in the same transaction its object appears in.
        let indexed = match completes_upload {
            Some(upload_id) => self.store.complete_upload(upload_id, &p.rec, rule).await,
            None => self.store.put_object_if(&p.rec, rule).await,
        };
        let old = match indexed {
            Ok(old) => old,
            Err(e) => {
                // Not acknowledged, so the files must not stay behind either.
                if let Err(de) = p.backend.delete(&p.rec.storage_path).await {
                    tracing::warn!(error = %de, path = %p.rec.storage_path, "cannot remove unindexed object files");
                }
                return Err(match e {
                    Checked::Refused(e) => e,
                    Checked::Index(MetaError::NotFound(_)) => s3_error!(
                        NoSuchUpload,
                        "The specified upload does not exist. It may have been aborted or completed."
                    ),
                    Checked::Index(MetaError::NoSuchElement(_)) => {
                        s3_error!(NoSuchBucket, "The specified bucket does not exist")
                    }
                    Checked::Index(other) => errors::meta(other),
                });
            }
        };
        // A concurrent `index rebuild` may have indexed this very file already.
        if let Some(old) = old.filter(|o| o.storage_path != p.rec.storage_path) {
            crate::failpoint::crash_point(crate::failpoint::REPLACED_COMMITTED);
            self.remove_obsolete(&old).await;
        }
        Ok(p.rec)
    }

    /// Changes an object's attributes in place (same data file) under its key's lock:
    /// `change` derives the new record from the object and the mode as they are then (or
    /// refuses), its sidecar is rewritten, then its index row, before the lock is released.
    pub(crate) async fn update_in_place(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(WriteView<'_>) -> S3Result<ObjectRecord> + Send,
    ) -> S3Result<ObjectRecord> {
        let res = self
            .store
            .update_object_with(bucket, key, change, |rec| async move {
                let attr = attr_json(&rec);
                self.backend_named(&rec.bucket)
                    .await?
                    .write_attr(&format!("{}.attr.json", rec.storage_path), &attr)
                    .await
                    .map_err(errors::backend)?;
                Ok(rec)
            })
            .await;
        match res {
            Ok(rec) => Ok(rec),
            Err(Checked::Refused(e)) => Err(e),
            Err(Checked::Index(MetaError::NotFound(_))) => {
                Err(s3_error!(NoSuchKey, "The specified key does not exist."))
            }
            Err(Checked::Index(e)) => Err(errors::meta(e)),
        }
    }

    /// Removes a deleted or replaced object's files, then the record of them as obsolete
    /// (written by the committing transaction). Either may fail: the record stays and
    /// start-up recovery finishes the removal.
    pub(crate) async fn remove_obsolete(&self, old: &ObjectRecord) {
        let backend = match self.backend_named(&old.bucket).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, bucket = %old.bucket, path = %old.storage_path, "cannot open the backend to remove obsolete object files; recovery will");
                return;
            }
        };
        match backend.delete(&old.storage_path).await {
            Ok(()) => {
                if let Err(e) = self
                    .store
                    .forget_pending_delete(&old.bucket, &old.storage_path)
                    .await
                {
                    tracing::warn!(error = %e, bucket = %old.bucket, path = %old.storage_path, "cannot clear pending delete");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, bucket = %old.bucket, path = %old.storage_path, "cannot remove obsolete object files; recovery will");
            }
        }
    }
}
