use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::model::{map_from_json, map_to_json};
use crate::{MetaError, ObjectRecord, Store};

macro_rules! object_cols {
    () => {
        "bucket, key, file_id, storage_path, size, etag, sha256, content_type, http_headers, checksums, custom_attributes, owner_id, owner_name, parts_count, created_ms, updated_ms"
    };
}
pub(crate) use object_cols;

pub(crate) fn object_from_row(row: &AnyRow) -> Result<ObjectRecord, MetaError> {
    let http_headers: String = row.try_get("http_headers")?;
    let checksums: String = row.try_get("checksums")?;
    let attrs: String = row.try_get("custom_attributes")?;
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
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        parts_count: row.try_get("parts_count")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
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

    /// Inserts or replaces the object's row and adjusts the element's counters, atomically.
    /// Returns the record it replaced, whose files the caller then removes.
    pub async fn put_object(&self, rec: &ObjectRecord) -> Result<Option<ObjectRecord>, MetaError> {
        let mut tx = self.begin_write().await?;
        let old = self.upsert_object_tx(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(old)
    }

    pub(crate) async fn upsert_object_tx(
        &self,
        tx: &mut Transaction<'static, Any>,
        rec: &ObjectRecord,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        self.lock_key(tx, &rec.bucket, &rec.key).await?;
        let old = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(&rec.bucket)
        .bind(&rec.key)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(object_from_row)
        .transpose()?;
        sqlx::query(concat!(
            "INSERT INTO objects (",
            object_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (bucket, key) DO UPDATE SET file_id = excluded.file_id, \
             storage_path = excluded.storage_path, size = excluded.size, etag = excluded.etag, \
             sha256 = excluded.sha256, content_type = excluded.content_type, \
             http_headers = excluded.http_headers, checksums = excluded.checksums, \
             custom_attributes = excluded.custom_attributes, owner_id = excluded.owner_id, \
             owner_name = excluded.owner_name, parts_count = excluded.parts_count, \
             created_ms = excluded.created_ms, updated_ms = excluded.updated_ms"
        ))
        .bind(&rec.bucket)
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
        .execute(&mut **tx)
        .await?;
        let (bytes, count) = match &old {
            Some(o) => (rec.size - o.size, 0),
            None => (rec.size, 1),
        };
        adjust_usage(tx, &rec.bucket, bytes, count, rec.updated_ms).await?;
        Ok(old)
    }

    /// Removes the object's row; returns it so the caller can remove its files.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
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
        if let Some(o) = &old {
            sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
                .bind(bucket)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            adjust_usage(&mut tx, bucket, -o.size, -1, crate::now_ms()).await?;
        }
        tx.commit().await?;
        Ok(old)
    }
}

async fn adjust_usage(
    tx: &mut Transaction<'static, Any>,
    bucket: &str,
    bytes: i64,
    count: i64,
    now: i64,
) -> Result<(), MetaError> {
    // The quota is checked in the same statement that moves the counter, so concurrent
    // writers cannot overshoot it together (the row lock serialises them).
    let res = sqlx::query(
        "UPDATE storage_elements SET used_bytes = used_bytes + $2, object_count = object_count + $3, updated_ms = $4 \
         WHERE name = $1 AND ($2 <= 0 OR capacity_bytes IS NULL OR used_bytes + $2 <= capacity_bytes)",
    )
    .bind(bucket)
    .bind(bytes)
    .bind(count)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() == 0 {
        let row =
            sqlx::query("SELECT capacity_bytes, used_bytes FROM storage_elements WHERE name = $1")
                .bind(bucket)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(row) = row {
            let capacity: Option<i64> = row.try_get("capacity_bytes")?;
            return Err(MetaError::QuotaExceeded {
                element: bucket.to_owned(),
                capacity: capacity.unwrap_or_default(),
                used: row.try_get("used_bytes")?,
                needed: bytes,
            });
        }
    }
    Ok(())
}
