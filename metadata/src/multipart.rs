use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{map_from_json, map_to_json};
use crate::{Checked, CompletedUpload, MetaError, ObjectRecord, Part, Store, Upload, WriteView};

/// How long a completed upload is remembered for retried Completes.
const COMPLETED_UPLOAD_TTL_MS: i64 = 24 * 3600 * 1000;

macro_rules! upload_cols {
    () => {
        "upload_id, bucket, key, owner_id, owner_name, content_type, http_headers, custom_attributes, checksum_algorithm, created_ms, tags, checksum_type"
    };
}

fn upload_from_row(row: &AnyRow) -> Result<Upload, MetaError> {
    let headers: String = row.try_get("http_headers")?;
    let attrs: String = row.try_get("custom_attributes")?;
    let tags: String = row.try_get("tags")?;
    Ok(Upload {
        upload_id: row.try_get("upload_id")?,
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        content_type: row.try_get("content_type")?,
        http_headers: map_from_json(&headers)?,
        custom_attributes: map_from_json(&attrs)?,
        checksum_algorithm: row.try_get("checksum_algorithm")?,
        tags: map_from_json(&tags)?,
        created_ms: row.try_get("created_ms")?,
        checksum_type: row.try_get("checksum_type")?,
    })
}

fn part_from_row(row: &AnyRow) -> Result<Part, MetaError> {
    let checksums: String = row.try_get("checksums")?;
    Ok(Part {
        upload_id: row.try_get("upload_id")?,
        part_number: row.try_get("part_number")?,
        size: row.try_get("size")?,
        etag: row.try_get("etag")?,
        checksums: map_from_json(&checksums)?,
        created_ms: row.try_get("created_ms")?,
    })
}

impl Store {
    pub async fn create_upload(&self, u: &Upload) -> Result<(), MetaError> {
        sqlx::query(concat!(
            "INSERT INTO multipart_uploads (",
            upload_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&u.upload_id)
        .bind(&u.bucket)
        .bind(&u.key)
        .bind(&u.owner_id)
        .bind(&u.owner_name)
        .bind(&u.content_type)
        .bind(map_to_json(&u.http_headers))
        .bind(map_to_json(&u.custom_attributes))
        .bind(&u.checksum_algorithm)
        .bind(u.created_ms)
        .bind(map_to_json(&u.tags))
        .bind(&u.checksum_type)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_upload(&self, upload_id: &str) -> Result<Option<Upload>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_cols!(),
            " FROM multipart_uploads WHERE upload_id = $1"
        ))
        .bind(upload_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    /// Uploads of a bucket in (key, upload_id) order, after the given markers.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_id_marker: &str,
        limit: i64,
    ) -> Result<Vec<Upload>, MetaError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_cols!(),
            " FROM multipart_uploads WHERE bucket = $1 AND key >= $2 \
              AND (key > $3 OR (key = $3 AND upload_id > $4)) \
              ORDER BY key, upload_id LIMIT $5"
        ))
        .bind(bucket)
        .bind(prefix)
        .bind(key_marker)
        .bind(upload_id_marker)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let u = upload_from_row(row)?;
            if !u.key.starts_with(prefix) {
                break;
            }
            out.push(u);
        }
        Ok(out)
    }

    /// Records a part; a re-upload of the same number replaces it. `NotFound` when the upload
    /// is gone (aborted, expired or completed): the upload row is locked for the insert, so a
    /// part and the end of its upload never both win.
    pub async fn put_part(&self, p: &Part) -> Result<(), MetaError> {
        let mut tx = self.begin_write().await?;
        // SQLite needs no lock: `BEGIN IMMEDIATE` already holds the only write lock.
        let exists = match self.kind() {
            crate::DbKind::Postgres => {
                "SELECT upload_id FROM multipart_uploads WHERE upload_id = $1 FOR SHARE"
            }
            crate::DbKind::Sqlite => "SELECT upload_id FROM multipart_uploads WHERE upload_id = $1",
        };
        if sqlx::query(exists)
            .bind(&p.upload_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(MetaError::NotFound(format!("upload '{}'", p.upload_id)));
        }
        sqlx::query(
            "INSERT INTO multipart_parts (upload_id, part_number, size, etag, checksums, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (upload_id, part_number) DO UPDATE SET \
             size = excluded.size, etag = excluded.etag, checksums = excluded.checksums, created_ms = excluded.created_ms",
        )
        .bind(&p.upload_id)
        .bind(p.part_number)
        .bind(p.size)
        .bind(&p.etag)
        .bind(map_to_json(&p.checksums))
        .bind(p.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_parts(
        &self,
        upload_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Part>, MetaError> {
        let rows = sqlx::query(
            "SELECT upload_id, part_number, size, etag, checksums, created_ms FROM multipart_parts \
             WHERE upload_id = $1 AND part_number > $2 ORDER BY part_number LIMIT $3",
        )
        .bind(upload_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(part_from_row).collect()
    }

    /// Forgets an upload and its parts; true if it existed.
    pub async fn delete_upload(&self, upload_id: &str) -> Result<bool, MetaError> {
        self.delete_upload_if(upload_id, None).await
    }

    /// As `delete_upload`, but only if the upload began before `begun_before` (ms), when
    /// given: the decision to expire an upload is made here, in the deleting transaction.
    pub async fn delete_upload_if(
        &self,
        upload_id: &str,
        begun_before: Option<i64>,
    ) -> Result<bool, MetaError> {
        let mut tx = self.begin_write().await?;
        // The upload row first: its row lock orders this against `put_part` (PostgreSQL), so
        // the parts deleted next include every part recorded before.
        let res =
            sqlx::query("DELETE FROM multipart_uploads WHERE upload_id = $1 AND created_ms < $2")
                .bind(upload_id)
                .bind(begun_before.unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        if res.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM multipart_parts WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Atomically turns an upload into an object: the upload disappears and the object
    /// appears (replacing any earlier one, which is returned) in one transaction.
    /// Fails with NotFound if the upload was completed or aborted meanwhile.
    /// `rule` decides, inside the transaction, whether the object may be written (see
    /// `put_object_if`); when it refuses, the upload stays as it was.
    pub async fn complete_upload<E>(
        &self,
        upload_id: &str,
        rec: &ObjectRecord,
        rule: impl FnOnce(WriteView<'_>) -> Result<(), E> + Send,
    ) -> Result<Option<ObjectRecord>, Checked<E>> {
        let mut tx = self.begin_write().await?;
        // The upload row first, as in `delete_upload_if`.
        let res = sqlx::query("DELETE FROM multipart_uploads WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(MetaError::from)?;
        if res.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("upload '{upload_id}'")).into());
        }
        sqlx::query("DELETE FROM multipart_parts WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(MetaError::from)?;
        let old = self.upsert_object_tx(&mut tx, rec, rule).await?;
        // Remembered for retries; expired records go in the same (indexed, cheap) step.
        sqlx::query("DELETE FROM completed_uploads WHERE completed_ms < $1")
            .bind(rec.updated_ms - COMPLETED_UPLOAD_TTL_MS)
            .execute(&mut *tx)
            .await
            .map_err(MetaError::from)?;
        sqlx::query(
            "INSERT INTO completed_uploads (upload_id, bucket, key, file_id, etag, completed_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(upload_id)
        .bind(&rec.bucket)
        .bind(&rec.key)
        .bind(&rec.file_id)
        .bind(&rec.etag)
        .bind(rec.updated_ms)
        .execute(&mut *tx)
        .await
        .map_err(MetaError::from)?;
        tx.commit().await.map_err(MetaError::from)?;
        Ok(old)
    }

    /// An upload completed within the last day, for answering a retried Complete.
    pub async fn completed_upload(
        &self,
        upload_id: &str,
    ) -> Result<Option<CompletedUpload>, MetaError> {
        let row = sqlx::query(
            "SELECT upload_id, bucket, key, file_id, etag, completed_ms FROM completed_uploads \
             WHERE upload_id = $1 AND completed_ms >= $2",
        )
        .bind(upload_id)
        .bind(crate::now_ms() - COMPLETED_UPLOAD_TTL_MS)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CompletedUpload {
                upload_id: r.try_get("upload_id")?,
                bucket: r.try_get("bucket")?,
                key: r.try_get("key")?,
                file_id: r.try_get("file_id")?,
                etag: r.try_get("etag")?,
                completed_ms: r.try_get("completed_ms")?,
            })
        })
        .transpose()
    }
}
