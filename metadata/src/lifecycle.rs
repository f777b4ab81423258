//! Bucket lifecycle rules (only `AbortIncompleteMultipartUpload` is supported) and the
//! expiry of abandoned multipart uploads.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Element, MetaError, Store, now_ms};

/// How a rule named the keys it applies to, so it is returned in the form it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixForm {
    /// `<Filter><Prefix>…</Prefix></Filter>`, or `<Filter/>` with an empty prefix.
    Filter,
    /// `<Filter><And><Prefix>…</Prefix></And></Filter>`.
    And,
    /// The deprecated rule-level `<Prefix>`.
    Rule,
}

/// One rule: abort uploads under `prefix` `days_after_initiation` days after they began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub enabled: bool,
    pub prefix: String,
    pub prefix_form: PrefixForm,
    pub days_after_initiation: u32,
}

/// A bucket's lifecycle configuration, as stored in the index and in element.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub rules: Vec<LifecycleRule>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl Lifecycle {
    /// The age (ms) after which an upload of `key` is aborted by this configuration: the
    /// shortest of the enabled rules whose prefix matches, as S3 applies overlapping rules.
    pub fn abort_after_ms(&self, key: &str) -> Option<i64> {
        self.rules
            .iter()
            .filter(|r| r.enabled && key.starts_with(&r.prefix))
            .map(|r| i64::from(r.days_after_initiation) * DAY_MS)
            .min()
    }

    /// The shortest age any enabled rule aborts at.
    pub fn shortest_ms(&self) -> Option<i64> {
        self.rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| i64::from(r.days_after_initiation) * DAY_MS)
            .min()
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_json(text: &str) -> Result<Lifecycle, MetaError> {
        serde_json::from_str(text).map_err(MetaError::corrupt)
    }
}

/// An upload old enough that some rule or the default age may expire it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAge {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created_ms: i64,
}

impl Store {
    /// Replaces the bucket's lifecycle configuration (`None` removes it). Returns the element,
    /// for its element.json. `NotFound` when there is no such element.
    pub async fn set_bucket_lifecycle(
        &self,
        bucket: &str,
        lifecycle: Option<&Lifecycle>,
    ) -> Result<Element, MetaError> {
        let res = sqlx::query(
            "UPDATE storage_elements SET lifecycle = $2, updated_ms = $3 WHERE name = $1",
        )
        .bind(bucket)
        .bind(lifecycle.map(Lifecycle::to_json))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("storage element '{bucket}'")));
        }
        self.changed(crate::cache::Change::Element(bucket.to_owned()))
            .await;
        self.get_element(bucket)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("storage element '{bucket}'")))
    }

    /// Uploads begun before `before_ms`, oldest first, after the `(created_ms, upload_id)`
    /// marker.
    pub async fn uploads_begun_before(
        &self,
        before_ms: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<UploadAge>, MetaError> {
        let (after_ms, after_id) = after.unwrap_or((i64::MIN, ""));
        let rows = sqlx::query(
            "SELECT upload_id, bucket, key, created_ms FROM multipart_uploads \
             WHERE created_ms < $1 AND (created_ms > $2 OR (created_ms = $2 AND upload_id > $3)) \
             ORDER BY created_ms, upload_id LIMIT $4",
        )
        .bind(before_ms)
        .bind(after_ms)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UploadAge {
                    upload_id: r.try_get("upload_id")?,
                    bucket: r.try_get("bucket")?,
                    key: r.try_get("key")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }
}
