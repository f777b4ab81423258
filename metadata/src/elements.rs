use sqlx::Row;
use sqlx::any::AnyRow;

use crate::cache::Change;
use crate::error::is_unique_violation;
use crate::model::{map_from_json, map_to_json};
use crate::{Element, MetaError, Mode, Store, now_ms};

/// The backend description of a local element: under the data dir, or on its own `path`.
pub fn local_backend(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => serde_json::json!({"kind": "local", "path": p}).to_string(),
        None => r#"{"kind":"local"}"#.to_owned(),
    }
}

/// The backend of an element adopted in place from a directory of an earlier ArtStore
/// (`artstore element import`): its legacy sidecars are read with `key_template`.
pub fn imported_backend(path: &std::path::Path, key_template: &str) -> String {
    serde_json::json!({"kind": "local", "path": path, "import": {"key_template": key_template}})
        .to_string()
}

/// The key template of an imported element's backend (see `imported_backend`).
pub fn import_key_template(backend: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(backend).ok()?;
    v.get("import")?
        .get("key_template")?
        .as_str()
        .map(str::to_owned)
}

macro_rules! element_cols {
    () => {
        "name, mode, backend, capacity_bytes, used_bytes, object_count, description, created_by, created_ms, updated_ms, mode_changed_ms, tags, lifecycle"
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
        tags: row
            .try_get::<Option<String>, _>("tags")?
            .map(|t| map_from_json(&t))
            .transpose()?
            .unwrap_or_default(),
        lifecycle: row
            .try_get::<Option<String>, _>("lifecycle")?
            .map(|t| crate::Lifecycle::from_json(&t))
            .transpose()?,
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

/// Inserts a new element row with empty usage; a taken name is `AlreadyExists`.
async fn insert_element<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    new: &NewElement,
    created_ms: i64,
    updated_ms: i64,
    mode_changed_ms: Option<i64>,
) -> Result<(), MetaError> {
    let res = sqlx::query(concat!(
        "INSERT INTO storage_elements (",
        element_cols!(),
        ") VALUES ($1, $2, $3, $4, 0, 0, $5, $6, $7, $8, $9, NULL, NULL)"
    ))
    .bind(&new.name)
    .bind(new.mode.as_str())
    .bind(&new.backend)
    .bind(new.capacity_bytes)
    .bind(&new.description)
    .bind(&new.created_by)
    .bind(created_ms)
    .bind(updated_ms)
    .bind(mode_changed_ms)
    .execute(ex)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(MetaError::AlreadyExists(format!(
            "storage element '{}'",
            new.name
        ))),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    pub async fn create_element(&self, new: &NewElement) -> Result<Element, MetaError> {
        let now = now_ms();
        insert_element(&self.pool, new, now, now, None).await?;
        // A node may hold "no such bucket" for the name.
        self.changed(Change::Element(new.name.clone())).await;
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

    /// The element and its stored bucket policy document, in one round trip (every S3
    /// request needs both).
    pub async fn element_with_policy(
        &self,
        name: &str,
    ) -> Result<Option<(Element, Option<String>)>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            element_cols!(),
            ", (SELECT document FROM bucket_policies WHERE bucket = $1) AS policy_document",
            " FROM storage_elements WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| Ok((element_from_row(r)?, r.try_get("policy_document")?)))
            .transpose()
    }

    /// Every element with its stored bucket policy document, in one round trip (search
    /// decides access per element).
    pub async fn elements_with_policies(
        &self,
    ) -> Result<Vec<(Element, Option<String>)>, MetaError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            element_cols!(),
            ", (SELECT document FROM bucket_policies p WHERE p.bucket = storage_elements.name) \
             AS policy_document FROM storage_elements ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((element_from_row(r)?, r.try_get("policy_document")?)))
            .collect()
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

    /// Removes an element that holds no objects, with its unfinished uploads, bucket policy
    /// and mode history.
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
        sqlx::query("DELETE FROM bucket_policies WHERE bucket = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // A later element of the same name starts with a history of its own.
        sqlx::query("DELETE FROM mode_changes WHERE element = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM storage_elements WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed(Change::Element(name.to_owned())).await;
        Ok(())
    }
}

impl Store {
    /// Re-creates an element row from its `element.json` (index rebuild): the creation time
    /// and mode history come from the document, in one transaction.
    pub async fn restore_element(
        &self,
        new: &NewElement,
        created_ms: Option<i64>,
        history: &[ModeChange],
    ) -> Result<Element, MetaError> {
        let now = now_ms();
        let created = created_ms.unwrap_or(now);
        let mode_changed = history.iter().map(|c| c.changed_ms).max();
        let mut tx = self.begin_write().await?;
        insert_element(&mut *tx, new, created, now, mode_changed).await?;
        for c in history {
            sqlx::query(
                "INSERT INTO mode_changes (id, element, from_mode, to_mode, changed_by, reason, changed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&c.id)
            .bind(&new.name)
            .bind(c.from.as_str())
            .bind(c.to.as_str())
            .bind(&c.changed_by)
            .bind(&c.reason)
            .bind(c.changed_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changed(Change::Element(new.name.clone())).await;
        self.get_element(&new.name)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("storage element '{}'", new.name)))
    }
}

/// Mode transitions an element may make (DESIGN.md §2): `rw → ro`, `ro → ar`, `ro → rw`
/// (the last one only with an explicit confirmation). `edit` never changes, nothing becomes
/// `edit`, and `ar` is terminal.
pub fn allowed_targets(from: Mode) -> &'static [Mode] {
    match from {
        Mode::Rw => &[Mode::Ro],
        Mode::Ro => &[Mode::Ar, Mode::Rw],
        Mode::Edit | Mode::Ar => &[],
    }
}

/// Why a mode change was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ModeChangeError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("storage element '{element}' cannot change from mode {from} to {to}: {}", allowed_text(*.from))]
    Illegal {
        element: String,
        from: Mode,
        to: Mode,
        allowed: Vec<Mode>,
    },
    #[error(
        "storage element '{element}': changing mode ro back to rw makes its objects writable again and needs \"confirm\": true"
    )]
    ConfirmRequired { element: String },
    #[error(transparent)]
    Meta(#[from] MetaError),
}

fn allowed_text(from: Mode) -> String {
    let targets = allowed_targets(from);
    if targets.is_empty() {
        format!("mode {from} is final, no transition is allowed")
    } else {
        let list: Vec<&str> = targets.iter().map(|m| m.as_str()).collect();
        format!("from {from} the allowed targets are: {}", list.join(", "))
    }
}

/// One recorded mode change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModeChange {
    pub id: String,
    pub element: String,
    pub from: Mode,
    pub to: Mode,
    pub changed_by: String,
    pub reason: Option<String>,
    pub changed_ms: i64,
}

impl From<sqlx::Error> for ModeChangeError {
    fn from(e: sqlx::Error) -> Self {
        ModeChangeError::Meta(MetaError::Db(e))
    }
}

impl Store {
    /// Changes an element's mode if the transition is allowed, recording who, when and why.
    pub async fn change_mode(
        &self,
        name: &str,
        to: Mode,
        changed_by: &str,
        reason: Option<&str>,
        confirm: bool,
    ) -> Result<(Element, ModeChange), ModeChangeError> {
        let mut tx = self.begin_write().await?;
        let lock = match self.kind() {
            crate::DbKind::Postgres => {
                "SELECT mode FROM storage_elements WHERE name = $1 FOR UPDATE"
            }
            crate::DbKind::Sqlite => "SELECT mode FROM storage_elements WHERE name = $1",
        };
        let row = sqlx::query(lock)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(ModeChangeError::NotFound(format!(
                "storage element '{name}'"
            )));
        };
        let from: String = row.try_get("mode")?;
        let from: Mode = from.parse().map_err(MetaError::corrupt)?;
        if !allowed_targets(from).contains(&to) {
            return Err(ModeChangeError::Illegal {
                element: name.to_owned(),
                from,
                to,
                allowed: allowed_targets(from).to_vec(),
            });
        }
        if from == Mode::Ro && to == Mode::Rw && !confirm {
            return Err(ModeChangeError::ConfirmRequired {
                element: name.to_owned(),
            });
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE storage_elements SET mode = $2, mode_changed_ms = $3, updated_ms = $3 WHERE name = $1",
        )
        .bind(name)
        .bind(to.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let change = ModeChange {
            id: uuid::Uuid::now_v7().to_string(),
            element: name.to_owned(),
            from,
            to,
            changed_by: changed_by.to_owned(),
            reason: reason.map(str::to_owned),
            changed_ms: now,
        };
        sqlx::query(
            "INSERT INTO mode_changes (id, element, from_mode, to_mode, changed_by, reason, changed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&change.id)
        .bind(&change.element)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(&change.changed_by)
        .bind(&change.reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed(Change::Element(name.to_owned())).await;
        let el = self
            .get_element(name)
            .await?
            .ok_or_else(|| ModeChangeError::NotFound(format!("storage element '{name}'")))?;
        Ok((el, change))
    }

    /// Every mode change of an element, oldest first.
    pub async fn mode_history(&self, name: &str) -> Result<Vec<ModeChange>, MetaError> {
        let rows = sqlx::query(
            "SELECT id, element, from_mode, to_mode, changed_by, reason, changed_ms FROM mode_changes WHERE element = $1 ORDER BY changed_ms, id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let from: String = r.try_get("from_mode")?;
                let to: String = r.try_get("to_mode")?;
                Ok(ModeChange {
                    id: r.try_get("id")?,
                    element: r.try_get("element")?,
                    from: from.parse().map_err(MetaError::corrupt)?,
                    to: to.parse().map_err(MetaError::corrupt)?,
                    changed_by: r.try_get("changed_by")?,
                    reason: r.try_get("reason")?,
                    changed_ms: r.try_get("changed_ms")?,
                })
            })
            .collect()
    }

    /// The stored bucket policy document, if one was set.
    pub async fn bucket_policy(&self, bucket: &str) -> Result<Option<String>, MetaError> {
        let row = sqlx::query("SELECT document FROM bucket_policies WHERE bucket = $1")
            .bind(bucket)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("document").map_err(MetaError::from))
            .transpose()
    }

    pub async fn put_bucket_policy(
        &self,
        bucket: &str,
        document: &str,
        updated_by: &str,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO bucket_policies (bucket, document, updated_by, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (bucket) DO UPDATE SET document = excluded.document, updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
        )
        .bind(bucket)
        .bind(document)
        .bind(updated_by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.changed(Change::Element(bucket.to_owned())).await;
        Ok(())
    }

    /// Replaces the bucket's tag set; an empty one removes it. Returns the element, for its
    /// element.json. `NotFound` when there is no such element.
    pub async fn set_bucket_tags(
        &self,
        bucket: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<Element, MetaError> {
        let stored = (!tags.is_empty()).then(|| map_to_json(tags));
        let res =
            sqlx::query("UPDATE storage_elements SET tags = $2, updated_ms = $3 WHERE name = $1")
                .bind(bucket)
                .bind(stored)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        if res.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("storage element '{bucket}'")));
        }
        self.changed(Change::Element(bucket.to_owned())).await;
        self.get_element(bucket)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("storage element '{bucket}'")))
    }

    /// Removes the bucket policy; whether there was one.
    pub async fn delete_bucket_policy(&self, bucket: &str) -> Result<bool, MetaError> {
        let res = sqlx::query("DELETE FROM bucket_policies WHERE bucket = $1")
            .bind(bucket)
            .execute(&self.pool)
            .await?;
        self.changed(Change::Element(bucket.to_owned())).await;
        Ok(res.rows_affected() > 0)
    }
}

/// Why an element update was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ElementUpdateError {
    #[error("{0} not found")]
    NotFound(String),
    #[error(
        "capacity_bytes {capacity} is below the {used} bytes storage element '{element}' already holds"
    )]
    QuotaBelowUsage {
        element: String,
        capacity: i64,
        used: i64,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl From<sqlx::Error> for ElementUpdateError {
    fn from(e: sqlx::Error) -> Self {
        ElementUpdateError::Meta(MetaError::Db(e))
    }
}

impl Store {
    /// Sets description and/or quota (`Some(None)` clears). A quota below the current usage
    /// is refused, checked in the same transaction as the write.
    pub async fn update_element(
        &self,
        name: &str,
        description: Option<Option<String>>,
        capacity_bytes: Option<Option<i64>>,
    ) -> Result<Element, ElementUpdateError> {
        let mut tx = self.begin_write().await?;
        let lock = match self.kind() {
            crate::DbKind::Postgres => {
                "SELECT used_bytes FROM storage_elements WHERE name = $1 FOR UPDATE"
            }
            crate::DbKind::Sqlite => "SELECT used_bytes FROM storage_elements WHERE name = $1",
        };
        let Some(row) = sqlx::query(lock)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(ElementUpdateError::NotFound(format!(
                "storage element '{name}'"
            )));
        };
        let used: i64 = row.try_get("used_bytes")?;
        let now = now_ms();
        if let Some(cap) = capacity_bytes {
            if let Some(c) = cap
                && c < used
            {
                return Err(ElementUpdateError::QuotaBelowUsage {
                    element: name.to_owned(),
                    capacity: c,
                    used,
                });
            }
            sqlx::query(
                "UPDATE storage_elements SET capacity_bytes = $2, updated_ms = $3 WHERE name = $1",
            )
            .bind(name)
            .bind(cap)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(d) = description {
            sqlx::query(
                "UPDATE storage_elements SET description = $2, updated_ms = $3 WHERE name = $1",
            )
            .bind(name)
            .bind(d)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changed(Change::Element(name.to_owned())).await;
        self.get_element(name)
            .await?
            .ok_or_else(|| ElementUpdateError::NotFound(format!("storage element '{name}'")))
    }
}
