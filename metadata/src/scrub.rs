//! What the background scrub keeps in the index: its shared position (table `scrub_cursor`)
//! and the damage it found on an object (column `objects.damage`, migration 0014).

use sqlx::Row;

use crate::db::DbKind;
use crate::objects::{object_cols, object_from_row};
use crate::{MetaError, ObjectRecord, Store, now_ms};

/// One object to re-read, as the index knew it when the batch was claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubItem {
    pub bucket: String,
    pub key: String,
    pub file_id: String,
    pub storage_path: String,
    pub size: i64,
    pub sha256: String,
    /// What an earlier scrub found wrong, if anything.
    pub damage: Option<String>,
}

/// A claimed batch: the objects after the shared cursor, and which pass they belong to.
#[derive(Debug, Clone, Default)]
pub struct ScrubBatch {
    pub pass: i64,
    pub items: Vec<ScrubItem>,
    /// Set when the cursor had reached the end and went back to the start: a pass ended.
    pub wrapped: bool,
}

impl Store {
    /// Claims the next `limit` objects in (bucket, key) order after the shared cursor and
    /// moves the cursor past them, in one transaction that holds the cursor row: nodes on one
    /// index claim disjoint batches. At the end the cursor goes back to the start and the
    /// pass number goes up (the returned batch is then empty, with `wrapped` set).
    pub async fn claim_scrub_batch(&self, limit: i64) -> Result<ScrubBatch, MetaError> {
        let mut tx = self.begin_write().await?;
        // SQLite's BEGIN IMMEDIATE already holds the only write lock.
        let sql = match self.kind() {
            DbKind::Postgres => {
                "SELECT bucket, key, pass FROM scrub_cursor WHERE id = 1 FOR UPDATE"
            }
            DbKind::Sqlite => "SELECT bucket, key, pass FROM scrub_cursor WHERE id = 1",
        };
        let row = sqlx::query(sql).fetch_one(&mut *tx).await?;
        let (bucket, key, pass): (String, String, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let rows = sqlx::query(
            "SELECT bucket, key, file_id, storage_path, size, sha256, damage FROM objects \
             WHERE bucket > $1 OR (bucket = $1 AND key > $2) ORDER BY bucket, key LIMIT $3",
        )
        .bind(&bucket)
        .bind(&key)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(ScrubItem {
                    bucket: r.try_get("bucket")?,
                    key: r.try_get("key")?,
                    file_id: r.try_get("file_id")?,
                    storage_path: r.try_get("storage_path")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    damage: r.try_get("damage")?,
                })
            })
            .collect::<Result<Vec<_>, MetaError>>()?;
        let (next_bucket, next_key, next_pass, wrapped) = match items.last() {
            Some(last) => (last.bucket.clone(), last.key.clone(), pass, false),
            None => (String::new(), String::new(), pass + 1, true),
        };
        sqlx::query(
            "UPDATE scrub_cursor SET bucket = $1, key = $2, pass = $3, updated_ms = $4 WHERE id = 1",
        )
        .bind(&next_bucket)
        .bind(&next_key)
        .bind(next_pass)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ScrubBatch {
            pass,
            items,
            wrapped,
        })
    }

    /// Records `what` on the object, only while it is still stored as `file_id` (an
    /// overwrite or delete since the read wins). Returns whether the mark is new or changed.
    pub async fn mark_damaged(
        &self,
        bucket: &str,
        key: &str,
        file_id: &str,
        what: &str,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE objects SET damage = $4 WHERE bucket = $1 AND key = $2 AND file_id = $3 \
             AND (damage IS NULL OR damage <> $4)",
        )
        .bind(bucket)
        .bind(key)
        .bind(file_id)
        .bind(what)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the mark of an object whose file reads back sound again (restored from a
    /// backup). Returns whether there was one.
    pub async fn clear_damage(
        &self,
        bucket: &str,
        key: &str,
        file_id: &str,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE objects SET damage = NULL WHERE bucket = $1 AND key = $2 AND file_id = $3 \
             AND damage IS NOT NULL",
        )
        .bind(bucket)
        .bind(key)
        .bind(file_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The object's row and the damage recorded on it, in one read (GET and HEAD).
    pub async fn get_object_marked(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectRecord, Option<String>)>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            ", damage FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((object_from_row(&r)?, r.try_get("damage")?)))
            .transpose()
    }

    /// The damage recorded on the object stored as `file_id`, if any.
    pub async fn damage_of(
        &self,
        bucket: &str,
        key: &str,
        file_id: &str,
    ) -> Result<Option<String>, MetaError> {
        let row = sqlx::query(
            "SELECT damage FROM objects WHERE bucket = $1 AND key = $2 AND file_id = $3",
        )
        .bind(bucket)
        .bind(key)
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("damage")?,
            None => None,
        })
    }
}
