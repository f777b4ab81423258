use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{map_from_json, map_to_json, runs_from_json, runs_to_json};
use crate::{DeleteIf, MetaError, Mode, ObjectRecord, RestoreState, Store};

macro_rules! object_cols {
    () => {
        "bucket, key, file_id, storage_path, size, etag, sha256, content_type, http_headers, checksums, custom_attributes, owner_id, owner_name, parts_count, created_ms, updated_ms, restore_status, restore_days, restore_requested_ms, restore_requested_by, restore_completed_ms, restore_expires_ms, tags, part_sizes"
    };
}
pub(crate) use object_cols;

pub(crate) fn object_from_row(row: &AnyRow) -> Result<ObjectRecord, MetaError> {
    let http_headers: String = row.try_get("http_headers")?;
    let checksums: String = row.try_get("checksums")?;
    let attrs: String = row.try_get("custom_attributes")?;
    let tags: String = row.try_get("tags")?;
    Ok(ObjectRecord {
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        file_id: row.try_get("file_id")?,
        storage_path: row.try_get("storage_path")?,
        size: row.try_get("size")?,
        etag: row.try_get("etag")?,
        sha256: row.try_get("sha256")?,
        content_type: row.try_get("content_type")?,
        http_headers: map_from_json(&http_headers)?,
        checksums: map_from_json(&checksums)?,
        custom_attributes: map_from_json(&attrs)?,
        tags: map_from_json(&tags)?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        parts_count: row.try_get("parts_count")?,
        part_sizes: runs_from_json(row.try_get::<Option<String>, _>("part_sizes")?.as_deref())?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        restore: restore_from_row(row)?,
    })
}

fn restore_from_row(row: &AnyRow) -> Result<Option<RestoreState>, MetaError> {
    let status: Option<String> = row.try_get("restore_status")?;
    let Some(status) = status else {
        return Ok(None);
    };
    Ok(Some(RestoreState {
        status: status.parse().map_err(MetaError::corrupt)?,
        days: row.try_get::<Option<i64>, _>("restore_days")?.unwrap_or(0),
        requested_ms: row
            .try_get::<Option<i64>, _>("restore_requested_ms")?
            .unwrap_or(0),
        requested_by: row
            .try_get::<Option<String>, _>("restore_requested_by")?
            .unwrap_or_default(),
        completed_ms: row.try_get("restore_completed_ms")?,
        expires_ms: row.try_get("restore_expires_ms")?,
    }))
}

/// Columns of [`object_cols`], one row's worth of bound values.
pub(crate) const OBJECT_COLS: usize = 24;

/// Binds `rec` as the next [`OBJECT_COLS`] values, in the order of [`object_cols`].
pub(crate) fn bind_object<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    rec: &'q ObjectRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&rec.bucket)
        .bind(&rec.key)
        .bind(&rec.file_id)
        .bind(&rec.storage_path)
        .bind(rec.size)
        .bind(&rec.etag)
        .bind(&rec.sha256)
        .bind(&rec.content_type)
        .bind(map_to_json(&rec.http_headers))
        .bind(map_to_json(&rec.checksums))
        .bind(map_to_json(&rec.custom_attributes))
        .bind(&rec.owner_id)
        .bind(&rec.owner_name)
        .bind(rec.parts_count)
        .bind(rec.created_ms)
        .bind(rec.updated_ms)
        .bind(rec.restore.as_ref().map(|r| r.status.as_str()))
        .bind(rec.restore.as_ref().map(|r| r.days))
        .bind(rec.restore.as_ref().map(|r| r.requested_ms))
        .bind(rec.restore.as_ref().map(|r| r.requested_by.clone()))
        .bind(rec.restore.as_ref().and_then(|r| r.completed_ms))
        .bind(rec.restore.as_ref().and_then(|r| r.expires_ms))
        .bind(map_to_json(&rec.tags))
        .bind(runs_to_json(&rec.part_sizes))
}

impl Store {
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(object_from_row).transpose()
    }

    /// Inserts or replaces the object's row and adjusts the element's counters, atomically,
    /// with no write rule (recovery and rebuild, which restore what the sidecars say).
    /// Returns the record it replaced, whose files the caller then removes.
    pub async fn put_object(&self, rec: &ObjectRecord) -> Result<Option<ObjectRecord>, MetaError> {
        self.put_object_if(rec, |_| Ok::<(), std::convert::Infallible>(()))
            .await
            .map_err(|e| match e {
                Checked::Index(e) => e,
                Checked::Refused(never) => match never {},
            })
    }

    /// As `put_object`, but only if `rule` accepts the key and element as they are inside
    /// the committing transaction (the key locked, the element row locked), so concurrent
    /// writers cannot both pass a rule such as "only if absent" or "no overwrite".
    pub async fn put_object_if<E>(
        &self,
        rec: &ObjectRecord,
        rule: impl FnOnce(WriteView<'_>) -> Result<(), E> + Send,
    ) -> Result<Option<ObjectRecord>, Checked<E>> {
        let mut tx = self.begin_write().await?;
        let old = self.upsert_object_tx(&mut tx, rec, rule).await?;
        tx.commit().await.map_err(MetaError::from)?;
        Ok(old)
    }

    /// Many records in one transaction (bulk adoption of existing files): `rule` sees each
    /// record and the object at its key inside the transaction; a refused record is left out
    /// (nothing of it written) and its refusal returned in its place. Any index error rolls the
    /// whole batch back.
    pub async fn put_objects_if<E>(
        &self,
        recs: &[ObjectRecord],
        rule: impl Fn(&ObjectRecord, Option<&ObjectRecord>) -> Result<(), E> + Send + Sync,
    ) -> Result<Vec<Result<(), E>>, MetaError> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(recs.len());
        for rec in recs {
            self.lock_key(&mut tx, &rec.bucket, &rec.key).await?;
            let current = self.object_tx(&mut tx, &rec.bucket, &rec.key).await?;
            if let Err(e) = rule(rec, current.as_ref()) {
                out.push(Err(e));
                continue;
            }
            match self
                .upsert_object_tx(&mut tx, rec, |_| Ok::<(), std::convert::Infallible>(()))
                .await
            {
                Ok(_) => out.push(Ok(())),
                Err(Checked::Index(e)) => return Err(e),
                Err(Checked::Refused(never)) => match never {},
            }
        }
        tx.commit().await.map_err(MetaError::from)?;
        Ok(out)
    }

    pub(crate) async fn upsert_object_tx<E>(
        &self,
        tx: &mut crate::db::WriteTx,
        rec: &ObjectRecord,
        rule: impl FnOnce(WriteView<'_>) -> Result<(), E> + Send,
    ) -> Result<Option<ObjectRecord>, Checked<E>> {
        self.lock_key(tx, &rec.bucket, &rec.key).await?;
        let old = self.object_tx(tx, &rec.bucket, &rec.key).await?;
        let (bytes, count) = match &old {
            Some(o) => (rec.size - o.size, 0),
            None => (rec.size, 1),
        };
        // Moving the counters locks the element row, so the mode read here holds until commit.
        let mode = adjust_usage(tx, &rec.bucket, bytes, count, rec.updated_ms).await?;
        rule(WriteView {
            current: old.as_ref(),
            mode,
        })
        .map_err(Checked::Refused)?;
        // A scrub's damage mark belongs to the data file: a new file (an overwrite) clears
        // it, a rewrite of the same file's row (tags, a rebuild) keeps it.
        let q = sqlx::query(concat!(
            "INSERT INTO objects (",
            object_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24) \
             ON CONFLICT (bucket, key) DO UPDATE SET file_id = excluded.file_id, \
             storage_path = excluded.storage_path, size = excluded.size, etag = excluded.etag, \
             sha256 = excluded.sha256, content_type = excluded.content_type, \
             http_headers = excluded.http_headers, checksums = excluded.checksums, \
             custom_attributes = excluded.custom_attributes, owner_id = excluded.owner_id, \
             owner_name = excluded.owner_name, parts_count = excluded.parts_count, \
             created_ms = excluded.created_ms, updated_ms = excluded.updated_ms, \
             restore_status = excluded.restore_status, restore_days = excluded.restore_days, \
             restore_requested_ms = excluded.restore_requested_ms, \
             restore_requested_by = excluded.restore_requested_by, \
             restore_completed_ms = excluded.restore_completed_ms, \
             restore_expires_ms = excluded.restore_expires_ms, tags = excluded.tags, \
             part_sizes = excluded.part_sizes, \
             damage = CASE WHEN objects.file_id = excluded.file_id THEN objects.damage END"
        ));
        bind_object(q, rec)
            .execute(&mut **tx)
            .await
            .map_err(MetaError::from)?;
        self.index_search(tx, rec, &rec.tags).await?;
        // The replaced version's files are garbage from this commit on: recorded with it, so
        // a crash before they are removed leaves recovery a list, not a leak.
        if let Some(o) = old.as_ref().filter(|o| o.storage_path != rec.storage_path) {
            record_obsolete(tx, &o.bucket, &o.storage_path).await?;
        }
        Ok(old)
    }

    /// Changes an object's attributes in place (same data file). `change` derives the new
    /// record from the object as it is now (or refuses), `write` makes its sidecar durable,
    /// then the row is updated, all while the key stays locked: no overwrite or delete can
    /// slip in between, and a rewritten sidecar never outlives its data file. Holds the write
    /// lock across `write`, which is why only small sidecar rewrites belong here.
    pub async fn update_object_with<E, F, Fut>(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(WriteView<'_>) -> Result<ObjectRecord, E> + Send,
        write: F,
    ) -> Result<ObjectRecord, Checked<E>>
    where
        F: FnOnce(ObjectRecord) -> Fut + Send,
        Fut: std::future::Future<Output = Result<ObjectRecord, E>> + Send,
    {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, bucket, key).await?;
        let current = self.object_tx(&mut tx, bucket, key).await?;
        let mode = adjust_usage(&mut tx, bucket, 0, 0, crate::now_ms()).await?;
        let new = change(WriteView {
            current: current.as_ref(),
            mode,
        })
        .map_err(Checked::Refused)?;
        let same_file = current.as_ref().is_some_and(|c| {
            c.file_id == new.file_id && c.storage_path == new.storage_path && c.key == new.key
        });
        if !same_file || new.bucket != bucket {
            return Err(MetaError::NotFound(format!("object version '{}'", new.file_id)).into());
        }
        let new = write(new).await.map_err(Checked::Refused)?;
        self.upsert_object_tx(&mut tx, &new, |_| Ok::<(), E>(()))
            .await?;
        tx.commit().await.map_err(MetaError::from)?;
        Ok(new)
    }

    /// The object's row as this transaction sees it.
    pub(crate) async fn object_tx(
        &self,
        tx: &mut crate::db::WriteTx,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(object_from_row)
        .transpose()
    }

    /// Replaces the restore state of the object stored as `file_id`, only if its current state
    /// is still `expected` (compared by status and request time): a compare-and-set, so two
    /// nodes cannot both start or finish the same restore. Returns whether the row changed.
    pub async fn set_restore(
        &self,
        bucket: &str,
        key: &str,
        file_id: &str,
        expected: Option<&RestoreState>,
        new: &RestoreState,
    ) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "UPDATE objects SET restore_status = $4, restore_days = $5, restore_requested_ms = $6, \
             restore_requested_by = $7, restore_completed_ms = $8, restore_expires_ms = $9 \
             WHERE bucket = $1 AND key = $2 AND file_id = $3 \
             AND COALESCE(restore_status, '') = $10 AND COALESCE(restore_requested_ms, -1) = $11",
        )
        .bind(bucket)
        .bind(key)
        .bind(file_id)
        .bind(new.status.as_str())
        .bind(new.days)
        .bind(new.requested_ms)
        .bind(&new.requested_by)
        .bind(new.completed_ms)
        .bind(new.expires_ms)
        .bind(expected.map_or("", |r| r.status.as_str()))
        .bind(expected.map_or(-1, |r| r.requested_ms))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Objects whose restore was still being verified (to resume them at start-up).
    pub async fn ongoing_restores(&self) -> Result<Vec<ObjectRecord>, MetaError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            // A literal, not a parameter, so both databases can use the partial index.
            " FROM objects WHERE restore_status = 'ongoing' ORDER BY bucket, key"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_from_row).collect()
    }

    /// Removes the object's row; returns it so the caller can remove its files.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        self.delete_object_if(bucket, key, &DeleteIf::default())
            .await
    }

    /// As `delete_object`, only if the current object meets `cond`, decided under the
    /// key's lock: NotFound if a condition is given and there is no object,
    /// PreconditionFailed if it does not hold (nothing is deleted either way).
    pub async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        cond: &DeleteIf,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, bucket, key).await?;
        let old = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(object_from_row)
        .transpose()?;
        if !cond.is_empty() {
            match &old {
                None => return Err(MetaError::NotFound(format!("object '{key}'"))),
                Some(o) if !cond.holds(o) => {
                    return Err(MetaError::PreconditionFailed(format!("object '{key}'")));
                }
                Some(_) => {}
            }
        }
        if let Some(o) = &old {
            sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
                .bind(bucket)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            self.unindex_search(&mut tx, bucket, key).await?;
            adjust_usage(&mut tx, bucket, -o.size, -1, crate::now_ms()).await?;
            // Until the files are gone, recovery must finish this delete, not undo it.
            record_obsolete(&mut tx, bucket, &o.storage_path).await?;
        }
        tx.commit().await?;
        Ok(old)
    }

    /// The rows whose files lie in one hour directory (`YYYY/MM/DD/HH`) of the element.
    pub async fn objects_in_dir(
        &self,
        bucket: &str,
        rel_dir: &str,
    ) -> Result<Vec<ObjectRecord>, MetaError> {
        // Hour directories are digits and slashes: nothing in the pattern is a wildcard.
        let rows = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE bucket = $1 AND storage_path LIKE $2 ORDER BY key"
        ))
        .bind(bucket)
        .bind(format!("{}/%", rel_dir.trim_end_matches('/')))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_from_row).collect()
    }

    /// Removes the row of an object whose files are gone from disk (a delete whose commit was
    /// lost after its files were removed), only if the key still names that file. Returns
    /// whether a row was removed.
    pub async fn drop_lost_object(
        &self,
        bucket: &str,
        key: &str,
        file_id: &str,
    ) -> Result<bool, MetaError> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, bucket, key).await?;
        let Some(cur) = self
            .object_tx(&mut tx, bucket, key)
            .await?
            .filter(|o| o.file_id == file_id)
        else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2 AND file_id = $3")
            .bind(bucket)
            .bind(key)
            .bind(file_id)
            .execute(&mut *tx)
            .await?;
        self.unindex_search(&mut tx, bucket, key).await?;
        adjust_usage(&mut tx, bucket, -cur.size, -1, crate::now_ms()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Files that a committed delete or overwrite made obsolete and that may still be on
    /// disk: `(bucket, storage_path)`.
    pub async fn pending_deletes(&self) -> Result<Vec<(String, String)>, MetaError> {
        let rows =
            sqlx::query("SELECT bucket, storage_path FROM pending_deletes ORDER BY created_ms")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bucket")?, r.try_get("storage_path")?)))
            .collect()
    }

    /// When the files at `storage_path` were recorded as obsolete (ms), if they still are.
    pub async fn pending_delete_since(
        &self,
        bucket: &str,
        storage_path: &str,
    ) -> Result<Option<i64>, MetaError> {
        let row = sqlx::query(
            "SELECT created_ms FROM pending_deletes WHERE bucket = $1 AND storage_path = $2",
        )
        .bind(bucket)
        .bind(storage_path)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("created_ms")?),
            None => None,
        })
    }

    /// The obsolete files of a deleted or replaced object are gone: forget them.
    pub async fn forget_pending_delete(
        &self,
        bucket: &str,
        storage_path: &str,
    ) -> Result<(), MetaError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM pending_deletes WHERE bucket = $1 AND storage_path = $2")
            .bind(bucket)
            .bind(storage_path)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records, in the committing transaction, that the files at `storage_path` are garbage
/// (table `pending_deletes`, migration 0006); recovery removes whatever a crash left of them.
async fn record_obsolete(
    tx: &mut crate::db::WriteTx,
    bucket: &str,
    storage_path: &str,
) -> Result<(), MetaError> {
    sqlx::query(
        "INSERT INTO pending_deletes (bucket, storage_path, created_ms) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(bucket)
    .bind(storage_path)
    .bind(crate::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the element's counters and returns its mode as of this transaction.
pub(crate) async fn adjust_usage(
    tx: &mut crate::db::WriteTx,
    bucket: &str,
    bytes: i64,
    count: i64,
    now: i64,
) -> Result<Mode, MetaError> {
    // The quota is checked in the same statement that moves the counter, so concurrent
    // writers cannot overshoot it together (the row lock serialises them).
    let moved: Option<String> = sqlx::query_scalar(
        "UPDATE storage_elements SET used_bytes = used_bytes + $2, object_count = object_count + $3, updated_ms = $4 \
         WHERE name = $1 AND ($2 <= 0 OR capacity_bytes IS NULL OR used_bytes + $2 <= capacity_bytes) \
         RETURNING mode",
    )
    .bind(bucket)
    .bind(bytes)
    .bind(count)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(mode) = moved {
        return mode.parse().map_err(MetaError::corrupt);
    }
    let row =
        sqlx::query("SELECT capacity_bytes, used_bytes FROM storage_elements WHERE name = $1")
            .bind(bucket)
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        Some(row) => {
            let capacity: Option<i64> = row.try_get("capacity_bytes")?;
            Err(MetaError::QuotaExceeded {
                element: bucket.to_owned(),
                capacity: capacity.unwrap_or_default(),
                used: row.try_get("used_bytes")?,
                needed: bytes,
            })
        }
        // Deleted meanwhile: an object must never outlive its element.
        None => Err(MetaError::NoSuchElement(bucket.to_owned())),
    }
}

/// What a write rule sees inside the committing transaction.
#[derive(Debug, Clone, Copy)]
pub struct WriteView<'a> {
    /// The object now at the key, if any.
    pub current: Option<&'a ObjectRecord>,
    /// The element's mode now.
    pub mode: Mode,
}

/// A conditional write that did not commit: refused by its rule, or failed in the index.
#[derive(Debug, thiserror::Error)]
pub enum Checked<E> {
    #[error("write refused")]
    Refused(E),
    #[error(transparent)]
    Index(#[from] MetaError),
}

#[cfg(test)]
mod tests {
    use crate::{MasterKey, Mode, NewElement, RestoreStatus, SecretBox};

    use super::*;

    #[tokio::test]
    async fn restore_state_is_a_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &Store::sqlite_url(dir.path()),
            SecretBox::new(&MasterKey::generate()),
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store
            .create_element(&NewElement {
                name: "vault".into(),
                mode: Mode::Ar,
                backend: r#"{"kind":"local"}"#.into(),
                capacity_bytes: None,
                description: None,
                created_by: "t".into(),
            })
            .await
            .unwrap();
        let rec = ObjectRecord {
            bucket: "vault".into(),
            key: "k".into(),
            file_id: "f1".into(),
            storage_path: "2026/01/01/00/k".into(),
            size: 1,
            ..Default::default()
        };
        store.put_object(&rec).await.unwrap();
        let ongoing = RestoreState {
            status: RestoreStatus::Ongoing,
            days: 2,
            requested_ms: 10,
            requested_by: "svc".into(),
            completed_ms: None,
            expires_ms: None,
        };
        assert!(
            store
                .set_restore("vault", "k", "f1", None, &ongoing)
                .await
                .unwrap()
        );
        // A second starter loses; so does a writer that names another file.
        assert!(
            !store
                .set_restore("vault", "k", "f1", None, &ongoing)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_restore("vault", "k", "f0", Some(&ongoing), &ongoing)
                .await
                .unwrap()
        );
        let found = store.ongoing_restores().await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].restore.as_ref(), Some(&ongoing));
        let done = RestoreState {
            status: RestoreStatus::Completed,
            completed_ms: Some(20),
            expires_ms: Some(86_400_000),
            ..ongoing.clone()
        };
        assert!(
            store
                .set_restore("vault", "k", "f1", Some(&ongoing), &done)
                .await
                .unwrap()
        );
        let got = store.get_object("vault", "k").await.unwrap().unwrap();
        assert_eq!(got.restore.as_ref(), Some(&done));
        assert!(got.restore.as_ref().is_some_and(|r| r.is_active(21)));
        assert!(store.ongoing_restores().await.unwrap().is_empty());
        // A new version of the object starts without a restore.
        let newer = ObjectRecord {
            file_id: "f2".into(),
            ..rec
        };
        store.put_object(&newer).await.unwrap();
        let got = store.get_object("vault", "k").await.unwrap().unwrap();
        assert_eq!(got.restore, None);

        // An in-place update derives from the object the key holds now, under its lock.
        let tags: std::collections::BTreeMap<String, String> =
            [("a".to_owned(), "b".to_owned())].into();
        let updated = store
            .update_object_with(
                "vault",
                "k",
                |v| {
                    let mut r = v.current.cloned().ok_or("absent")?;
                    r.tags = tags.clone();
                    Ok::<_, &str>(r)
                },
                |r| async move { Ok(r) },
            )
            .await
            .unwrap();
        assert_eq!(updated.file_id, "f2");
        let got = store.get_object("vault", "k").await.unwrap().unwrap();
        assert_eq!(got.tags, tags);
        // One that names another file changes nothing.
        let stale = store
            .update_object_with(
                "vault",
                "k",
                |v| {
                    let mut r = v.current.cloned().ok_or("absent")?;
                    r.file_id = "f1".into();
                    r.tags.clear();
                    Ok::<_, &str>(r)
                },
                |r| async move { Ok(r) },
            )
            .await;
        assert!(matches!(stale, Err(Checked::Index(MetaError::NotFound(_)))));
        let got = store.get_object("vault", "k").await.unwrap().unwrap();
        assert_eq!(got.tags, tags);
    }
}
