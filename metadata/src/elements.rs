use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::is_unique_violation;
use crate::{Element, MetaError, Mode, Store, now_ms};

macro_rules! element_cols {
    () => {
        "name, mode, backend, capacity_bytes, used_bytes, object_count, description, created_by, created_ms, updated_ms, mode_changed_ms"
    };
}

fn element_from_row(row: &AnyRow) -> Result<Element, MetaError> {
    let mode: String = row.try_get("mode")?;
    Ok(Element {
        name: row.try_get("name")?,
        mode: mode.parse().map_err(MetaError::corrupt)?,
        backend: row.try_get("backend")?,
        capacity_bytes: row.try_get("capacity_bytes")?,
        used_bytes: row.try_get("used_bytes")?,
        object_count: row.try_get("object_count")?,
        description: row.try_get("description")?,
        created_by: row.try_get("created_by")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        mode_changed_ms: row.try_get("mode_changed_ms")?,
    })
}

/// What a new storage element is created with.
#[derive(Debug, Clone)]
pub struct NewElement {
    pub name: String,
    pub mode: Mode,
    pub backend: String,
    pub capacity_bytes: Option<i64>,
    pub description: Option<String>,
    pub created_by: String,
}

impl Store {
    pub async fn create_element(&self, new: &NewElement) -> Result<Element, MetaError> {
        let now = now_ms();
        let res = sqlx::query(concat!(
            "INSERT INTO storage_elements (",
            element_cols!(),
            ") VALUES ($1, $2, $3, $4, 0, 0, $5, $6, $7, $7, NULL)"
        ))
        .bind(&new.name)
        .bind(new.mode.as_str())
        .bind(&new.backend)
        .bind(new.capacity_bytes)
        .bind(&new.description)
        .bind(&new.created_by)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(MetaError::AlreadyExists(format!(
                    "storage element '{}'",
                    new.name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.get_element(&new.name)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("storage element '{}'", new.name)))
    }

    pub async fn get_element(&self, name: &str) -> Result<Option<Element>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            element_cols!(),
            " FROM storage_elements WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(element_from_row).transpose()
    }

    pub async fn list_elements(&self) -> Result<Vec<Element>, MetaError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            element_cols!(),
            " FROM storage_elements ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(element_from_row).collect()
    }

    /// Removes an element that holds no objects, with its unfinished uploads.
    pub async fn delete_element(&self, name: &str) -> Result<(), MetaError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT object_count FROM storage_elements WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(MetaError::NotFound(format!("storage element '{name}'")));
        };
        let count: i64 = row.try_get("object_count")?;
        let any_object = sqlx::query("SELECT key FROM objects WHERE bucket = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if count > 0 || any_object.is_some() {
            return Err(MetaError::NotEmpty(name.to_owned()));
        }
        sqlx::query(
            "DELETE FROM multipart_parts WHERE upload_id IN (SELECT upload_id FROM multipart_uploads WHERE bucket = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM multipart_uploads WHERE bucket = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM storage_elements WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
